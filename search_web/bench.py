"""Web speed benchmark: wrk on /api/search (this app, any backend) against Elasticsearch's own bare _search, upload p50.

`bench_web(...)` returns a dict (the benchmark CLI and scripts/bench_web.py print it); nothing
here is a unit test. Every figure says its load conditions: connections, duration, workers,
threads, and the machine's load average before and after (the 2-core build machines are shared).
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_QUERY = "calcified granuloma upper lobe right"
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


class BenchError(RuntimeError):
    """The benchmark cannot run (wrk missing, server did not start); the message says which."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_wrk(output: str) -> dict:
    """Requests/s, latency percentiles (ms), errors from `wrk --latency` output."""
    def ms(text: str) -> float:
        number, unit = re.match(r"([\d.]+)(us|ms|s)", text).groups()
        return round(float(number) * _UNITS[unit], 3)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps is None:
        raise BenchError(f"wrk printed no Requests/sec:\n{output}")
    out = {"rps": round(float(rps.group(1)), 1)}
    for pct in ("50", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+(?:us|ms|s))", output, re.M)
        out[f"p{pct}_ms"] = ms(found.group(1)) if found else None
    total = re.search(r"(\d+) requests in", output)
    out["requests"] = int(total.group(1)) if total else None
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    out["non_2xx"] = int(bad.group(1)) if bad else 0
    out["socket_errors"] = sum(map(int, errors.groups())) if errors else 0
    return out


def run_wrk(url: str, connections: int, seconds: int, threads: int = 2, body: dict | None = None,
            headers: dict | None = None) -> dict:
    """wrk against one URL (a POST with a JSON body when `body` is given)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise BenchError("wrk is not installed (Debian package wrk: apt-get install -y wrk)")
    cmd = [wrk, f"-t{min(threads, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        cmd += ["-H", f"{name}: {value}"]
    script = None
    if body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                     f"wrk.body = {json.dumps(json.dumps(body))}\n")
        script.close()
        cmd += ["-s", script.name]
    try:
        result = subprocess.run(cmd + [url], capture_output=True, text=True, timeout=seconds + 30)
    finally:
        if script is not None:
            os.unlink(script.name)
    if result.returncode != 0:
        raise BenchError(f"wrk failed: {result.stderr or result.stdout}")
    return parse_wrk(result.stdout)


def es_bare_body(query: str, k: int = 10) -> dict:
    """The _search body the Elasticsearch text backend sends for a query (BM25 over every text field, facets)."""
    from indexer.documents import DEFAULT_FACETS, TEXT_FIELDS

    should = [{"match": {name: {"query": query, "boost": weight, "_name": name}}}
              for name, (_, weight) in TEXT_FIELDS.items()]
    return {"query": {"bool": {"should": should, "minimum_should_match": 1}}, "size": k, "track_total_hits": True,
            "aggs": {name: {"terms": {"field": name, "size": 20}} for name in DEFAULT_FACETS},
            "sort": ["_score", {"image_id": "asc"}]}


def start_server(env: dict, workers: int, threads: int, extra: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """`cxrsearch serve` (gunicorn) on a free loopback port; returns (process, base URL) once /api/health answers."""
    port = _free_port()
    cmd = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))", "serve",
           "--port", str(port), "--workers", str(workers), "--threads", str(threads), *extra]
    proc = subprocess.Popen(cmd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    import requests

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"the server exited: {proc.stderr.read()[-2000:]}")
        try:
            if requests.get(base + "/api/health", timeout=2).json()["status"] == "ok":
                return proc, base
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.5)
    stop_server(proc)
    raise BenchError("the server did not become healthy within 90 s")


def stop_server(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def upload_latency(base: str, image: Path, n: int = 40) -> dict:
    """p50/p90 of POST /api/similar with one file, one client, after a warm-up request."""
    import requests

    data = image.read_bytes()
    times = []
    for i in range(n + 1):
        start = time.perf_counter()
        response = requests.post(base + "/api/similar", files={"image": (image.name, io.BytesIO(data))},
                                 data={"k": "10"}, timeout=30)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise BenchError(f"POST /api/similar answered {response.status_code}: {response.text[:300]}")
        if i:
            times.append(elapsed)
    times.sort()
    return {"n": n, "p50_ms": round(statistics.median(times), 1), "p90_ms": round(times[int(0.9 * (n - 1))], 1),
            "encode_ms_last": response.json()["upload"]["encode_ms"], "bytes": len(data)}


def copy_to_es(data_dir: str | None, es_url: str, es_index: str) -> int:
    """Copy the embedded live index's documents into Elasticsearch under `es_index` (for a same-documents run)."""
    from indexer.settings import data_dir as default_data_dir
    from indexer.text import open_backend
    from indexer.text.elasticsearch import ESSettings

    with open_backend("embedded", index_dir=default_data_dir(data_dir) / "index") as source:
        docs = [h.document for h in source.search("", k=10_000, facets=()).hits]
    with open_backend("es", es_settings=ESSettings.from_env(url=es_url, index=es_index)) as target:
        version = target.create()
        result = target.index(docs, version=version)
        target.switch(version)
    if result.failed:
        raise BenchError(f"{len(result.failed)} documents were refused by Elasticsearch, e.g. "
                         f"{next(iter(result.failed.items()))}")
    return result.written


def bench_web(data_dir: str | None = None, es_url: str | None = None, es_index: str | None = None,
              query: str = DEFAULT_QUERY, seconds: int = 10, connections: int = 16, workers: int = 2,
              threads: int = 4, upload_image: str | None = None, uploads: int = 40) -> dict:
    """Measure the web app's search and upload speed, and Elasticsearch's bare _search beside it.

    Args:
        data_dir: data directory with a built embedded index (default $CXRSEARCH_DATA or ./data).
        es_url: an Elasticsearch holding the same documents under `es_index` (default
            $CXRSEARCH_ES_URL; skipped when unset or unreachable).
        es_index: the alias to query (default $CXRSEARCH_ES_INDEX or cxrsearch-images).
        query: the search text, the same for both.
        seconds, connections: each wrk run's length and concurrency (also run at 1 connection).
        workers, threads: the app's gunicorn workers and threads per worker.
        upload_image: a radiograph file for POST /api/similar (default: the first indexed image's file).
        uploads: timed upload requests.

    Returns:
        {"conditions": {...}, "embedded": {"c16": wrk figures, "c1": ...}, "es_bare": {...} or {"skipped": why},
         "upload": {"p50_ms", ...}, "verdict": {...}}
    """
    import requests

    from indexer.settings import data_dir as default_data_dir

    root = default_data_dir(data_dir)
    env = {"CXRSEARCH_DATA": str(root), "CXRSEARCH_BACKEND": "embedded"}
    conditions = {"query": query, "connections": connections, "seconds": seconds, "workers": workers,
                  "threads": threads, "cpus": os.cpu_count(), "load_before": os.getloadavg()}
    out: dict = {"conditions": conditions}
    path = "/api/search?" + requests.compat.urlencode({"q": query, "k": 10})
    proc, base = start_server(env, workers, threads)
    try:
        requests.get(base + path, timeout=30)  # warm: the index pages, the first facet counts
        out["embedded"] = {f"c{connections}": run_wrk(base + path, connections, seconds),
                           "c1": run_wrk(base + path, 1, seconds, threads=1)}
        if upload_image is None:
            first = requests.get(base + "/api/search?k=1", timeout=30).json()["results"][0]["image_id"]
            candidates = [Path(root) / "images" / "synthetic" / "NLMCXR_png" / f"{first}.png"]
            upload_image = next((str(c) for c in candidates if c.is_file()), None)
        out["upload"] = upload_latency(base, Path(upload_image), uploads) if upload_image else {"skipped": "no image"}
    finally:
        stop_server(proc)
    es_url = es_url or os.environ.get("CXRSEARCH_ES_URL")
    es_index = es_index or os.environ.get("CXRSEARCH_ES_INDEX") or "cxrsearch-images"
    if not es_url:
        out["es_bare"] = {"skipped": "no Elasticsearch URL (CXRSEARCH_ES_URL)"}
    else:
        url = f"{es_url.rstrip('/')}/{es_index}/_search"
        body = es_bare_body(query)
        try:
            probe = requests.post(url, json=body, timeout=10)
            probe.raise_for_status()
            out["es_bare"] = {"url": url, "total": probe.json()["hits"]["total"]["value"],
                              f"c{connections}": run_wrk(url, connections, seconds, body=body),
                              "c1": run_wrk(url, 1, seconds, threads=1, body=body)}
        except requests.RequestException as e:
            out["es_bare"] = {"skipped": f"Elasticsearch at {url} did not answer the query: {e}"}
    conditions["load_after"] = os.getloadavg()
    verdict = {}
    if "rps" in out.get("es_bare", {}).get(f"c{connections}", {}):
        verdict["rps_at_least_es"] = out["embedded"][f"c{connections}"]["rps"] >= out["es_bare"][f"c{connections}"]["rps"]
        verdict["p50_c1_not_slower_than_es"] = out["embedded"]["c1"]["p50_ms"] <= out["es_bare"]["c1"]["p50_ms"]
    if "p50_ms" in out.get("upload", {}):
        verdict["upload_p50_within_100ms"] = out["upload"]["p50_ms"] <= 100
    out["verdict"] = verdict
    return out
