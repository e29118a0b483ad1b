"""Optional Elasticsearch mirror of a vector store: ``dense_vector`` fields searched by approximate kNN.

The distributed vector path for deployments that outgrow one machine: the same unit vectors as the
FAISS store, one document per image (``_id`` = image id), in a ``dense_vector`` field indexed as
float HNSW with ``dot_product`` similarity (the inner product of unit vectors, as in FAISS).
Elasticsearch reports ``_score = (1 + dot) / 2`` for ``dot_product``; results here are converted
back to the inner product so scores match ``VectorStore.search``.

Besides ``indexer/text/elasticsearch.py`` this is the only module that talks to the Elasticsearch
client. Connection settings are the text backend's ``ESSettings`` (``CXRSEARCH_ES_*`` variables).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterable, Iterator, Sequence

import elastic_transport
import numpy as np
from elasticsearch import ApiError, Elasticsearch, NotFoundError, helpers

from indexer.errors import DimensionMismatch, InvalidVectorConfig, InvalidVectors, VectorStoreError
from indexer.text.elasticsearch import ESSettings, connect, connection_problem
from indexer.vectors.base import AddResult, Neighbours, check_image_ids, check_k, check_kind, unit_vectors

FIELD = "vector"
MAX_DIMS = 4096  # Elasticsearch 8.x dense_vector limit
MAX_KNN = 10_000  # Elasticsearch's limit on k and num_candidates


def vector_mapping(dimension: int, *, quantized: bool = False, m: int = 16, ef_construction: int = 100) -> dict:
    """The explicit mapping of a vector index: image id, kind, model version and the dense_vector.

    Args:
        quantized: ``int8_hnsw`` (4x smaller, approximate scores) instead of float ``hnsw``.
    """
    if not 1 <= dimension <= MAX_DIMS:
        raise InvalidVectorConfig(f"dimension={dimension} must be between 1 and {MAX_DIMS} for Elasticsearch dense_vector")
    return {
        "dynamic": "strict",
        "properties": {
            "image_id": {"type": "keyword"},
            "kind": {"type": "keyword"},
            "model_version": {"type": "keyword"},
            FIELD: {
                "type": "dense_vector",
                "dims": dimension,
                "index": True,
                "similarity": "dot_product",
                "index_options": {"type": "int8_hnsw" if quantized else "hnsw", "m": m, "ef_construction": ef_construction},
            },
        },
    }


def score_to_inner_product(score: float) -> float:
    """Elasticsearch ``dot_product`` score (1 + dot) / 2 -> the inner product ``dot``."""
    return 2.0 * float(score) - 1.0


class EsVectorIndex:
    """Vectors of one kind in one Elasticsearch index, searched by kNN.

    Args:
        index: the index name (lower case), e.g. ``cxrsearch-context-vectors``.
        dimension: vector dimension D.
        kind / model_version: recorded on every document.
        settings: connection settings (default ``ESSettings.from_env()``); or pass ``client``.
    """

    def __init__(
        self,
        index: str,
        dimension: int,
        *,
        kind: str = "context_vector",
        model_version: str = "unknown",
        settings: ESSettings | None = None,
        client: Elasticsearch | None = None,
    ) -> None:
        if not index or index != index.lower():
            raise InvalidVectorConfig(f"Elasticsearch index name {index!r} must be non-empty lower case")
        vector_mapping(dimension)  # validates the dimension
        self.index, self.dimension = index, int(dimension)
        self.kind, self.model_version = check_kind(kind), model_version
        self.settings = settings or ESSettings.from_env()
        self._client = client

    @property
    def client(self) -> Elasticsearch:
        """The Elasticsearch client (made from ``settings`` on first use)."""
        if self._client is None:
            self._client = connect(self.settings)
        return self._client

    @contextlib.contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        """Wrap client errors: unusable server -> IndexUnavailable naming the URL; others -> VectorStoreError."""
        url = self.settings.safe_url
        try:
            yield
        except NotFoundError as e:
            raise VectorStoreError(
                f"Elasticsearch at {url}: {action}: index {self.index!r} not found; create it with EsVectorIndex.create()"
            ) from e
        except (ApiError, elastic_transport.TransportError) as e:
            problem = connection_problem(url, action, e)
            if problem is not None:
                raise problem from e
            raise VectorStoreError(f"Elasticsearch at {url}: {action} failed: {e.message} ({e.meta.status})") from e

    def _owner(self) -> str:
        return f"Elasticsearch index {self.index!r} ({self.kind}, model version {self.model_version!r})"

    # -- index lifecycle ---------------------------------------------------------------------------

    def create(self, *, replace: bool = False, quantized: bool = False) -> None:
        """Create the index with the explicit mapping; an existing one must have the same dimension.

        Args:
            replace: delete an existing index first.
        """
        with self._guard(f"create index {self.index}"):
            exists = bool(self.client.indices.exists(index=self.index))
            if exists and replace:
                self.client.indices.delete(index=self.index)
            elif exists:
                mapping = self.client.indices.get_mapping(index=self.index)[self.index]["mappings"]
        if exists and not replace:
            dims = mapping.get("properties", {}).get(FIELD, {}).get("dims")
            if dims != self.dimension:
                raise DimensionMismatch(
                    f"Elasticsearch index {self.index!r} holds {dims}-d vectors, but {self.dimension}-d "
                    "were given; use another index name or create(replace=True)"
                )
            return
        with self._guard(f"create index {self.index}"):
            self.client.indices.create(
                index=self.index,
                mappings=vector_mapping(self.dimension, quantized=quantized),
                settings={"number_of_shards": self.settings.shards, "number_of_replicas": self.settings.replicas},
            )

    def delete_index(self) -> None:
        """Delete the whole index (no error when it does not exist)."""
        with self._guard(f"delete index {self.index}"):
            self.client.indices.delete(index=self.index, ignore_unavailable=True)

    def refresh(self) -> None:
        """Make every write so far visible to searches."""
        with self._guard(f"refresh {self.index}"):
            self.client.indices.refresh(index=self.index)

    def count(self) -> int:
        """Number of stored vectors."""
        with self._guard(f"count {self.index}"):
            return int(self.client.count(index=self.index)["count"])

    # -- writes ------------------------------------------------------------------------------------

    def add(self, image_ids: Sequence[str], vectors: np.ndarray, *, refresh: bool = False, batch_size: int = 500) -> AddResult:
        """Write (or overwrite) the vectors of ``image_ids``; normalised here like the FAISS store.

        Returns:
            counts of added and updated (overwritten) image ids.
        """
        x = unit_vectors(vectors, self.dimension, "vectors", self._owner())  # (N, D)
        ids = check_image_ids(image_ids, len(x))

        def actions() -> Iterator[dict]:
            for image_id, row in zip(ids, x):
                doc = {"image_id": image_id, "kind": self.kind, "model_version": self.model_version, FIELD: row.tolist()}
                yield {"_op_type": "index", "_index": self.index, "_id": image_id, "_source": doc}

        added = updated = 0
        failed: dict[str, str] = {}
        with self._guard(f"bulk write to {self.index}"):
            for ok, item in helpers.streaming_bulk(self.client, actions(), chunk_size=batch_size, raise_on_error=False):
                info = item.get("index", {})
                if not ok:
                    failed[str(info.get("_id"))] = str(info.get("error", {}).get("reason", info.get("error")))
                elif info.get("result") == "created":
                    added += 1
                else:
                    updated += 1
            if refresh:
                self.client.indices.refresh(index=self.index)
        if failed:
            first = next(iter(failed.items()))
            raise VectorStoreError(f"Elasticsearch rejected {len(failed)} of {len(ids)} vectors, e.g. {first[0]!r}: {first[1]}")
        return AddResult(added=added, updated=updated)

    def remove(self, image_ids: Iterable[str], *, refresh: bool = False) -> int:
        """Delete the vectors of ``image_ids``; unknown ids are ignored. Returns how many were deleted."""
        actions = ({"_op_type": "delete", "_index": self.index, "_id": i} for i in dict.fromkeys(image_ids))
        deleted = 0
        with self._guard(f"bulk delete from {self.index}"):
            for ok, item in helpers.streaming_bulk(self.client, actions, raise_on_error=False):
                deleted += bool(ok and item.get("delete", {}).get("result") == "deleted")
            if refresh:
                self.client.indices.refresh(index=self.index)
        return deleted

    def mirror(self, store: Any, *, batch_size: int = 1000, refresh: bool = True) -> int:
        """Copy every vector of a FAISS ``VectorStore`` into this index; returns how many were written."""
        if store.dimension != self.dimension:
            raise DimensionMismatch(f"store holds {store.dimension}-d vectors, {self._owner()} holds {self.dimension}-d")
        ids = store.image_ids()
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            self.add(chunk, store.get_vectors(chunk), batch_size=batch_size)
        if refresh:
            self.refresh()
        return len(ids)

    # -- queries -----------------------------------------------------------------------------------

    def search(
        self,
        query_vectors: np.ndarray,
        k: int = 10,
        *,
        num_candidates: int | None = None,
        restrict_to: Sequence[str] | None = None,
    ) -> list[Neighbours]:
        """Approximate kNN: the ``k`` nearest stored images of each query, best first.

        Args:
            query_vectors: (Q, D) or (D,); normalised here.
            num_candidates: HNSW candidates per shard (default max(100, 10 k)); more = better recall.
            restrict_to: only these image ids may be returned (a kNN pre-filter).
        Returns:
            one ``Neighbours`` per query, scores as inner products (cosine similarity).
        """
        k = check_k(k)
        if k > MAX_KNN:
            raise InvalidVectors(f"k={k} exceeds Elasticsearch's kNN limit of {MAX_KNN}")
        queries = unit_vectors(query_vectors, self.dimension, "query vectors", self._owner())  # (Q, D)
        candidates = min(max(num_candidates or max(100, 10 * k), k), MAX_KNN)
        results = []
        for q in queries:
            knn: dict[str, Any] = {"field": FIELD, "query_vector": q.tolist(), "k": k, "num_candidates": candidates}
            if restrict_to is not None:
                knn["filter"] = {"ids": {"values": list(restrict_to)}}
            with self._guard(f"kNN search {self.index}"):
                response = self.client.search(index=self.index, knn=knn, size=k, source=False)
            hits = response["hits"]["hits"]
            results.append(
                Neighbours(tuple(h["_id"] for h in hits), tuple(score_to_inner_product(h["_score"]) for h in hits))
            )
        return results
