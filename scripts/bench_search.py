"""Speed of the query service itself (no HTTP): p50/p99 per parsed hybrid query, beside Elasticsearch's bare _search.

    .venv/bin/python scripts/bench_search.py [--es-url URL] [--es-index ALIAS] [--rounds 200] [--out FILE]

Runs a fixed set of natural-language queries (concepts, sides, lobes, negation, hierarchy) through
`indexer.query.QueryService.search` on the live embedded index (the in-memory ranker: parse, plan,
concept and BM25 retrieval, fusion, facets, page and explanations), and, when an Elasticsearch URL
is given, in the same run: the same service on the Elasticsearch backend, and Elasticsearch's own
bare `_search` (a BM25 multi-field match of the query words, size 10) as the peer. Prints a table
and writes JSON with the machine, its load average and the commit. Speed is a benchmark, not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = [
    "pulmonary disease in upper right lobe",
    "right pleural effusion",
    "cardiomegaly without pleural effusion",
    "calcified granuloma right upper lobe",
    "big heart",
    "left basilar atelectasis",
    "COPD",
    "no acute cardiopulmonary disease",
    "mild degenerative changes of the thoracic spine",
    "bibasilar opacities",
]


def percentiles(samples: list[float]) -> dict:
    s = sorted(samples)
    pick = lambda q: s[min(len(s) - 1, int(round(q * (len(s) - 1))))]  # noqa: E731
    return {"p50_ms": round(pick(0.5) * 1000, 3), "p99_ms": round(pick(0.99) * 1000, 3),
            "mean_ms": round(statistics.fmean(s) * 1000, 3), "n": len(s)}


def time_calls(fn, rounds: int) -> list[float]:
    for q in QUERIES:  # warm up: caches, the in-memory ranker, connections
        fn(q)
    out = []
    for _ in range(rounds):
        for q in QUERIES:
            t = time.perf_counter()
            fn(q)
            out.append(time.perf_counter() - t)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index-dir", default=str(ROOT / "data" / "index"))
    p.add_argument("--es-url", help="also measure the Elasticsearch backend and bare _search at this URL")
    p.add_argument("--es-index", default="cxrsearch-images")
    p.add_argument("--rounds", type=int, default=100, help="passes over the query set (100)")
    p.add_argument("--out", default=str(ROOT / "results" / "bench_search.json"))
    args = p.parse_args()

    from indexer.query import QueryService, SearchRequest
    from indexer.text import open_backend

    results: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
                     "load_average_before": os.getloadavg(), "queries": QUERIES, "rounds": args.rounds,
                     "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                              capture_output=True, text=True).stdout.strip(), "runs": {}}
    with open_backend("embedded", index_dir=args.index_dir) as backend:
        svc = QueryService(backend)
        started = time.perf_counter()
        backend.memory_index()
        results["embedded_memory_index_build_s"] = round(time.perf_counter() - started, 3)
        results["documents"] = backend.count()
        results["runs"]["service, embedded"] = percentiles(
            time_calls(lambda q: svc.search(SearchRequest(q, k=10)), args.rounds))
        results["runs"]["parse only"] = percentiles(time_calls(lambda q: svc.parser.parse(q), args.rounds))
    if args.es_url:
        from indexer.text.elasticsearch import ESSettings
        from indexer.documents import TEXT_FIELDS

        settings = ESSettings.from_env(url=args.es_url, index=args.es_index)
        with open_backend("es", es_settings=settings) as es:
            svc = QueryService(es)
            results["runs"]["service, elasticsearch"] = percentiles(
                time_calls(lambda q: svc.search(SearchRequest(q, k=10)), max(1, args.rounds // 4)))
            fields = [f"{name}^{w}" for name, (_, w) in TEXT_FIELDS.items()]
            client = es.client
            results["runs"]["peer: bare Elasticsearch _search (BM25)"] = percentiles(time_calls(
                lambda q: client.search(index=args.es_index, query={"multi_match": {"query": q, "fields": fields}},
                                        size=10), max(1, args.rounds // 4)))
    results["load_average_after"] = os.getloadavg()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"{results['documents']} documents; {results['machine']}; load {results['load_average_before']}; "
          f"commit {results['commit']}; in-memory ranker built in {results['embedded_memory_index_build_s']} s")
    print(f"{'what':45s} {'p50 ms':>8s} {'p99 ms':>8s} {'calls':>6s}")
    for name, r in results["runs"].items():
        print(f"{name:45s} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['n']:6d}")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
