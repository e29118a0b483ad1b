"""Bench section: indexing throughput per backend, the cascade's annotation included (images/s)."""
from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import replace
from pathlib import Path

from pipelines.bench.report import COUNT, SPEED, Figure, SectionResult
from pipelines.bench.section import BenchContext, Section, register

# (text backend, vector backend) pairs measured, by text backend asked for
CONFIGS = {"embedded": [("embedded", "faiss")], "es": [("es", "faiss"), ("es", "es")]}


def image_subset(ctx: BenchContext) -> Path:
    """A folder of links to the first `ctx.index_images` images (sorted by id), with the synthetic marker."""
    from pipelines.reindex.stages import list_images

    images = list_images(ctx.images)
    if ctx.index_images is not None:
        images = images[:ctx.index_images]
    folder = ctx.work / "images"
    if folder.exists():
        return folder
    folder.mkdir(parents=True)
    for _image_id, path in images:
        os.symlink(path.resolve(), folder / path.name)
    marker = Path(ctx.images) / "SYNTHETIC.json"
    if marker.is_file():
        shutil.copy(marker, folder / marker.name)
    return folder


def es_alias(ctx: BenchContext) -> str:
    """One Elasticsearch alias for the whole run (its indices are deleted when the run ends)."""
    if "es_alias" not in ctx.shared:
        alias = f"cxrsearch-bench-{secrets.token_hex(3)}"
        ctx.shared["es_alias"] = alias

        def drop() -> None:
            from indexer.es_connection import connect

            client = connect(ctx.es)
            names = list(client.indices.get(index=f"{alias}*", allow_no_indices=True))
            if names:
                client.indices.delete(index=",".join(names))

        ctx.on_cleanup(drop)
    return ctx.shared["es_alias"]


@register
class Indexing(Section):
    name = "indexing"
    title = "Indexing throughput per backend (annotation included)"

    def available(self, ctx: BenchContext) -> str | None:
        if ctx.checkpoint is None or not Path(ctx.checkpoint).is_file():
            return f"no cascade checkpoint at {ctx.checkpoint} (run `cxrsearch train --preset tiny --reuse`)"
        return None

    def run(self, ctx: BenchContext) -> SectionResult:
        import torch

        from pipelines.annotator import load_annotator
        from pipelines.reindex import ReindexConfig, run_reindex

        result = SectionResult(self.name, self.title)
        folder = image_subset(ctx)
        annotator = load_annotator(ctx.checkpoint)  # loaded once: model start-up is not indexing
        first_images = sorted(folder.glob("*.png"))[:4]
        annotator([(p.stem, p) for p in first_images])  # warm-up, so that the first backend measured pays none
        result.notes.append(f"{len(os.listdir(folder)) - 1} images of the synthetic corpus, tiny cascade "
                            f"({annotator.model_version}) on the CPU with {torch.get_num_threads()} torch thread(s), "
                            "batches of 256; each run builds a fresh index (every image annotated), then a rerun "
                            "with nothing changed (carried over, nothing annotated).")
        builds = ctx.shared.setdefault("builds", {})
        baseline: str | None = None
        rows = []
        for text in ctx.backends:
            for backend, vectors in CONFIGS[text]:
                key = f"{backend}_{vectors}"
                es = replace(ctx.es, index=es_alias(ctx)) if backend == "es" else None
                config = ReindexConfig(images=folder, index_dir=ctx.work / f"index-{key}", backend=backend,
                                       manifest=ctx.manifest, reports=ctx.reports, es=es, vector_backend=vectors,
                                       progress_bar=ctx.progress)
                if backend == "es" and vectors == "faiss":  # a second alias: the es_es build keeps the first
                    config = replace(config, es=replace(es, index=es.index + "-f"))
                first = run_reindex(config, annotator=annotator)
                again = run_reindex(config, annotator=annotator)
                builds[key] = {"index_dir": config.index_dir, "backend": backend, "vectors": vectors,
                               "es": config.es, "version": first.live_version, "images": folder}
                fid = f"indexing.{key}.images_per_s"
                rate = first.images / first.seconds if first.seconds else None
                result.add(Figure(fid, f"index {first.images} images ({backend} text, {vectors} vectors)", rate,
                                  "images/s", SPEED, peer=baseline, baseline=baseline is None, higher_is_better=True))
                baseline = baseline or fid
                result.add(Figure(f"indexing.{key}.rerun_images_per_s", f"rerun, nothing changed ({backend} text, "
                                  f"{vectors} vectors)", first.images / again.seconds if again.seconds else None,
                                  "images/s", SPEED, peer=fid, higher_is_better=True))
                result.add(Figure(f"indexing.{key}.failed", f"failed images ({key})", first.n_failed, "images", COUNT))
                rows.append([backend, vectors, first.images, first.indexed, first.n_skipped, first.n_failed,
                             round(first.seconds, 1), round(again.seconds, 1), again.nothing_changed])
        result.table("Runs", ["text", "vectors", "images", "indexed", "skipped", "failed", "seconds",
                              "rerun seconds", "rerun kept live"], rows)
        return result
