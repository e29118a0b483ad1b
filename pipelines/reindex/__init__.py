"""Batch reindex: the public job API (`ReindexJob`, `ReindexConfig`) that the CLI and the web app start jobs through.

    from pipelines.reindex import ReindexConfig, ReindexJob
    job = ReindexJob(ReindexConfig(images=..., index_dir=...), progress=callback, cancel=event)
    summary = job.run()

The modules: config.py (dataclasses), lifecycle.py (build/version lifecycle), job.py (the run
loop), stages.py (image checks, the journal), vectors.py (FAISS / Elasticsearch vector writers),
engine.py (the N parts of a sharded job on a Dask cluster).
"""
from pipelines.reindex.config import DEFAULT_BATCH, VECTOR_BACKENDS, ReindexConfig, ReindexProgress, ReindexSummary
from pipelines.reindex.job import ReindexJob, run_reindex
from pipelines.reindex.stages import ReindexCancelled, ReindexError, parse_shard

__all__ = ["DEFAULT_BATCH", "VECTOR_BACKENDS", "ReindexCancelled", "ReindexConfig", "ReindexError", "ReindexJob",
           "ReindexProgress", "ReindexSummary", "parse_shard", "run_reindex"]
