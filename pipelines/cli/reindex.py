"""Build the search index from images (and a cascade checkpoint): resumable, sharded, switched atomically."""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict, replace
from pathlib import Path

from indexer.errors import IndexerError
from indexer.vectors.faiss_config import INDEX_TYPES, VectorStoreConfig
from pipelines.cli.options import add_backend_options, es_settings, index_dir  # noqa: F401 (shared options)
from pipelines.errors import PipelineError
from pipelines.reindex import DEFAULT_BATCH, VECTOR_BACKENDS, ReindexConfig, ReindexError, parse_shard, run_reindex
from pipelines.settings import data_dir, manifest_path, reports_dir


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch reindex", description=__doc__)
    p.add_argument("--images", help="folder of <image id>.png files (default: the synthetic corpus, "
                                    "DATA_DIR/images/synthetic/NLMCXR_png)")
    p.add_argument("--manifest", help="manifest from `cxrsearch data prepare` (default DATA_DIR/manifest.jsonl)")
    p.add_argument("--reports", help="Open-i reports, folder or .tgz (default DATA_DIR/reports/ecgen-radiology)")
    p.add_argument("--no-reports", action="store_true", help="index without report sections")
    p.add_argument("--checkpoint", help="cascade checkpoint: annotate every new or changed image with it, and "
                                        "store its CNN embeddings and context vectors in FAISS for `cxrsearch similar`")
    p.add_argument("--no-vectors", action="store_true", help="with --checkpoint: write the text index only")
    p.add_argument("--vectors", choices=VECTOR_BACKENDS, default="faiss", dest="vector_backend",
                   help="where the vectors go: faiss (files beside the index, default) or es (dense_vector "
                        "indices on the Elasticsearch cluster of the text index; needs --backend es)")
    p.add_argument("--vector-index", choices=INDEX_TYPES, default="auto",
                   help="FAISS index type of the vector stores (auto: exact below 100,000 images, then IVF)")
    add_backend_options(p)
    p.add_argument("--shard", default="1/1", help="I/N: index only shard I of N (run N workers with the same --build)")
    p.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="local: this process (default); dask: run --parts shards as tasks on a Dask cluster")
    p.add_argument("--parts", type=int, default=None,
                   help="with --engine dask: number of shards (default: the number of workers)")
    p.add_argument("--scheduler", help="with --engine dask: address of a running Dask scheduler, e.g. "
                                       "tcp://10.0.0.5:8786 (default: a local cluster on 127.0.0.1)")
    p.add_argument("--workers", type=int, default=None,
                   help="with --engine dask and no --scheduler: local worker processes (default min(parts, CPUs))")
    p.add_argument("--build", help="version name of this build; the same on all N workers of a sharded job")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH, help=f"images per batch ({DEFAULT_BATCH})")
    p.add_argument("--fresh", action="store_true", help="discard an unfinished build instead of resuming it")
    p.add_argument("--keep-previous", action="store_true", help="keep the previously live version after switching")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--progress-json", action="store_true",
                   help="for programs that run this command (the web app's admin jobs): one JSON line per progress "
                        "report on stdout ({\"progress\": {...}}), then {\"summary\": {...}} or {\"cancelled\": "
                        "\"...\"}; SIGTERM, SIGINT or the death of its parent process stop it after the current "
                        "batch (exit 3; the build resumes on the next run)")
    return p


CANCELLED_EXIT = 3


def run_for_program(config: ReindexConfig) -> int:
    """--progress-json: progress and the outcome as JSON lines; SIGTERM/SIGINT, or the death of the process that
    started this one, cancel between batches (the build is kept and resumes on the next run)."""
    import signal
    import threading

    from pipelines.reindex import ReindexCancelled

    cancel = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: cancel.set())
    # the program that started us (given by it, else our parent now): when it dies, stop resumably
    parent = int(os.environ.get("CXRSEARCH_PARENT_PID") or os.getppid())

    def stop_with_parent() -> None:
        while not cancel.wait(1.0):
            if os.getppid() != parent:
                cancel.set()

    threading.Thread(target=stop_with_parent, daemon=True).start()

    def line(obj: dict) -> None:
        try:
            print(json.dumps(obj, ensure_ascii=False), flush=True)
        except OSError:  # nobody reads us any more (BrokenPipeError): stop after this batch, write on into nothing
            cancel.set()
            sys.stdout = open(os.devnull, "w")  # for the rest of this process

    def progress(p) -> None:  # a ReindexProgress, field by field
        line({"progress": {**asdict(p), "elapsed_s": round(p.elapsed_s, 3)}})

    try:
        summary = run_reindex(replace(config, progress_bar=False), progress=progress, cancel=cancel)
    except ReindexCancelled as e:
        line({"cancelled": str(e)})
        return CANCELLED_EXIT
    line({"summary": summary.to_dict()})
    return 1 if summary.n_failed else 0


def config_from_args(args: argparse.Namespace) -> ReindexConfig:
    root = data_dir(args.data_dir)
    if args.images:
        images = Path(args.images)
    else:
        from pipelines.cli.data_synth import default_out  # where `cxrsearch data synth` renders

        images = default_out(root)
    manifest = Path(args.manifest) if args.manifest else manifest_path(root)
    if not args.manifest and not manifest.is_file():
        manifest = None
    reports = None
    if not args.no_reports:
        reports = Path(args.reports) if args.reports else reports_dir(root)
        if not args.reports and not reports.exists():
            reports = None
    return ReindexConfig(
        images=images, index_dir=index_dir(args), backend=args.backend, manifest=manifest, reports=reports,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None, shard=parse_shard(args.shard),
        batch_size=args.batch_size, build=args.build, fresh=args.fresh, keep_previous=args.keep_previous,
        es=es_settings(args), progress_bar=not args.no_progress, vectors=not args.no_vectors,
        vector_backend=args.vector_backend, vector_config=VectorStoreConfig(index_type=args.vector_index))


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        config = config_from_args(args)
        config.check()
        if args.engine == "dask":
            if args.shard != "1/1":
                raise ReindexError("--engine dask runs every shard itself: give --parts N, not --shard")
            from pipelines.reindex.engine import run_on_dask

            parts = args.parts or args.workers or 2
            result = run_on_dask(config, parts, scheduler=args.scheduler, workers=args.workers,
                                 progress=not args.no_progress)
            print(json.dumps(result.to_dict(), indent=2) if args.json else result.format())
            return 1 if result.switched is None or any(sum(p["failed"].values()) for p in result.parts) else 0
        if args.parts or args.scheduler or args.workers:
            raise ReindexError("--parts, --scheduler and --workers need --engine dask")
        if args.progress_json:
            return run_for_program(config)
        summary = run_reindex(config)
    except (IndexerError, PipelineError) as e:
        print(f"cxrsearch reindex: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary.to_dict(), indent=2) if args.json else summary.format())
    return 1 if summary.n_failed else 0
