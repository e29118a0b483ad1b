"""Seeded synthetic unit vectors and numpy brute-force search, for recall tests and the vector benchmark.

The vectors imitate learned embeddings more than isotropic noise does: points of ``clusters``
Gaussian clusters in a ``latent_dim``-dimensional space, mapped into ``dim`` dimensions by a random
orthonormal projection, plus a little isotropic noise, then L2-normalised. Isotropic Gaussian
vectors in 1024-d (``latent_dim=0``) have nearly equidistant neighbours, which no approximate index
ranks well, while real embeddings concentrate near a low-dimensional, clustered set. Neither is the
distribution of this project's CNN embeddings: recall measured here describes the index, not the model.
"""

from __future__ import annotations

import numpy as np


def synthetic_vectors(
    n: int,
    dim: int,
    *,
    seed: int = 0,
    clusters: int = 256,
    latent_dim: int = 64,
    spread: float = 1.0,
    noise: float = 0.25,
    chunk: int = 65_536,
    structure_seed: int | None = None,
) -> np.ndarray:
    """Return (n, dim) float32 unit vectors, generated chunk by chunk (memory = the output only).

    Args:
        n, dim: how many vectors and their dimension.
        seed: seed of the points; queries from the same distribution use another ``seed`` and the same
            ``structure_seed``.
        clusters: Gaussian clusters in the latent space (0 or ``latent_dim=0``: isotropic Gaussian).
        latent_dim: dimension of the latent space (capped at ``dim``).
        spread: within-cluster standard deviation, relative to the spread of cluster centres (1).
        noise: isotropic noise energy relative to the signal energy (0.25 -> 6% of the norm squared).
        structure_seed: seed of the centres and the projection; default ``seed``.
    """
    rng_structure = np.random.default_rng(seed if structure_seed is None else structure_seed)
    rng = np.random.default_rng([seed, 7])
    out = np.empty((n, dim), dtype=np.float32)
    isotropic = latent_dim <= 0 or clusters <= 0
    if not isotropic:
        r = min(latent_dim, dim)
        centres = rng_structure.standard_normal((clusters, r), dtype=np.float32)  # (C, r)
        basis, _ = np.linalg.qr(rng_structure.standard_normal((dim, r)))  # (dim, r) orthonormal columns
        projection = basis.T.astype(np.float32)  # (r, dim)
        noise_std = np.float32(noise * np.sqrt(r * (1 + spread**2) / dim))
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        if isotropic:
            x = rng.standard_normal((m, dim), dtype=np.float32)
        else:
            z = centres[rng.integers(0, clusters, m)]  # (m, r)
            z += np.float32(spread) * rng.standard_normal((m, r), dtype=np.float32)
            x = z @ projection  # (m, r) @ (r, dim) -> (m, dim)
            x += noise_std * rng.standard_normal((m, dim), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + m] = x
    return out


def exact_search(base: np.ndarray, queries: np.ndarray, k: int, *,
                 chunk: int = 262_144) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force top-k by inner product in numpy (ground truth for recall).

    Args:
        base: (N, D) vectors; queries: (Q, D).
    Returns:
        scores (Q, k) float32 and row indices into ``base`` (Q, k) int64, best first.
    """
    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(base))
    best_s = np.full((len(q), 0), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), 0), dtype=np.int64)
    for start in range(0, len(base), chunk):
        s = q @ np.asarray(base[start : start + chunk], dtype=np.float32).T  # (Q, c)
        kk = min(k, s.shape[1])
        part = np.argpartition(-s, kk - 1, axis=1)[:, :kk]  # (Q, kk) unordered top of this chunk
        best_s = np.concatenate([best_s, np.take_along_axis(s, part, axis=1)], axis=1)
        best_i = np.concatenate([best_i, part + start], axis=1)
        if best_s.shape[1] > k:
            keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
            best_s, best_i = np.take_along_axis(best_s, keep, axis=1), np.take_along_axis(best_i, keep, axis=1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_s, order, axis=1), np.take_along_axis(best_i, order, axis=1)


def recall_at_k(found: list[list[str]] | list[tuple[str, ...]], truth: list[list[str]], k: int) -> float:
    """Mean over queries of |found[:k] & truth[:k]| / |truth[:k]| (1.0 when every true neighbour is found)."""
    if not truth:
        return 1.0
    total = 0.0
    for got, want in zip(found, truth):
        want_k = set(want[:k])
        total += len(set(got[:k]) & want_k) / max(len(want_k), 1)
    return total / len(truth)
