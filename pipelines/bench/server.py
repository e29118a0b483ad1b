"""The one way the benchmark starts the web app: `cxrsearch serve` over an index build, on a free loopback port.

    app = start_app(ctx, build)          # waits for /api/health to say ok; stopped when the run ends
    run_wrk(app.url, ...); rss_mib(app.pid)

The server (`ctx.http_server`: gunicorn unless the bench was told otherwise) runs in its own process group
(its master and workers), so that stopping it
stops all of them; its output goes to a log file in the run's scratch folder, whose tail is quoted
when it does not come up.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from pipelines.bench.section import BenchContext
from pipelines.errors import PipelineError

SERVE = "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))"
WORKERS = 2  # `cxrsearch serve`'s default, stated in every report that loads the app; threads: serve's default too


def threads_text(server: str, backend: str) -> str:
    """What `cxrsearch serve` runs per worker by default (pipelines.cli.serve.default_threads), in words."""
    from pipelines.cli.serve import default_threads, pick_server

    given = os.environ.get("CXRSEARCH_THREADS")  # serve's default when set
    threads = int(given) if given else default_threads(pick_server(server), backend)
    return "an event loop (1 thread)" if threads == 1 else f"{threads} threads"


class ServerError(PipelineError):
    """The web app did not start or become healthy; the message quotes its log."""


@dataclass
class AppServer:
    """A running `cxrsearch serve`: its base URL, process and log."""

    url: str
    proc: subprocess.Popen
    log: Path
    backend: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM to the whole process group, SIGKILL after 30 s."""
        if self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        except ProcessLookupError:
            pass


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(ctx: BenchContext, build: dict, *, name: str | None = None, checkpoint: Path | None = None,
              workers: int = WORKERS, threads: int | None = None, timeout_s: float = 90.0) -> AppServer:
    """`cxrsearch serve` over one index build; returns once /api/health answers "ok".

    Args:
        build: {"backend", "index_dir", "es" (ESSettings or None)}, e.g. one of the indexing section's builds;
            the app serves image files from the corpus folder (ctx.images).
        name: a label for the log file (default the backend).
        checkpoint: the cascade for search by upload (default ctx.checkpoint; 'none' when there is none).
        workers / threads: worker processes and threads per worker (waitress: threads only; None: serve's
            default for the server and backend, see pipelines.cli.serve.default_threads).

    Raises:
        ServerError: the server exited or did not become healthy within `timeout_s`, quoting its log.
    """
    import requests

    port = free_port()
    checkpoint = checkpoint if checkpoint is not None else ctx.checkpoint
    cmd = [sys.executable, "-c", SERVE, "serve", "--server", ctx.http_server, "--host", "127.0.0.1", "--port",
           str(port), "--backend",
           build["backend"], "--index-dir", str(build["index_dir"]), "--workers", str(workers)]
    cmd += ["--threads", str(threads)] if threads is not None else []
    cmd += ["--checkpoint", str(checkpoint) if checkpoint and Path(checkpoint).is_file() else "none"]
    # the corpus folder itself: the bench's image subsets are folders of symlinks, which the app refuses to serve
    # (a served file must lie inside the image folder once links are resolved)
    cmd += ["--images-dir", str(Path(ctx.images).resolve())]
    if build["backend"] == "es":
        cmd += ["--es-url", build["es"].url, "--es-index", build["es"].index]
    log = ctx.work / f"serve-{name or build['backend']}-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    server = AppServer(f"http://127.0.0.1:{port}", proc, log, build["backend"])
    ctx.on_cleanup(server.stop)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(f"cxrsearch serve over {build['index_dir']} exited ({proc.returncode}): {_tail(log)}")
        try:
            if requests.get(server.url + "/api/health", timeout=2).json().get("status") == "ok":
                return server
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.3)
    server.stop()
    raise ServerError(f"cxrsearch serve over {build['index_dir']} did not become healthy at {server.url} within "
                      f"{timeout_s:g} s: {_tail(log)}")


def _tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(encoding="utf-8", errors="replace")[-chars:].strip() or "(no output)"
    except OSError:
        return "(no log)"


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process and all its descendants (the server's workers), in MiB (Linux /proc)."""
    total, seen, todo = 0, set(), [pid]
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo += [int(c) for c in children]
        except OSError:
            if p == pid:
                return None
    return total / 1024
