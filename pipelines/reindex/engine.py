"""Run the N parts of a sharded reindex job on a Dask cluster: a local one by default, or a given scheduler.

Nothing new is guaranteed here, and nothing is lost: each Dask task is exactly one
`--shard I/N --build NAME` worker (`run_reindex` with `shard=(I, N)`, `build=NAME`), so the
resumable / idempotent / atomic guarantees are those of the sharded path. A task whose worker
dies is retried by Dask (`retries`) and resumes its part from its journal; the part that records
the last part switches (one finisher elected, see lifecycle.py); rerunning the whole command with
the same `--build` resumes every unfinished part and skips finished ones.

Why Dask (distributed) and not Ray: it is pure Python (wheels of a few MB, no compiled core, no
object store or dashboard processes to run), installs cleanly from PyPI for Python 3.11, its
`LocalCluster` starts in about a second on 2 cores, and `Client("tcp://host:8786")` joins an
existing cluster, which is all this job needs: N independent tasks with retries. Ray's wheel is
far larger and starts a raylet, a GCS server and a dashboard per node, weight this job does not use.

Workers on other machines must see the same inputs (images, manifest, checkpoint paths) and,
for the embedded text backend or FAISS vectors, the same `--index-dir` (a shared filesystem);
with `--backend es --vectors es` the cluster holds every shared state and no disk is shared.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

from indexer.text.base import check_version_name, new_version_name
from pipelines.reindex.config import ReindexConfig, ReindexSummary
from pipelines.reindex.stages import ReindexError

ENGINES = ("local", "dask")


@dataclass
class EngineSummary:
    """What the parts of a job did on the cluster, and which part switched."""

    engine: str
    scheduler: str
    build: str
    parts: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def switched(self) -> dict | None:
        """The summary of the part that made the build live (None if none did)."""
        return next((p for p in self.parts if p.get("switched") or p.get("nothing_changed")), None)

    def to_dict(self) -> dict:
        return {"engine": self.engine, "scheduler": self.scheduler, "build": self.build, "seconds": self.seconds,
                "parts": self.parts}

    def format(self) -> str:
        lines = [f"reindex on {self.engine} ({self.scheduler}): build {self.build}, {len(self.parts)} parts, "
                 f"{self.seconds:.1f} s"]
        for p in sorted(self.parts, key=lambda p: p["part"]):
            lines.append(f"  part {p['part']}: {p['images']} images, indexed {p['indexed']}, unchanged "
                         f"{p['unchanged']}, skipped {sum(p['skipped'].values())}, failed {sum(p['failed'].values())}"
                         + (", resumed after " + str(p["resumed"]) if p["resumed"] else "")
                         + (" -> switched" if p["switched"] else ""))
        done = self.switched
        if done and done.get("switched"):
            lines.append(f"  live: {done['live_version']} ({done['documents']} documents)"
                         + (f", vectors {done['vectors']}" if done.get("vectors") else ""))
        elif done:
            lines.append(f"  nothing changed: live version {done['live_version']} kept")
        else:
            lines.append("  no part switched: rerun the same command (same --build) to resume")
        return "\n".join(lines)


def run_part(config: ReindexConfig) -> dict:
    """One part of the job, in a Dask worker: the sharded reindex path, its summary as a plain dict."""
    if config.checkpoint is not None:
        import torch

        torch.set_num_threads(1)  # one part per worker process: N processes share the cores
    from pipelines.reindex.job import run_reindex

    summary: ReindexSummary = run_reindex(replace(config, progress_bar=False))
    return summary.to_dict()


def run_on_dask(config: ReindexConfig, parts: int, *, scheduler: str | None = None, workers: int | None = None,
                retries: int = 2, progress: bool = True) -> EngineSummary:
    """Run `parts` shards of `config` as Dask tasks and wait for them all.

    Args:
        config: the job (its `shard` is ignored; `build` names the shared build, default a fresh name).
        parts: N, the number of shards.
        scheduler: address of a running Dask scheduler (`tcp://host:8786`); None starts a local
            cluster on 127.0.0.1 with `workers` worker processes (default min(N, CPUs)), one thread each.
        retries: how often Dask reruns a part whose worker died (the rerun resumes the part).
    Raises:
        ReindexError: dask is not installed, the scheduler cannot be reached, or a part failed.
    """
    if parts < 1:
        raise ReindexError(f"--parts {parts}: must be at least 1")
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as e:
        raise ReindexError("--engine dask needs the 'distributed' package: pip install 'dask[distributed]'") from e
    build = check_version_name(config.build) if config.build else new_version_name()
    configs = [replace(config, shard=(i, parts), build=build) for i in range(1, parts + 1)]
    for c in configs:
        c.check()
    started = time.monotonic()
    cluster = None
    try:
        if scheduler is None:
            import os

            n = workers or max(1, min(parts, os.cpu_count() or 1))
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=40)
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="10s")
    except OSError as e:
        raise ReindexError(f"cannot reach the Dask scheduler {scheduler or 'local'}: {e}") from e
    summary = EngineSummary("dask", scheduler or f"local cluster, {len(client.scheduler_info()['workers'])} "
                            "worker processes", build)
    try:
        futures = [client.submit(run_part, c, key=f"reindex-{build}-part-{c.part.replace('/', 'of')}",
                                 retries=retries, pure=False) for c in configs]
        from tqdm import tqdm

        with tqdm(total=parts, unit="part", desc=f"reindex on dask ({build})", disable=not progress) as bar:
            for future in as_completed(futures):
                try:
                    summary.parts.append(future.result())
                except Exception as e:
                    raise ReindexError(f"a part of build {build} failed ({type(e).__name__}: {e}); rerun with "
                                       f"--build {build} to resume") from e
                bar.update(1)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    summary.seconds = time.monotonic() - started
    return summary
