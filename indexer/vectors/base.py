"""Pure pieces shared by the vector backends: the reader interface, result types, validation, filtering."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from indexer.errors import DimensionMismatch, InvalidVectorConfig, InvalidVectors

VECTOR_KINDS = ("cnn_embedding", "context_vector", "findings")
FINDINGS = "findings"


def findings_query(stored: np.ndarray) -> np.ndarray:
    """The query vector of the 'findings' kind from stored ones: last coordinate set to 0, unit length again.

    A stored 'findings' vector is ``[p_1 .. p_L, sqrt(1 - |p|^2)]`` (models.findings.vector: the
    probabilities that the image shows each mined finding alone, then the remainder that makes it unit
    length). Asked with ``[p_q, 0]``, the cosine to a stored vector is ``p_q . p_n / |p_q|``: for one query,
    neighbours rank by the probability that both show the same single finding. A row whose p is all but
    zero (only 'several findings') is kept as stored. Takes (L + 1,) or (B, L + 1); returns (B, L + 1).
    """
    rows = np.atleast_2d(np.asarray(stored, dtype=np.float32))
    if rows.ndim != 2 or rows.shape[1] < 2:
        raise InvalidVectors(f"findings vectors must be (L + 1,) or (B, L + 1) with L >= 1, got shape {rows.shape}")
    q = rows.copy()
    q[:, -1] = 0.0
    keep = np.linalg.norm(q, axis=1) < 1e-3
    q[keep] = rows[keep]
    return q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)


def findings_probability(stored: np.ndarray) -> np.ndarray:
    """|p| of stored findings vectors ((B, L + 1) -> (B,)): the cosine of `findings_query` times it is
    ``p_q . p_n``, the probability that both images show the same single finding."""
    rows = np.atleast_2d(np.asarray(stored, dtype=np.float32))
    return np.linalg.norm(rows[:, :-1], axis=1)

# field -> values, as the text backends take them (indexer.text.base.normalise_filters)
VectorFilters = Mapping[str, Any]
# image ids -> their text documents (those that exist): what a FAISS store post-filters with
DocumentLookup = Callable[[Sequence[str]], Mapping[str, Mapping]]


@dataclass(frozen=True)
class Neighbours:
    """The nearest stored images of one query, best first.

    ``scores`` are inner products of unit vectors (cosine similarity, in [-1, 1]): exact for
    FAISS flat, IVF-Flat and HNSW, approximate for IVF-PQ; Elasticsearch scores are converted back
    to the same scale.
    """

    image_ids: tuple[str, ...]
    scores: tuple[float, ...]

    def __len__(self) -> int:
        return len(self.image_ids)

    def pairs(self) -> list[tuple[str, float]]:
        """``[(image_id, score), ...]`` best first."""
        return list(zip(self.image_ids, self.scores))


@dataclass(frozen=True)
class AddResult:
    """What an ``add`` did: new image ids and image ids whose vector was replaced."""

    added: int
    updated: int


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is one of ``VECTOR_KINDS``, else raise naming the valid ones."""
    if kind not in VECTOR_KINDS:
        raise InvalidVectorConfig(f"kind {kind!r} is unknown; valid: {', '.join(VECTOR_KINDS)}")
    return kind


def check_k(k: Any) -> int:
    """Return ``k`` as an int if it is a positive integer."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidVectors(f"k={k!r} must be a positive integer")
    return int(k)


def check_image_ids(image_ids: Sequence[str], n_vectors: int) -> list[str]:
    """Return the ids as a list: one non-empty string per vector row, no repeats."""
    ids = list(image_ids)
    if len(ids) != n_vectors:
        raise InvalidVectors(f"{len(ids)} image ids for {n_vectors} vectors; give one image id per vector row")
    bad = [i for i in ids if not isinstance(i, str) or not i]
    if bad:
        raise InvalidVectors(f"image ids must be non-empty strings, got {bad[:5]!r}")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dupes = sorted({i for i in ids if i in seen or seen.add(i)})
        raise InvalidVectors(f"image ids repeated within one batch: {dupes[:5]}; each id may appear once")
    return ids


def unit_vectors(vectors: Any, dimension: int, what: str = "vectors", owner: str = "this store") -> np.ndarray:
    """Validate and L2-normalise vectors.

    Args:
        vectors: (N, D) or (D,) array-like of real numbers (numpy, torch CPU tensor, lists).
        dimension: the D the caller holds.
        what: how to name the vectors in an error ("query vectors").
        owner: how to name the holder in an error ("this context_vector store (model version 'v1')").
    Returns:
        (N, D) float32 C-contiguous copy with unit rows.
    """
    x = np.asarray(vectors)
    if x.ndim == 1:
        x = x[None, :]  # (D,) -> (1, D)
    if x.ndim != 2:
        raise InvalidVectors(f"{what} must be a (N, {dimension}) array, got shape {x.shape}")
    if x.shape[1] != dimension:
        raise DimensionMismatch(f"{what} have dimension {x.shape[1]}, but {owner} holds {dimension}-d vectors")
    if x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InvalidVectors(f"{what} must be real numbers, got dtype {x.dtype}")
    x = np.array(x, dtype=np.float32, order="C", copy=True)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if len(bad):
        raise InvalidVectors(f"{what} rows {bad[:5].tolist()} contain NaN or infinity; every value must be finite")
    norms = np.linalg.norm(x, axis=1)  # (N,)
    zero = np.flatnonzero(norms <= 1e-12)
    if len(zero):
        raise InvalidVectors(f"{what} rows {zero[:5].tolist()} are all zeros; a direction is needed (norm > 0)")
    x /= norms[:, None]
    return x


@runtime_checkable
class VectorReader(Protocol):
    """What readers (the query service, the web app, the CLI) may ask of any vector backend.

    Implemented by the FAISS ``VectorStore`` (indexer.vectors.faiss_store) and by
    ``EsVectorIndex`` (indexer.vectors.es_knn); ``indexer.vectors.live.open_vectors`` returns the
    one the live index version was built with. Scores are cosine similarities (inner products of
    unit vectors) in both. ``filters`` take the text backends' form, ``{"view": ["frontal"]}``:
    Elasticsearch applies them inside the kNN search (a pre-filter: always k hits when k match);
    FAISS keeps no document fields, so it post-filters through the text index's documents,
    widening the search until k hits pass or the whole store was searched (exact for ``flat``).
    """

    @property
    def dimension(self) -> int: ...

    @property
    def kind(self) -> str: ...

    @property
    def model_version(self) -> str: ...

    def __len__(self) -> int: ...

    def __contains__(self, image_id: object) -> bool: ...

    def image_ids(self) -> list[str]: ...

    def get_vectors(self, image_ids: Sequence[str]) -> np.ndarray: ...

    def search(self, query_vectors: np.ndarray, k: int = 10, *,
               filters: VectorFilters | None = None) -> list[Neighbours]: ...

    def similar(self, image_id: str, k: int = 10, *, include_self: bool = False,
                filters: VectorFilters | None = None) -> Neighbours: ...


def document_matches(doc: Mapping, where: Mapping[str, Sequence[str]]) -> bool:
    """Whether a text document passes normalised filters: every field has one of its values.

    The same rule as the text backends: AND across fields, OR within one field's values, exact
    string match (booleans as 'true'/'false').
    """
    from indexer.documents import keyword_values

    return all(set(keyword_values(doc, name)) & set(values) for name, values in where.items())


def post_filter(search: Callable[[np.ndarray, int], list[Neighbours]], queries: np.ndarray, k: int, total: int,
                where: Mapping[str, Sequence[str]], documents: DocumentLookup,
                exclude: Sequence[str | None] | None = None) -> list[Neighbours]:
    """Top-k hits per query that pass ``where``, by widening an unfiltered search (for FAISS).

    Args:
        search: ``(queries (Q, D), k) -> Neighbours per query`` on the whole store.
        total: how many vectors the store holds (the widest search).
        documents: image ids -> their documents (ids without one never pass).
        exclude: per query, an image id never to return (the query image of ``similar``).
    Returns:
        one ``Neighbours`` per query, at most k each, best first.
    """
    out: list[Neighbours] = []
    verdict: dict[str, bool] = {}
    for row, q in enumerate(queries):
        skip = exclude[row] if exclude else None
        fetch = min(max(4 * k, 32), total)
        while True:
            hits = search(q[None, :], fetch)[0]
            unknown = [i for i in hits.image_ids if i not in verdict]
            if unknown:
                docs = documents(unknown)
                verdict.update({i: i in docs and document_matches(docs[i], where) for i in unknown})
            kept = [(i, s) for i, s in hits.pairs() if verdict[i] and i != skip][:k]
            if len(kept) >= k or fetch >= total:
                break
            fetch = min(fetch * 4, total)
        out.append(Neighbours(tuple(i for i, _ in kept), tuple(s for _, s in kept)))
    return out
