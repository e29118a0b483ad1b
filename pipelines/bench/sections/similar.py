"""Bench section: similar-image search by id (FAISS vs Elasticsearch kNN), filtered, and by upload (CNN + search)."""
from __future__ import annotations

import time

import numpy as np

from pipelines.bench.report import QUALITY, SPEED, Figure, SectionResult
from pipelines.bench.section import BenchContext, Section, register


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    """(p50, p95) in milliseconds."""
    ms = np.asarray(samples_s) * 1000.0
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def open_build(build: dict):
    """(text backend, LiveVectors) of one of the indexing section's builds."""
    from indexer.text import open_backend
    from indexer.vectors.live import LiveVectors

    backend = open_backend(build["backend"], index_dir=build["index_dir"], es_settings=build["es"])
    return backend, LiveVectors(build["index_dir"], backend)


@register
class Similar(Section):
    name = "similar"
    title = "Similar-image search: by id (FAISS vs Elasticsearch kNN), filtered, by upload"

    def available(self, ctx: BenchContext) -> str | None:
        if not ctx.shared.get("builds"):
            return "needs the indexing section's builds (it was skipped or failed)"
        return None

    def run(self, ctx: BenchContext) -> SectionResult:
        from pipelines.bench.vectors import recall_at_k

        result = SectionResult(self.name, self.title)
        rng = np.random.default_rng(ctx.seed)
        queries = 50 if ctx.quick else 300
        builds = {k: b for k, b in ctx.shared["builds"].items()}
        order = [k for k in ("embedded_faiss", "es_faiss", "es_es") if k in builds]
        exact: dict[str, tuple[str, ...]] = {}
        baseline = None
        for key in order:
            backend, live = open_build(builds[key])
            version, store = live.get("context")
            ids = sorted(store.image_ids())
            picked = [ids[i] for i in rng.choice(len(ids), size=min(queries, len(ids)), replace=False)]
            store.similar(picked[0], 10)  # warm-up (file mapping, connection)
            times, found = [], {}
            for image_id in picked:
                t = time.perf_counter()
                found[image_id] = store.similar(image_id, 10).image_ids
                times.append(time.perf_counter() - t)
            if not exact:  # exact answers from the vectors themselves (numpy brute force)
                vectors = store.get_vectors(ids)  # (N, D)
                q = store.get_vectors(picked)
                scores = q @ vectors.T  # (Q, N)
                for row, image_id in enumerate(picked):
                    best = [ids[j] for j in np.argsort(-scores[row], kind="stable") if ids[j] != image_id][:10]
                    exact[image_id] = tuple(best)
            p50, p95 = percentiles(times)
            fid = f"similar.{key}.p50_ms"
            label = f"by id, {builds[key]['vectors']} vectors ({builds[key]['backend']} text)"
            result.add(Figure(fid, f"{label}: p50", p50, "ms", SPEED, peer=baseline, baseline=baseline is None))
            result.add(Figure(f"similar.{key}.p95_ms", f"{label}: p95", p95, "ms", SPEED,
                              peer=f"similar.{order[0]}.p95_ms" if baseline else None, baseline=baseline is None))
            common = [i for i in picked if i in exact]
            result.add(Figure(f"similar.{key}.recall10", f"{label}: recall@10 vs exact", recall_at_k(
                [found[i] for i in common], [list(exact[i]) for i in common], 10), "recall@10", QUALITY))
            baseline = baseline or fid
            # filtered: frontal views only (FAISS post-filters through the text documents, ES filters in kNN)
            times = []
            for image_id in picked[:max(10, queries // 3)]:
                t = time.perf_counter()
                store.similar(image_id, 10, filters={"view": "lateral"})
                times.append(time.perf_counter() - t)
            result.add(Figure(f"similar.{key}.filtered_p50_ms", f"{label}, filter view=lateral: p50",
                              percentiles(times)[0], "ms", SPEED, peer=fid))
            if key == order[0]:
                self._upload(ctx, result, store, picked[:max(10, queries // 5)], fid, label)
            backend.close()
        result.notes.append(f"{queries} query images drawn with seed {ctx.seed}, k = 10, one query at a time "
                            "in this process; recall against numpy brute force over the same vectors.")
        return result

    def _upload(self, ctx, result, store, picked, peer, label) -> None:
        """By upload: read the PNG, run the CNN and RNN (the context vector), search (what the API's upload does)."""
        from pipelines.annotator import load_annotator
        from pipelines.bench.sections.indexing import image_subset

        annotator = load_annotator(ctx.checkpoint)
        folder = image_subset(ctx)
        annotator([(picked[0], folder / f"{picked[0]}.png")])  # warm-up
        times = []
        for image_id in picked:
            t = time.perf_counter()
            [out] = annotator([(image_id, folder / f"{image_id}.png")])
            store.search(out.context_vector, 10)
            times.append(time.perf_counter() - t)
        result.add(Figure("similar.upload.p50_ms", f"by upload (decode + cascade + search), {label}: p50",
                          percentiles(times)[0], "ms", SPEED, peer=peer))
        ctx.shared["upload_figure"] = "similar.upload.p50_ms"  # the peer of the http section's upload over HTTP
