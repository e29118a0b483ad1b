"""Run `wrk` (HTTP load, loopback only) with a Lua script that rotates requests and prints one JSON line of results.

The benchmark's one wrk runner and its one output parser: every HTTP load (the API, bare
Elasticsearch, sustained load) goes through `run_wrk`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from pipelines.errors import PipelineError

LUA = """
local requests_list = {%(requests)s}
local n = 0
local threads_made = 0
setup = function(thread)
  thread:set("thread_number", threads_made)
  threads_made = threads_made + 1
end
init = function(args)
  -- each thread starts at its own place in the rotation, so that no two threads send the same request together
  n = (thread_number or 0) * math.floor(#requests_list / %(threads)d)
end
request = function()
  n = n + 1
  local r = requests_list[(n %% #requests_list) + 1]
  return wrk.format(r[1], r[2], r[3], r[4])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRKJSON {"requests": %%d, "duration_us": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d, "p50_us": %%d, "p95_us": %%d, "p99_us": %%d, "mean_us": %%f}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.mean))
end
"""


class WrkUnavailable(PipelineError):
    """wrk is not installed and cannot be installed here."""


def ensure_wrk() -> str:
    """The wrk binary: found on PATH, or installed with apt-get when running as root; else WrkUnavailable."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.name == "posix" and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "wrk"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            subprocess.run(install, env=env, capture_output=True)
        found = shutil.which("wrk")
        if found:
            return found
    raise WrkUnavailable("the HTTP load sections need `wrk` (Debian package wrk): install it with "
                         "`apt-get install wrk` (as root `make bench` does), or leave out --sections http,sustained")


@dataclass
class WrkResult:
    connections: int
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def _lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def run_wrk(base_url: str, requests: list[tuple[str, str, dict[str, str] | None, str | None]], connections: int,
            seconds: float, workdir: Path, timeout_s: float = 5.0) -> WrkResult:
    """Load `base_url` (loopback only) with `requests` in rotation: (method, path, headers, body) each.

    Threads = min(connections, CPUs), each starting its rotation at its own offset; duration `seconds`.
    """
    host = urlsplit(base_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise PipelineError(f"load is loopback only; refusing to load {base_url}")
    entries = []
    for method, path, headers, body in requests:
        h = "{" + ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in (headers or {}).items()) + "}"
        entries.append("{" + ", ".join([_lua_string(method), _lua_string(path), h,
                                        _lua_string(body) if body is not None else "nil"]) + "}")
    threads = max(1, min(connections, os.cpu_count() or 1))
    script = workdir / f"wrk-{time.monotonic_ns()}.lua"
    script.write_text(LUA % {"requests": ", ".join(entries), "threads": threads}, encoding="utf-8")
    cmd = [ensure_wrk(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--timeout", f"{max(1, round(timeout_s))}s", "-s", str(script), base_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        why = proc.stderr.strip() or proc.stdout[-300:]
        raise PipelineError(f"wrk failed on {base_url} ({proc.returncode}): {why}")
    d = json.loads(line[len("WRKJSON "):])
    errors = d["connect"] + d["read"] + d["write"] + d["status"] + d["timeout"]
    return WrkResult(connections, d["requests"], d["duration_us"] / 1e6, errors, d["p50_us"] / 1000,
                     d["p95_us"] / 1000, d["p99_us"] / 1000)
