"""Bench section: scale curves, FAISS flat vs IVF-Flat vs HNSW vs Elasticsearch kNN at growing sizes.

Two vector sets per size: the cascade's real context vectors (`annotate` output, from the indexing
section's build) tiled with noise to the size, and isotropic random unit vectors (the hard case for
every approximate index). Ground truth is the exact (flat) search over the same vectors.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from pipelines.bench.report import QUALITY, SIZE, SPEED, Figure, SectionResult
from pipelines.bench.section import BenchContext, Section, register

FAISS_TYPES = ("flat", "ivf_flat", "hnsw")
NOISE = 0.3  # norm of the noise added to a tiled real vector, relative to its unit norm


def tiled(real: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n unit vectors: rows of `real` drawn with replacement, each plus Gaussian noise of norm ~NOISE."""
    rng = np.random.default_rng(seed)
    d = real.shape[1]
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 65_536):
        m = min(65_536, n - start)
        x = real[rng.integers(0, len(real), m)] + rng.standard_normal((m, d), dtype=np.float32) * (NOISE / np.sqrt(d))
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def random_unit(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    for start in range(0, n, 65_536):
        m = min(65_536, n - start)
        x = rng.standard_normal((m, d), dtype=np.float32)
        out[start:start + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def real_vectors(ctx: BenchContext) -> np.ndarray | None:
    """The live index's context vectors (all images after `make demo`), else the indexing section's, else None."""
    from indexer.errors import IndexerError
    from indexer.vectors.live import live_vectors

    if ctx.live_index is not None:
        try:
            store = live_vectors(ctx.live_index, "context")
            return store.get_vectors(store.image_ids())
        except IndexerError:
            pass
    for build in ctx.shared.get("builds", {}).values():
        if build["vectors"] == "faiss":
            store = live_vectors(build["index_dir"], "context", backend=build["backend"], es_settings=build["es"])
            return store.get_vectors(store.image_ids())
    return None


@register
class Scale(Section):
    name = "scale"
    title = "Scale curves: FAISS flat / IVF-Flat / HNSW vs Elasticsearch kNN"

    def run(self, ctx: BenchContext) -> SectionResult:
        result = SectionResult(self.name, self.title)
        real = real_vectors(ctx) if "real" in ctx.scale_vectors else None
        sets = {}
        if real is not None:
            sets["real"] = real
            result.notes.append(f"real: {len(real):,} context vectors of the cascade (the live index's, else the "
                                "indexing section's), tiled with noise.")
        elif "real" in ctx.scale_vectors:
            result.notes.append("no real context vectors (no live index, no indexing run): random vectors only")
        dim = real.shape[1] if real is not None else 128
        if "random" in ctx.scale_vectors or not sets:
            sets["random"] = None
        curves: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
        rows = []
        for name, base in sets.items():
            for n in ctx.scale_sizes:
                seed = ctx.seed + n
                x = tiled(base, n, seed) if base is not None else random_unit(n, dim, seed)
                q = tiled(base, ctx.scale_queries, seed + 1) if base is not None else random_unit(
                    ctx.scale_queries, dim, seed + 1)
                truth = None
                for method in (*FAISS_TYPES, "es_knn"):
                    if method == "es_knn" and (ctx.es is None or "es" not in ctx.backends or n > ctx.es_max_vectors):
                        continue
                    measured = self._measure(ctx, method, x, q, name, n)
                    if measured is None:
                        continue
                    found, build_s, p50, size = measured
                    if method == "flat":
                        truth = found
                    recall = _recall(found, truth)
                    prefix = f"scale.{name}.{n}.{method}"
                    flat = f"scale.{name}.{n}.flat"
                    is_flat = method == "flat"
                    result.add(Figure(f"{prefix}.p50_ms", f"{name} {n:,}: {method} query p50", p50, "ms", SPEED,
                                      peer=None if is_flat else f"{flat}.p50_ms", baseline=is_flat))
                    result.add(Figure(f"{prefix}.build_s", f"{name} {n:,}: {method} build", build_s, "s", SPEED,
                                      peer=None if is_flat else f"{flat}.build_s", baseline=is_flat))
                    result.add(Figure(f"{prefix}.recall10", f"{name} {n:,}: {method} recall@10", recall,
                                      "recall@10", QUALITY))
                    result.add(Figure(f"{prefix}.size_mib", f"{name} {n:,}: {method} size", size / 2**20, "MiB", SIZE))
                    curves.setdefault((name, method), []).append((n, recall, p50))
                    rows.append([name, n, method, round(recall, 3), round(p50, 3), round(build_s, 2),
                                 round(size / 2**20, 1)])
                del x
        result.table("Curves", ["vectors", "size", "method", "recall@10", "p50 ms", "build s", "MiB"], rows)
        result.notes.append(
            f"{dim}-d unit vectors, cosine (inner product), k = 10, {ctx.scale_queries} queries one at a time; "
            f"real = the cascade's context vectors tiled with noise (norm {NOISE}); random = "
            "isotropic Gaussian. FAISS: IVF-Flat nlist = 4 sqrt(n), nprobe = max(16, nlist/16); HNSW M = 32, "
            "efConstruction 80, efSearch 64; FAISS with the benchmark's threads (header). Elasticsearch: HNSW m = 16, "
            "ef_construction = 100, num_candidates = 100, merged to one segment; build includes bulk loading "
            f"over HTTP. Sizes: FAISS index files on disk, Elasticsearch primary store. Elasticsearch up to "
            f"{ctx.es_max_vectors:,} vectors.")
        result.plots += self._plots(ctx, curves)
        return result

    def _measure(self, ctx, method, x, q, name, n):
        """(ids found per query, build seconds, query p50 ms, bytes) of one method on one vector set."""
        ids = [f"v{i}" for i in range(len(x))]
        if method == "es_knn":
            return self._measure_es(ctx, ids, x, q, name, n)
        from indexer.vectors.faiss_config import VectorStoreConfig
        from indexer.vectors.faiss_store import VectorStore

        t = time.perf_counter()
        store = VectorStore.build(ids, x, config=VectorStoreConfig(index_type=method), model_version="bench")
        build_s = time.perf_counter() - t
        folder = ctx.work / f"scale-{name}-{n}-{method}"
        store.save(folder)
        size = folder_bytes(folder)
        found, times = _queries(store, q)
        del store
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return found, build_s, float(np.percentile(np.asarray(times) * 1000, 50)), size

    def _measure_es(self, ctx, ids, x, q, name, n):
        from indexer.vectors.es_knn import EsVectorIndex

        index = EsVectorIndex(f"{ctx.shared.get('es_alias', 'cxrsearch-bench')}-scale-{name}-{n}", x.shape[1],
                              model_version="bench", settings=ctx.es)
        t = time.perf_counter()
        index.create(replace=True, building=True)
        try:
            for start in range(0, len(ids), 2000):
                index.add(ids[start:start + 2000], x[start:start + 2000], batch_size=2000)
            index.finish_build()
            build_s = time.perf_counter() - t
            found, times = _queries(index, q)
            size = index.size_bytes()
        finally:
            index.delete_index()
        return found, build_s, float(np.percentile(np.asarray(times) * 1000, 50)), size

    def _plots(self, ctx: BenchContext, curves) -> list[str]:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        names = []
        for vectors in sorted({k[0] for k in curves}):
            fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
            for (name, method), points in sorted(curves.items()):
                if name != vectors:
                    continue
                sizes = [p[0] for p in points]
                left.plot(sizes, [p[1] for p in points], marker="o", label=method)
                right.plot(sizes, [p[2] for p in points], marker="o", label=method)
            for ax, ylabel in ((left, "recall@10"), (right, "query p50 (ms)")):
                ax.set_xscale("log")
                ax.set_xlabel("vectors")
                ax.set_ylabel(ylabel)
                ax.grid(True, alpha=0.3)
                ax.legend()
            right.set_yscale("log")
            fig.suptitle(f"scale curves, {vectors} vectors (SYNTHETIC corpus; this machine)")
            fig.tight_layout()
            file = f"scale-{vectors}.png"
            fig.savefig(ctx.out / file, dpi=100)
            plt.close(fig)
            names.append(file)
        return names


def _queries(reader, q: np.ndarray) -> tuple[list[tuple[str, ...]], list[float]]:
    reader.search(q[:1], 10)  # warm-up
    found, times = [], []
    for row in q:
        t = time.perf_counter()
        found.append(reader.search(row, 10)[0].image_ids)
        times.append(time.perf_counter() - t)
    return found, times


def _recall(found, truth) -> float:
    if truth is None:
        return float("nan")
    from pipelines.bench.vectors import recall_at_k

    return recall_at_k(found, [list(t) for t in truth], 10)
