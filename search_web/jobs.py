"""Reindex jobs started from the web app: one at a time per index, run in a thread, state in files every worker reads.

The job itself is the `cxrsearch reindex --progress-json` command in a child process (search_web imports
nothing of `pipelines`; the annotation's CPU work stays out of the serving worker). Each job's state is a
JSON file under `<index_dir>/jobs/`, rewritten atomically on every progress report, so any gunicorn
worker can answer GET /api/jobs/<id>; an exclusive lock file (filelock) keeps two workers from running
two jobs at once, and tells a reader whether a 'running' job's process is still alive.
"""
from __future__ import annotations

import json
import re
import secrets
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from filelock import FileLock, Timeout

from indexer.files import atomic_write
from search_web.errors import BadRequest, Conflict, NotFound

JOB_ID = re.compile(r"^[0-9]{8}t[0-9]{6}-[0-9a-f]{6}$")
STATES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
FINISHING_WAIT_S = 2.0  # how long a new job waits for a finished job to let go of the run lock
_cancel_events: dict[str, threading.Event] = {}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class JobStore:
    """Job state files and the run lock of one index directory."""

    def __init__(self, index_dir: Path):
        self.root = Path(index_dir) / "jobs"

    def path(self, job_id: str) -> Path:
        if not JOB_ID.match(job_id or ""):
            raise NotFound(f"job id {job_id!r} is invalid (e.g. 20250101t120000-3fa2c1)")
        return self.root / f"{job_id}.json"

    def write(self, state: dict) -> None:
        atomic_write(self.path(state["id"]), json.dumps(state, indent=1, default=str))

    def read(self, job_id: str) -> dict:
        path = self.path(job_id)
        try:
            state = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"no job {job_id!r}") from None
        if state.get("state") in ("queued", "running") and not self.locked():
            state["state"] = "interrupted"  # its process died (worker restart, crash): the build resumes next run
            state["error"] = state.get("error") or "the process running this job stopped before it finished"
        return state

    def recent(self, limit: int = 10) -> list[dict]:
        if not self.root.is_dir():
            return []
        ids = sorted((p.stem for p in self.root.glob("*.json") if JOB_ID.match(p.stem)), reverse=True)[:limit]
        out = []
        for job_id in ids:
            try:
                out.append(self.read(job_id))
            except (NotFound, ValueError):
                continue
        return out

    def _lock_path(self) -> Path:
        return self.root / "run.lock"

    def try_lock(self) -> FileLock | None:
        """The exclusive run lock (held, released by the job's thread), or None when another job holds it.

        A file lock (filelock: fcntl on POSIX, msvcrt on Windows, where `cxrsearch serve` runs waitress),
        so any worker process sees it; not thread-local, since the job's thread releases it.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(self._lock_path(), thread_local=False)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            return None
        return lock

    def locked(self) -> bool:
        lock = self.try_lock()
        if lock is None:
            return True
        lock.release()
        return False


def new_job_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dt%H%M%S") + "-" + secrets.token_hex(3)


def job_options(form) -> dict:
    """Options a client may set: with_model (annotate with the cascade), fresh (discard an unfinished build)."""
    def flag(name: str) -> bool:
        raw = str(form.get(name, "")).lower()
        if raw not in ("", "0", "1", "true", "false", "on", "off", "yes", "no"):
            raise BadRequest(f"{name}={raw!r} is invalid: use true or false")
        return raw in ("1", "true", "on", "yes")

    return {"with_model": flag("with_model") if "with_model" in form else True, "fresh": flag("fresh")}


def start_job(config: dict, options: dict, checkpoint: Path | None, runner=None) -> dict:
    """Start a reindex in a background thread; returns its first state. Conflict when one is running.

    Args:
        config: the app config (BACKEND, DATA_DIR, INDEX_DIR, IMAGES_DIR, ES_URL, ES_INDEX).
        options: from job_options.
        checkpoint: the cascade to annotate with (None: text only).
        runner: for tests, a callable(config, options, checkpoint, progress, cancel) -> summary dict; default
            the `cxrsearch reindex --progress-json` command (`_reindex`).
    """
    store = JobStore(Path(config["INDEX_DIR"]))
    lock = store.try_lock()
    deadline = time.monotonic() + FINISHING_WAIT_S
    while lock is None and time.monotonic() < deadline and not any(
            j.get("state") in ("queued", "running") for j in store.recent(20)):
        # the last job has written its final state and is releasing the lock: wait for it, not a 409
        time.sleep(0.05)
        lock = store.try_lock()
    if lock is None:
        running = [j["id"] for j in store.recent(20) if j.get("state") in ("queued", "running")]
        raise Conflict(f"a reindex job is already running ({', '.join(running) or 'in another worker'}); "
                       "wait for it to finish")
    job_id = new_job_id()
    state = {"id": job_id, "state": "queued", "created": _now(), "started": None, "finished": None,
             "options": options, "checkpoint": str(checkpoint) if checkpoint else None, "backend": config["BACKEND"],
             "progress": {"phase": "queued", "done": 0, "total": None, "rate": 0.0}, "summary": None, "error": None}
    store.write(state)
    cancel = threading.Event()
    _cancel_events[job_id] = cancel
    thread = threading.Thread(target=_run, args=(store, lock, state, dict(config), checkpoint, runner, cancel),
                              name=f"reindex-{job_id}", daemon=True)
    thread.start()
    return state


def cancel_job(store: JobStore, job_id: str) -> dict:
    state = store.read(job_id)
    event = _cancel_events.get(job_id)
    if state["state"] not in ("queued", "running"):
        raise Conflict(f"job {job_id} is {state['state']}; only a running job can be cancelled")
    if event is None:
        raise Conflict(f"job {job_id} runs in another worker process; cancel it there or wait")
    event.set()
    return state


def _run(store: JobStore, lock: FileLock, state: dict, config: dict, checkpoint: Path | None, runner, cancel) -> None:
    last_write = [0.0]

    def progress(p) -> None:
        state["state"] = "running"
        state["progress"] = {"phase": p.phase, "version": p.version, "done": p.done, "total": p.total,
                             "indexed": p.indexed, "unchanged": p.unchanged, "skipped": p.skipped, "failed": p.failed,
                             "elapsed_s": round(p.elapsed_s, 1), "rate": round(p.rate, 1)}
        now = time.monotonic()
        if now - last_write[0] > 0.25 or p.phase == "done" or p.done >= p.total:
            last_write[0] = now
            store.write(state)

    try:
        state["state"], state["started"] = "running", _now()
        store.write(state)
        summary = (runner or _reindex)(config, state["options"], checkpoint, progress, cancel)
        state["summary"] = summary
        state["state"] = "succeeded"
    except Exception as e:  # noqa: BLE001 - every failure is recorded in the job's state
        cancelled = type(e).__name__ == "ReindexCancelled"
        state["state"] = "cancelled" if cancelled else "failed"
        state["error"] = f"{type(e).__name__}: {e}"
        if not cancelled and not type(e).__module__.startswith(("pipelines", "indexer", "search_web")):
            state["traceback"] = traceback.format_exc(limit=5)  # unexpected: admins need where it broke
    finally:
        state["finished"] = _now()
        store.write(state)
        _cancel_events.pop(state["id"], None)
        lock.release()


CANCELLED_EXIT = 3  # `cxrsearch reindex --progress-json` stopped by SIGTERM after a batch


class ReindexFailed(RuntimeError):
    """The reindex command ended with an error (its last stderr lines say why)."""


class ReindexCancelled(RuntimeError):
    """The reindex command stopped after a batch because the job was cancelled; its build resumes later."""


def reindex_command(config: dict, options: dict, checkpoint: Path | None) -> list[str]:
    """The `cxrsearch reindex` command line of a job over the app's data directory and index."""
    cmd = [sys.executable, "-m", "pipelines.cli", "reindex", "--progress-json", "--no-progress",
           "--data-dir", str(config["DATA_DIR"]), "--images", str(config["IMAGES_DIR"]),
           "--index-dir", str(config["INDEX_DIR"]), "--backend", config["BACKEND"]]
    # the Elasticsearch URL and alias travel in the environment (see _reindex), never in argv
    if options.get("with_model") and checkpoint is not None:
        cmd += ["--checkpoint", str(checkpoint)]
    if options.get("fresh"):
        cmd.append("--fresh")
    return cmd


def _reindex(config: dict, options: dict, checkpoint: Path | None, progress, cancel) -> dict:
    """The real job: `cxrsearch reindex --progress-json` in a child process (the web app imports nothing of
    pipelines; the CPU-heavy annotation runs outside the serving worker). Cancel = SIGTERM, which the command
    turns into a stop after the current batch; the build is kept and resumes on the next run. The child never
    outlives this call: on any error here it is stopped and waited for before the job's lock is released."""
    import os
    import signal
    import subprocess
    import tempfile
    from types import SimpleNamespace

    if cancel.is_set():
        raise ReindexCancelled("reindex cancelled before it started")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8",
           "CXRSEARCH_PARENT_PID": str(os.getpid())}  # the command stops (resumably) when this process dies
    # annotation threads: the app's TORCH_THREADS (1) unless the operator set OMP_NUM_THREADS, so that a reindex
    # started from the web leaves the other cores to the workers serving searches
    env.setdefault("OMP_NUM_THREADS", str(config.get("TORCH_THREADS") or 1))
    if config["BACKEND"] == "es":  # in the environment, not argv: a URL may carry credentials
        for key in ("ES_URL", "ES_INDEX"):
            if config.get(key):
                env[f"CXRSEARCH_{key}"] = str(config[key])
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr:
        proc = subprocess.Popen(reindex_command(config, options, checkpoint), stdout=subprocess.PIPE, stderr=stderr,
                                text=True, encoding="utf-8", errors="replace", env=env, start_new_session=True)

        def watch_cancel() -> None:
            while proc.poll() is None:
                if cancel.wait(0.2):
                    proc.send_signal(signal.SIGTERM)
                    return

        watcher = threading.Thread(target=watch_cancel, daemon=True)
        watcher.start()
        outcome: dict = {}
        try:
            for line in proc.stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue  # not one of the command's JSON lines
                if not isinstance(message, dict):
                    continue
                if isinstance(message.get("progress"), dict):
                    p = message["progress"]
                    rate = p["done"] / p["elapsed_s"] if p.get("elapsed_s") else 0.0
                    progress(SimpleNamespace(**p, rate=rate))
                elif "summary" in message or "cancelled" in message:
                    outcome = message
            code = proc.wait()
        finally:
            if proc.poll() is None:  # an error here: stop the child before the lock is let go
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc.stdout.close()
            watcher.join(1)
        if "cancelled" in outcome or (cancel.is_set() and code in (-signal.SIGTERM, CANCELLED_EXIT)):
            # (a SIGTERM during the command's start-up ends it before it can answer)
            raise ReindexCancelled(outcome.get("cancelled") or "reindex cancelled; its build resumes on the next run")
        if isinstance(outcome.get("summary"), dict):
            return outcome["summary"]  # also when some images failed (exit 1): the build went live, they are counted
        stderr.seek(0)
        tail = stderr.read()[-2000:].strip().splitlines()[-8:]
        raise ReindexFailed(f"cxrsearch reindex exited with {code}: " + (" | ".join(tail) or "no message"))
