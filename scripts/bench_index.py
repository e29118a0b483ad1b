"""Benchmark text indexing: throughput (images/s), index size on disk and query time, for both backends.

    .venv/bin/python scripts/bench_index.py                       # embedded only
    CXRSEARCH_ES_URL=http://127.0.0.1:9200 .venv/bin/python scripts/bench_index.py --backend embedded es
    .venv/bin/python scripts/bench_index.py --images DIR          # also time the whole reindex job

Documents are built from the real corpus (data/manifest.jsonl from `cxrsearch data prepare` and the
Open-i reports): 7,470 images. Each backend writes them into a fresh version, switches to it, and is
then queried. With --images the full `cxrsearch reindex` job (read + check every image, build,
write, switch) is timed too. Prints Markdown lines for the README. Indices made here are deleted.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.documents import DocumentInput, build_document, content_hash, default_vocabulary  # noqa: E402
from indexer.text import open_backend  # noqa: E402
from pipelines.manifest import read_manifest  # noqa: E402
from pipelines.settings import data_dir, manifest_path, reports_dir  # noqa: E402
from pipelines.sources.openi import load_reports  # noqa: E402

QUERIES = ["calcified granuloma upper lobe right", "cardiomegaly", "pulmonary disease in upper right lobe",
           "pleural effusion", "degenerative spine", "opacity lung base left", "normal", "nodule",
           "atelectasis", "hyperinflation emphysema"]


def build_corpus_documents(root: Path) -> tuple[list[dict], float]:
    """Documents of every manifest image (no generated annotations), and the seconds that took."""
    entries = read_manifest(manifest_path(root))
    reports, _ = load_reports(reports_dir(root))
    by_id = {r.report_id: r for r in reports}
    vocabulary = default_vocabulary()
    start = time.perf_counter()
    docs = []
    for e in entries:
        report = by_id.get(e.report_id)
        docs.append(build_document(DocumentInput(e.image_id, e, report, (), True,
                                                 content_hash("", e, report, True, vocabulary)), vocabulary))
    return docs, time.perf_counter() - start


def bench_backend(kind: str, docs: list[dict], batch: int, repeats: int) -> dict:
    tmp = tempfile.TemporaryDirectory(prefix="cxrsearch-bench-")
    es_settings = None
    if kind == "es":
        from indexer.text.elasticsearch import ESSettings

        es_settings = ESSettings.from_env(index=f"cxrsearch-bench-{uuid.uuid4().hex[:8]}")
    backend = open_backend(kind, index_dir=tmp.name, es_settings=es_settings)
    try:
        backend.check()
        version = backend.create()
        start = time.perf_counter()
        result = backend.index(docs, version=version, batch_size=batch, refresh=False)
        backend.refresh(version)
        backend.switch(version)
        seconds = time.perf_counter() - start
        if kind == "es":  # let Elasticsearch write its segments out before measuring the store
            backend.client.indices.flush(index=backend.index_name(version))
        size = backend.size_bytes()
        times = []
        for _ in range(repeats):
            for q in QUERIES:
                t = time.perf_counter()
                backend.search(q, k=10)
                times.append(time.perf_counter() - t)
        filtered = []
        for _ in range(repeats):
            t = time.perf_counter()
            backend.search("opacity", filters={"ancestors": "Lung Diseases", "view": "frontal"}, k=10)
            filtered.append(time.perf_counter() - t)
        return {"backend": kind, "docs": result.written, "failed": len(result.failed), "seconds": seconds,
                "rate": result.written / seconds, "size_mib": size / 2**20,
                "query_ms_p50": 1000 * statistics.median(times), "query_ms_p95": 1000 * _p95(times),
                "filtered_ms_p50": 1000 * statistics.median(filtered)}
    finally:
        if kind == "es":
            client = backend.client
            names = list(client.indices.get(index=f"{backend.settings.index}*", allow_no_indices=True))
            if names:
                client.indices.delete(index=",".join(names))
        backend.close()
        tmp.cleanup()


def bench_job(kind: str, images: Path, root: Path) -> dict:
    from pipelines.reindex import ReindexConfig, run_reindex

    tmp = tempfile.TemporaryDirectory(prefix="cxrsearch-bench-job-")
    es_settings = None
    if kind == "es":
        from indexer.text.elasticsearch import ESSettings

        es_settings = ESSettings.from_env(index=f"cxrsearch-bench-{uuid.uuid4().hex[:8]}")
    config = ReindexConfig(images=images, index_dir=Path(tmp.name), backend=kind, manifest=manifest_path(root),
                           reports=reports_dir(root), es=es_settings, progress_bar=False)
    try:
        summary = run_reindex(config)
        again = run_reindex(config)
        return {"backend": kind, "images": summary.images, "indexed": summary.indexed,
                "skipped": summary.n_skipped, "seconds": summary.seconds, "stream_seconds": summary.stream_seconds,
                "rate": (summary.images / summary.stream_seconds) if summary.stream_seconds else 0.0,
                "rerun_seconds": again.seconds, "rerun_unchanged": again.unchanged}
    finally:
        if kind == "es":
            from indexer.text.elasticsearch import ElasticsearchTextBackend

            backend = ElasticsearchTextBackend(es_settings)
            names = list(backend.client.indices.get(index=f"{es_settings.index}*", allow_no_indices=True))
            if names:
                backend.client.indices.delete(index=",".join(names))
            backend.close()
        tmp.cleanup()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", nargs="+", choices=("embedded", "es"), default=["embedded"])
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--batch-size", type=int, default=500)
    p.add_argument("--repeats", type=int, default=5, help="query rounds for the latency numbers")
    p.add_argument("--images", help="also time the full reindex job over this image folder")
    args = p.parse_args()

    root = data_dir(args.data_dir)
    docs, build_s = build_corpus_documents(root)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"load average {load:.1f} at start (other work shares these CPUs)")
    print(f"documents: {len(docs)} images of the real Open-i corpus (report-derived; synthetic images)")
    print(f"building documents: {build_s:.2f} s ({len(docs) / build_s:,.0f} images/s)")
    print()
    print("| backend | images | index time | throughput | size on disk | query p50 / p95 | filtered query p50 |")
    print("|---|---|---|---|---|---|---|")
    for kind in args.backend:
        r = bench_backend(kind, docs, args.batch_size, args.repeats)
        print(f"| {kind} | {r['docs']:,} | {r['seconds']:.1f} s | {r['rate']:,.0f} images/s | {r['size_mib']:.1f} MiB "
              f"| {r['query_ms_p50']:.1f} / {r['query_ms_p95']:.1f} ms | {r['filtered_ms_p50']:.1f} ms |")
    if args.images:
        print()
        print("| backend | reindex job: images | indexing (read, check, build, write) | whole job "
              "| rerun, nothing changed |")
        print("|---|---|---|---|---|")
        for kind in args.backend:
            r = bench_job(kind, Path(args.images), root)
            print(f"| {kind} | {r['images']:,} ({r['skipped']} skipped) | {r['stream_seconds']:.1f} s "
                  f"({r['rate']:,.0f} images/s) | {r['seconds']:.1f} s | {r['rerun_seconds']:.1f} s "
                  f"({r['rerun_unchanged']:,} unchanged) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
