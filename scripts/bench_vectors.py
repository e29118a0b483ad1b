"""Benchmark the FAISS vector store: exact vs approximate recall@10, query time, build time and size.

    .venv/bin/python scripts/bench_vectors.py                          # 7,470 / 100k / 1M at 1024-d and 128-d
    .venv/bin/python scripts/bench_vectors.py --sizes 7470 --dims 1024 # one row group
    .venv/bin/python scripts/bench_vectors.py --vectors run/context_vectors.npy   # real embeddings

Vectors are seeded synthetic clustered unit vectors (pipelines.bench.vectors), or the rows of a
.npy file (e.g. `cxrsearch annotate` output) with 200 rows held out as queries. 1024 is the paper's
CNN embedding size; 256 is the `tiny` preset's (128 the earlier NIN preset's). Ground truth is numpy
brute force. Each index type is built through `VectorStore.build` (the production code path), saved to
measure its size on disk, then queried one query per call (what the web app does). recall@10 = share of the true 10
nearest neighbours returned. Synthetic vectors measure the index, not the model, and say nothing
clinical.

Bounds for a small machine: IVF lists are capped (--max-nlist, default 1024) and trained on a
sample (--train-size, default 50,000); HNSW is skipped above --hnsw-max-floats (n * dim) because
its build is the slowest; one FAISS thread by default (on a CPU shared with other jobs, idle OpenMP
threads spin and a 2-thread single query was 10-20x slower than a 1-thread one here); every index
is freed before the next is built, so the peak memory is about twice the raw vectors (1M x 1024
float32 = 4 GiB raw). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import faiss  # noqa: E402

from indexer.vectors.faiss_config import VectorStoreConfig, auto_nlist, min_train_vectors  # noqa: E402
from indexer.vectors.faiss_store import VectorStore  # noqa: E402
from pipelines.bench.vectors import exact_search, recall_at_k, synthetic_vectors  # noqa: E402

TYPES = ("flat", "ivf_flat", "hnsw", "ivf_pq")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="7470,100000,1000000", help="comma-separated vector counts")
    p.add_argument("--dims", default="1024,128", help="comma-separated dimensions (1024 paper, 256 tiny)")
    p.add_argument("--types", default=",".join(TYPES), help=f"index types among {', '.join(TYPES)}")
    p.add_argument("--vectors", type=Path, help=".npy (N, D) file of real vectors instead of synthetic ones")
    p.add_argument("--queries", type=int, default=200, help="queries for recall@k")
    p.add_argument("--latency-queries", type=int, default=100, help="single-query calls timed per index")
    p.add_argument("--latency-seconds", type=float, default=15.0, help="stop timing an index after this long")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--max-nlist", type=int, default=1024, help="cap on IVF lists (bounds training time)")
    p.add_argument("--train-size", type=int, default=50_000, help="vectors sampled to train IVF/PQ")
    p.add_argument("--hnsw-max-floats", type=float, default=1.1e8, help="skip HNSW when n * dim is larger")
    p.add_argument("--threads", type=int, default=1, help="FAISS OpenMP threads for building and batch search")
    p.add_argument("--query-threads", type=int, default=1, help="FAISS OpenMP threads while timing single queries")
    p.add_argument("--isotropic", action="store_true",
                   help="isotropic Gaussian vectors (worst case) instead of clusters")
    p.add_argument("--json", type=Path, help="also write the rows as JSON here")
    return p.parse_args(argv)


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB, {platform.system()} {platform.machine()}; "
            f"faiss {faiss.__version__} (CPU build), numpy {np.__version__}")


def time_queries(store: VectorStore, queries: np.ndarray, k: int, limit: int, seconds: float) -> float:
    """Mean milliseconds of a single-query search, over up to ``limit`` calls or ``seconds``."""
    store.search(queries[0], k)  # warm-up (page cache, GPU copy)
    times = []
    start = time.perf_counter()
    for q in queries[:limit]:
        t0 = time.perf_counter()
        store.search(q, k)
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > seconds and len(times) >= 3:
            break
    return 1000 * float(np.mean(times))


def bench_one(kind: str, ids: list[str], base: np.ndarray, queries: np.ndarray, truth: list[list[str]],
              args: argparse.Namespace) -> dict:
    n, dim = base.shape
    train = min(n, args.train_size)
    nlist = min(auto_nlist(n, train), args.max_nlist)
    config = VectorStoreConfig(index_type=kind, nlist=nlist, train_size=args.train_size, device="cpu")
    t0 = time.perf_counter()
    store = VectorStore.build(ids, base, config=config, model_version="bench")
    build_s = time.perf_counter() - t0
    with tempfile.TemporaryDirectory(prefix="cxrsearch-bench-vectors-") as tmp:
        store.save(tmp)
        meta = json.loads((Path(tmp) / "meta.json").read_text())
        size = (Path(tmp) / meta["files"]["index"]).stat().st_size + (Path(tmp) / meta["files"]["ids"]).stat().st_size
    faiss.omp_set_num_threads(args.query_threads)
    ms = time_queries(store, queries, args.k, args.latency_queries, args.latency_seconds)
    faiss.omp_set_num_threads(args.threads)
    found = [h.image_ids for h in store.search(queries, args.k)]
    recall = recall_at_k(found, truth, args.k)
    p = store.metadata()["build_params"]
    params = {"flat": "exact",
              "ivf_flat": f"nlist {p.get('nlist')}, nprobe {p.get('nprobe')}",
              "hnsw": f"M {p.get('hnsw_m')}, efC {p.get('ef_construction')}, efS {p.get('ef_search')}",
              "ivf_pq": f"nlist {p.get('nlist')}, nprobe {p.get('nprobe')}, {p.get('pq_m')} B/vector"}[store.index_type]
    row = {"n": n, "dim": dim, "index": store.index_type, "params": params, "build_s": build_s,
           "size_mib": size / 2**20, "ms_per_query": ms, "recall_at_k": recall}
    del store
    gc.collect()
    return row


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    faiss.omp_set_num_threads(args.threads)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    unknown = sorted(set(types) - set(TYPES))
    if unknown:
        raise SystemExit(f"unknown index types {unknown}; valid: {', '.join(TYPES)}")
    if args.vectors:
        data = np.load(args.vectors, mmap_mode="r")
        groups = [(len(data) - args.queries, data.shape[1])]
    else:
        groups = [(int(n), int(d)) for d in args.dims.split(",") for n in args.sizes.split(",")]
    print(f"machine: {machine()}; load average at start {os.getloadavg()[0]:.1f}", file=sys.stderr)
    rows, notes = [], []
    started = time.perf_counter()
    for n, dim in groups:
        t0 = time.perf_counter()
        if args.vectors:
            rng = np.random.default_rng(0)
            held_out = rng.choice(len(data), size=args.queries, replace=False)
            mask = np.ones(len(data), dtype=bool)
            mask[held_out] = False
            base = np.ascontiguousarray(data[mask], dtype=np.float32)
            queries = np.asarray(data[held_out], dtype=np.float32)
            base /= np.linalg.norm(base, axis=1, keepdims=True)
            queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        else:
            shape = dict(latent_dim=0) if args.isotropic else {}
            base = synthetic_vectors(n, dim, seed=0, **shape)
            queries = synthetic_vectors(args.queries, dim, seed=1, structure_seed=0, **shape)
        ids = [f"v{i:07d}" for i in range(n)]
        _, rows_idx = exact_search(base, queries, args.k)  # (Q, k) numpy ground truth
        truth = [[ids[j] for j in r] for r in rows_idx]
        print(f"[{n} x {dim}] data + ground truth in {time.perf_counter() - t0:.1f}s", file=sys.stderr)
        for kind in types:
            if kind == "hnsw" and n * dim > args.hnsw_max_floats:
                notes.append(f"hnsw at {n:,} x {dim}: not built "
                             f"(n*dim {n * dim:.2g} > --hnsw-max-floats {args.hnsw_max_floats:.2g})")
                continue
            if kind in ("ivf_flat", "ivf_pq") and n < min_train_vectors(kind, VectorStoreConfig()):
                notes.append(f"{kind} at {n:,} vectors: not built; "
                             f"below {min_train_vectors(kind, VectorStoreConfig()):,} "
                             "vectors the store stays exact (flat)")
                continue
            row = bench_one(kind, ids, base, queries, truth, args)
            rows.append(row)
            print(f"[{n} x {dim}] {row['index']}: build {row['build_s']:.1f}s, {row['ms_per_query']:.2f} ms/query, "
                  f"recall@{args.k} {row['recall_at_k']:.3f}", file=sys.stderr)
        del base
        gc.collect()

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    source = args.vectors.name if args.vectors else ("isotropic Gaussian" if args.isotropic else "clustered synthetic")
    print(f"\nFAISS vector search on {source} unit vectors ({args.queries} queries, k={args.k}; "
          f"ms/query = one query per call on {args.query_threads} thread(s); builds on {args.threads}).\n")
    print(f"| vectors | dim | index | parameters | build (s) | on disk (MiB) | ms/query | recall@{args.k} |")
    print("|---:|---:|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']:,} | {r['dim']} | {r['index']} | {r['params']} | {r['build_s']:.1f} | {r['size_mib']:.1f} "
              f"| {r['ms_per_query']:.2f} | {r['recall_at_k']:.3f} |")
    for note in notes:
        print(f"\n- {note}", end="")
    print(f"\n\nMachine: {machine()}. Load average at the end {os.getloadavg()[0]:.1f} (shared CPU: other jobs ran at "
          f"the same time, so times are upper bounds). Peak RSS {peak:.1f} GiB; "
          f"total {time.perf_counter() - started:.0f}s.")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "source": source, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
