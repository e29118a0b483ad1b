"""Measure the whole system on this machine: indexing, similar images, the query service, scale curves, HTTP load,
fuzzing, quality; write a report."""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from pipelines.settings import data_dir, manifest_path, reports_dir

QUICK = {"index_images": 200, "scale_sizes": [10_000], "scale_queries": 100, "http_seconds": 2.0,
         "http_connections": [1, 4, 16], "http_rounds": 1, "sustained_seconds": 5.0, "service_rounds": 10,
         "uploads": 10, "fuzz_requests": 1_000}
FULL = {"index_images": None, "scale_sizes": [10_000, 100_000, 1_000_000], "scale_queries": 200,
        "http_seconds": 10.0, "http_connections": [1, 4, 16], "http_rounds": 1, "sustained_seconds": 300.0,
        "service_rounds": 100, "uploads": 100, "fuzz_requests": 10_000}


def _ints(text: str) -> list[int]:
    try:
        values = [int(x.replace("_", "")) for x in text.split(",") if x]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, e.g. 10000,100000") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers")
    return values


def _positive(text: str) -> int:
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive integer")
    return value


def parser() -> argparse.ArgumentParser:
    from pipelines.bench import section_names

    p = argparse.ArgumentParser(prog="cxrsearch bench", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="the short run (what `make bench` runs, under 3 minutes): 200 images, 10k vectors, "
                        "2 s per wrk run, 5 s sustained, no fuzzing")
    p.add_argument("--backend", choices=("embedded", "es", "both"), default="embedded",
                   help="text backends to measure (es: the Elasticsearch at --es-url / $CXRSEARCH_ES_URL)")
    p.add_argument("--sections", help=f"comma-separated subset of: {', '.join(section_names())}")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--images", help="image folder (default the synthetic corpus)")
    p.add_argument("--manifest", help="manifest (default DATA_DIR/manifest.jsonl)")
    p.add_argument("--reports", help="Open-i reports (default DATA_DIR/reports/ecgen-radiology)")
    p.add_argument("--checkpoint", help="cascade checkpoint (default DATA_DIR/models/tiny/cascade.pt)")
    p.add_argument("--es-url", help="Elasticsearch URL (default $CXRSEARCH_ES_URL or http://127.0.0.1:9200)")
    p.add_argument("--out", default="results", help="where run folders go (default ./results)")
    p.add_argument("--index-images", type=int, help="images the indexing section indexes (default 200 quick, all full)")
    p.add_argument("--scale-sizes", type=_ints, help="vector counts of the scale curves (default 10000 quick; "
                                                     "10000,100000,1000000 full)")
    p.add_argument("--scale-queries", type=int, help="queries per scale point (100 quick, 200 full)")
    p.add_argument("--scale-vectors", choices=("real", "random", "both"), default="both",
                   help="vector sets of the scale curves: the cascade's tiled context vectors, random ones, or both")
    p.add_argument("--es-max-vectors", type=int, default=1_000_000,
                   help="largest scale size also loaded into Elasticsearch (1000000)")
    p.add_argument("--http-seconds", type=float, help="seconds per wrk run (2 quick, 10 full)")
    p.add_argument("--http-connections", type=_ints, help="wrk connection counts (1,4,16)")
    p.add_argument("--http-rounds", type=_positive,
                   help="passes over every wrk target and connection count (1); with more, targets and their peers "
                        "take turns and each figure is the run of median requests/s, so that a drift of the "
                        "machine does not fall on one side of a comparison")
    p.add_argument("--http-server", choices=("gunicorn", "granian", "waitress"), default="gunicorn",
                   help="WSGI server of every web app the bench starts (`cxrsearch serve --server`; gunicorn)")
    p.add_argument("--sustained-seconds", type=float, help="sustained-load duration (5 quick, 300 full; 0 skips it)")
    p.add_argument("--service-rounds", type=_positive, help="passes over the query set in the service section "
                                                       "(10 quick, 100 full)")
    p.add_argument("--uploads", type=_positive, help="POST /api/similar uploads per server in the http section "
                                                "(10 quick, 100 full)")
    p.add_argument("--fuzz-requests", type=_positive, help="requests the fuzz section sends at least (10000 full; the "
                                                      "section is not part of --quick unless named in --sections)")
    p.add_argument("--seed", type=int, default=0, help="seed of every sample (0)")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                   help="torch and FAISS threads in the benchmark process (default: all cores; 1 on a shared machine)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the report JSON at the end")
    return p


def main(argv: list[str]) -> int:
    from indexer.errors import IndexerError
    from pipelines.bench import BenchContext, run_bench
    from pipelines.cli.data_synth import default_out

    args = parser().parse_args(argv)
    root = data_dir(args.data_dir)
    mode = dict(QUICK if args.quick else FULL)
    for key in mode:
        value = getattr(args, key, None)
        if value is not None:
            mode[key] = value
    backends = ["embedded", "es"] if args.backend == "both" else [args.backend]
    es = None
    if "es" in backends:
        from indexer.text.elasticsearch import ElasticsearchTextBackend, ESSettings

        es = ESSettings.from_env(url=args.es_url, request_timeout=120)
        try:
            ElasticsearchTextBackend(es).check()
        except IndexerError as e:
            print(f"cxrsearch bench: error: --backend {args.backend}: {e} (`make bench` starts a server)",
                  file=sys.stderr)
            return 1
    manifest = Path(args.manifest) if args.manifest else manifest_path(root)
    reports = Path(args.reports) if args.reports else reports_dir(root)
    checkpoint = Path(args.checkpoint) if args.checkpoint else root / "models" / "tiny" / "cascade.pt"
    ctx = BenchContext(images=Path(args.images) if args.images else default_out(root),
                       manifest=manifest if manifest.is_file() else None,
                       reports=reports if reports.exists() else None, checkpoint=checkpoint, out=Path(args.out),
                       quick=args.quick, backends=backends, es=es, es_max_vectors=args.es_max_vectors, seed=args.seed,
                       scale_vectors=["real", "random"] if args.scale_vectors == "both" else [args.scale_vectors],
                       live_index=root / "index", threads=args.threads, progress=not args.no_progress,
                       http_server=args.http_server, **mode)
    names = [n.strip() for n in args.sections.split(",") if n.strip()] if args.sections else None
    try:
        report, folder = run_bench(ctx, Path(args.out), names)
    except ValueError as e:
        print(f"cxrsearch bench: error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    failed = [s.name for s in report.sections if s.status == "failed"]
    print(f"cxrsearch bench: {folder}/report.md ({report.seconds:.0f} s; "
          f"{sum(len(s.figures) for s in report.sections)} figures"
          + (f"; FAILED sections: {', '.join(failed)}" if failed else "") + ")")
    return 1 if failed else 0
