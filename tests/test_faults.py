"""Faults against real processes: reindex killed with SIGKILL and resumed; Elasticsearch stopped under search load.

Both are bounded (a 24-image corpus, loopback only) and marked slow: `make test` runs them.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from indexer.text.embedded import EmbeddedTextBackend
from indexer.vectors import VECTOR_KINDS
from tests.pipelines.test_reindex import SmallCorpus, all_docs
from tests.pipelines.test_reindex_vectors import make_checkpoint, vector_versions, vectors_by_id

ROOT = Path(__file__).resolve().parents[1]
CLI = "import sys, torch; torch.set_num_threads(1); from pipelines.cli import main; sys.exit(main(sys.argv[1:]))"
KILLS = 10
# One reindex process: says "ready" once imported (python and torch start-up are most of a short run),
# then a line per batch; the parent kills it at a random moment after "ready".
JOB = """
import json, sys, torch
torch.set_num_threads(1)
from pathlib import Path
from pipelines.reindex import ReindexConfig, run_reindex
images, index_dir, manifest, reports, checkpoint = sys.argv[1:]
config = ReindexConfig(images=Path(images), index_dir=Path(index_dir), manifest=Path(manifest), reports=Path(reports),
                       checkpoint=Path(checkpoint), batch_size=2, progress_bar=False)
print("ready", flush=True)
summary = run_reindex(config, progress=lambda p: print("batch", p.done, flush=True))
print(json.dumps(summary.to_dict()), flush=True)
"""


def start_job(corpus: SmallCorpus, index_dir: Path, checkpoint: Path) -> subprocess.Popen:
    """Start the job; returns once it printed "ready"."""
    proc = subprocess.Popen([sys.executable, "-c", JOB, str(corpus.images), str(index_dir), str(corpus.manifest),
                             str(corpus.reports), str(checkpoint)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line.strip() == "ready", proc.stderr.read()
    return proc


def snapshot(index_dir: Path) -> tuple[dict, dict]:
    """(text documents by id, {kind: vectors by id}) of the live index."""
    return all_docs(index_dir), {kind: vectors_by_id(index_dir, kind) for kind in VECTOR_KINDS}


def assert_same_content(got: tuple[dict, dict], want: tuple[dict, dict]) -> None:
    docs, vectors = got
    assert docs == want[0]  # every document, field by field: no duplicate, none lost, none stale
    for kind in VECTOR_KINDS:
        assert sorted(vectors[kind]) == sorted(want[1][kind]) == sorted(docs)
        for image_id, vector in want[1][kind].items():
            np.testing.assert_allclose(vectors[kind][image_id], vector, rtol=0, atol=1e-6)


@pytest.mark.slow
def test_reindex_killed_at_random_points_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL at 10 random moments of a checkpoint reindex (text + FAISS vectors), resuming each time."""
    corpus = SmallCorpus(tmp_path / "corpus")
    checkpoint = make_checkpoint(tmp_path / "cascade.pt")
    ref = start_job(corpus, tmp_path / "reference", checkpoint)
    started = time.monotonic()
    out, err = ref.communicate(timeout=300)
    work = time.monotonic() - started  # from "ready" to the end: where the kills go
    assert ref.returncode == 0, err
    reference = snapshot(tmp_path / "reference")
    assert len(reference[0]) == 24

    rng = random.Random(20261130)
    index = tmp_path / "index"
    landed: list[dict] = []
    completed = 0
    while len(landed) < KILLS:
        proc = start_job(corpus, index, checkpoint)
        delay = rng.uniform(0, work)
        try:
            out, err = proc.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)  # no clean-up of any kind
            out, _ = proc.communicate()
            batches = [line for line in out.splitlines() if line.startswith("batch")]
            landed.append({"after_s": round(delay, 2), "batches_reported": len(batches)})
            continue
        assert proc.returncode == 0, err  # it finished before the kill: a complete, correct index
        assert_same_content(snapshot(index), reference)
        completed += 1
        shutil.rmtree(index)  # start the job over, so that the next kills land in a build again
    final = start_job(corpus, index, checkpoint)
    out, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["switched"] or summary["nothing_changed"]
    assert_same_content(snapshot(index), reference)
    live = EmbeddedTextBackend(index / "text").live_version()
    assert EmbeddedTextBackend(index / "text").versions() == [live]  # no abandoned build left behind
    assert vector_versions(index) == [live]
    assert not (index / "builds").exists() or not any((index / "builds").iterdir())
    mid_build = [k for k in landed if k["batches_reported"] > 0]
    print(f"\n{len(landed)} kills at {[k['after_s'] for k in landed]} s after start-up ({len(mid_build)} after a "
          f"batch was written), {completed} runs finished first; uninterrupted run {work:.1f} s after start-up")
    assert len(mid_build) >= 3, landed  # the kills did land inside builds


# --- Elasticsearch stopped under search load -------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def es_script(action: str, port: int) -> None:
    env = {**os.environ, "CXRSEARCH_ES_PORT": str(port), "CXRSEARCH_ES_HEAP": "256m"}
    subprocess.run(["bash", str(ROOT / "scripts" / "es.sh"), action], cwd=ROOT, env=env, check=True, timeout=240,
                   capture_output=True)


@pytest.fixture
def own_es():
    """A private Elasticsearch server (its own port and data folder) that this test may stop and start."""
    port = free_port()
    es_script("start", port)
    yield port
    es_script("stop", port)
    cache = Path(os.environ.get("CXRSEARCH_CACHE", ROOT / ".cache"))
    shutil.rmtree(cache / "elasticsearch" / f"run-{port}", ignore_errors=True)


@pytest.mark.es
@pytest.mark.slow
def test_elasticsearch_outage_under_search_load_gives_only_json_503_then_recovers(own_es, tmp_path):
    import requests

    from indexer.text.elasticsearch import ESSettings
    from pipelines.reindex import run_reindex

    es_url = f"http://127.0.0.1:{own_es}"
    settings = ESSettings(url=es_url, index=f"cxrsearch-outage-{uuid.uuid4().hex[:6]}", request_timeout=5)
    corpus = SmallCorpus(tmp_path / "corpus")
    assert run_reindex(corpus.config(tmp_path / "index", backend="es", es=settings)).switched
    port = free_port()
    serve = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--backend", "es", "--es-url", es_url,
                              "--es-index", settings.index, "--index-dir", str(tmp_path / "index"), "--port",
                              str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/api/search?q=granuloma&k=5"
    records: list[tuple[float, int, bool, str, float]] = []  # (start, status, JSON body, error type, end)
    stop = threading.Event()

    def load() -> None:
        with requests.Session() as session:
            while not stop.is_set():
                t = time.monotonic()
                try:
                    r = session.get(url, timeout=10)
                    try:
                        body = r.json()
                        error = body.get("error") or {}
                        kind = f"{error.get('type', '')}: {str(error.get('message', ''))[:160]}" if error else ""
                        records.append((t, r.status_code, True, kind, time.monotonic()))
                    except ValueError:
                        records.append((t, r.status_code, False, r.text[:80], time.monotonic()))
                except requests.RequestException as e:
                    records.append((t, -1, False, type(e).__name__, time.monotonic()))
                time.sleep(0.02)

    loader = threading.Thread(target=load, daemon=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "cxrsearch serve did not start"
            time.sleep(0.3)
        loader.start()
        time.sleep(2)
        stopped_at = time.monotonic()
        es_script("stop", own_es)
        time.sleep(3)
        es_script("start", own_es)  # returns when the cluster answers; shard recovery may still run
        restarted_at = time.monotonic()
        recovered_at = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            recent = [r for r in records if r[0] > restarted_at][-10:]
            if len(recent) == 10 and all(r[1] == 200 for r in recent):
                recovered_at = recent[0][0]
                break
            time.sleep(0.2)
    finally:
        stop.set()
        if loader.is_alive():
            loader.join(timeout=30)  # the last request answered before the app goes
        serve.terminate()
        serve.wait(timeout=30)

    # a request still in flight when the stop begins may meet the dying server: it belongs to the outage
    before = [r for r in records if r[4] < stopped_at]
    during = [r for r in records if r[4] >= stopped_at and r[0] < (recovered_at or float("inf"))]
    assert before and all(r[1] == 200 for r in before), [r for r in before if r[1] != 200][:5]  # say which
    assert recovered_at is not None, f"no run of 10 x 200 within 60 s of the restart: {during[-5:]}"
    assert all(r[2] for r in records), [r for r in records if not r[2]][:5]  # every answer is JSON
    statuses = {s: sum(1 for r in during if r[1] == s) for s in sorted({r[1] for r in during})}
    print(f"\noutage: {len(during)} requests between the stop and recovery: {statuses}; recovered "
          f"{recovered_at - restarted_at:.1f} s after the restart")
    assert statuses.get(503, 0) > 0  # the outage was seen
    bad = [r for r in during if r[1] not in (200, 503)]
    assert not bad, (f"{len(bad)} of {len(during)} answers during the outage were not 200/503, e.g. "
                     f"{sorted({(r[1], r[3]) for r in bad})[:2]}: the API must answer 503 while shards recover")
