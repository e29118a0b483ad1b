"""Vectors in Elasticsearch: ``dense_vector`` indices searched by approximate kNN with filters.

The distributed vector path for deployments that outgrow one machine (`reindex --vectors es`): the
same unit vectors as the FAISS store, one document per image (``_id`` = image id), in a
``dense_vector`` field indexed as float HNSW with ``dot_product`` similarity (the inner product of
unit vectors, as in FAISS). Elasticsearch reports ``_score = (1 + dot) / 2`` for ``dot_product``;
results here are converted back to the inner product so scores match ``VectorStore.search``.

Each vector document also carries the image's filter fields (``indexer.documents.FILTER_FIELDS``:
view, findings, laterality, ...), copied from its text document, so ``search(..., filters=...)``
filters *inside* the kNN search (Elasticsearch's kNN ``filter``: k hits whenever k images match).
``EsVectorIndex`` offers readers the same interface as the FAISS ``VectorStore``
(``indexer.vectors.base.VectorReader``).

Per text-index version and kind, the reindex job writes one index
``<alias>-knn-<kind>-v<version>`` (``knn_index_name``), beside the text index ``<alias>-v<version>``
on the same cluster; readers find it through the text index's live version, so the text alias
switch makes text and vectors live together.

Besides ``indexer/text/elasticsearch.py`` this is the only module that talks to the Elasticsearch
client. Connection settings are the text backend's ``ESSettings`` (``CXRSEARCH_ES_*`` variables).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch, NotFoundError, helpers

from indexer.documents import BOOLEAN_FIELDS, FILTER_FIELDS, keyword_values
from indexer.errors import (
    DimensionMismatch,
    InvalidVectorConfig,
    InvalidVectors,
    UnknownImageId,
    VectorStoreError,
    VectorStoreNotFound,
)
from indexer.es_connection import ESConnection, ESSettings
from indexer.text.base import check_version_name, normalise_filters
from indexer.vectors.base import (
    VECTOR_KINDS,
    AddResult,
    Neighbours,
    VectorFilters,
    check_image_ids,
    check_k,
    check_kind,
    unit_vectors,
)

FIELD = "vector"
MAX_DIMS = 4096  # Elasticsearch 8.x dense_vector limit
MAX_KNN = 10_000  # Elasticsearch's limit on k and num_candidates
KNN_INFIX = "-knn-"
PAGE = 10_000  # ids per page when listing


def knn_index_name(alias: str, kind: str, version: str) -> str:
    """The kNN index of one kind for one text-index version: ``<alias>-knn-<kind>-v<version>``."""
    return f"{alias}{KNN_INFIX}{check_kind(kind)}-v{check_version_name(version)}"


def knn_versions(client: Elasticsearch, alias: str) -> dict[str, list[str]]:
    """Text-index versions that have kNN indices under ``alias``: {version: [index names]}."""
    found = client.indices.get(index=f"{alias}{KNN_INFIX}*", allow_no_indices=True, ignore_unavailable=True)
    out: dict[str, list[str]] = {}
    for name in found:
        rest = name[len(alias) + len(KNN_INFIX):]
        kind, sep, version = rest.partition("-v")
        if sep and kind in VECTOR_KINDS:
            out.setdefault(version, []).append(name)
    return out


def vector_mapping(dimension: int, *, quantized: bool = False, m: int = 16, ef_construction: int = 100,
                   kind: str | None = None, model_version: str | None = None) -> dict:
    """The explicit mapping of a vector index: image id, kind, model version, filter fields and the dense_vector.

    Args:
        quantized: ``int8_hnsw`` (4x smaller, approximate scores) instead of float ``hnsw``.
        kind / model_version: recorded in the mapping's ``_meta`` (what ``EsVectorIndex.open`` reads).
    """
    if not 1 <= dimension <= MAX_DIMS:
        raise InvalidVectorConfig(f"dimension={dimension} must be between 1 and {MAX_DIMS} "
                                  "for Elasticsearch dense_vector")
    props: dict[str, dict] = {name: {"type": "keyword"} for name in FILTER_FIELDS}
    props.update({name: {"type": "boolean"} for name in BOOLEAN_FIELDS})
    props.update({
        "kind": {"type": "keyword"},
        "model_version": {"type": "keyword"},
        FIELD: {
            "type": "dense_vector",
            "dims": dimension,
            "index": True,
            "similarity": "dot_product",
            "index_options": {"type": "int8_hnsw" if quantized else "hnsw", "m": m, "ef_construction": ef_construction},
        },
    })
    # the stored model version of a document is the model's; the field of the same name in the
    # copied filter fields would clash, so the vector's own model version wins
    return {"dynamic": "strict", "_meta": {"kind": kind, "model_version": model_version, "dimension": dimension},
            "properties": props}


def filter_fields(document: Mapping | None) -> dict[str, Any]:
    """The filter fields of a text document, as a vector document stores them."""
    if not document:
        return {}
    out: dict[str, Any] = {}
    for name in FILTER_FIELDS:
        if name in ("image_id", "model_version"):
            continue
        if name in BOOLEAN_FIELDS:
            if document.get(name) is not None:
                out[name] = bool(document[name])
            continue
        values = keyword_values(document, name)
        if values:
            out[name] = values
    return out


def score_to_inner_product(score: float) -> float:
    """Elasticsearch ``dot_product`` score (1 + dot) / 2 -> the inner product ``dot``."""
    return 2.0 * float(score) - 1.0


class EsVectorIndex:
    """Vectors of one kind in one Elasticsearch index, searched by kNN (a ``VectorReader``).

    Args:
        index: the index name (lower case), e.g. ``knn_index_name("cxrsearch-images", "context_vector", v)``.
        dimension: vector dimension D.
        kind / model_version: recorded on every document and in the mapping's ``_meta``.
        settings: connection settings (default ``ESSettings.from_env()``); or pass ``client``.
        num_candidates: HNSW candidates per shard for searches (default max(100, 10 k)).
    """

    index_type = "es_hnsw"

    def __init__(
        self,
        index: str,
        dimension: int,
        *,
        kind: str = "context_vector",
        model_version: str = "unknown",
        settings: ESSettings | None = None,
        client: Elasticsearch | None = None,
        num_candidates: int | None = None,
    ) -> None:
        if not index or index != index.lower():
            raise InvalidVectorConfig(f"Elasticsearch index name {index!r} must be non-empty lower case")
        vector_mapping(dimension)  # validates the dimension
        self.index, self.dimension = index, int(dimension)
        self.kind, self.model_version = check_kind(kind), model_version
        self.settings = settings or ESSettings.from_env()
        self.num_candidates = num_candidates
        self._connection = ESConnection(self.settings, client)

    @classmethod
    def open(cls, index: str, *, settings: ESSettings | None = None, client: Elasticsearch | None = None,
             expect_kind: str | None = None, expect_model_version: str | None = None) -> EsVectorIndex:
        """Open an existing vector index, reading dimension, kind and model version from its mapping.

        Raises:
            VectorStoreNotFound: no such index.
            VectorStoreError: the index is not a vector index, or holds another kind or model.
        """
        probe = cls(index, 1, settings=settings, client=client)
        with probe._guard(f"read the mapping of {index}"):
            try:
                mapping = probe.client.indices.get_mapping(index=index)[index]["mappings"]
            except NotFoundError:
                raise VectorStoreNotFound(
                    f"no vector index {index!r} at {probe.settings.safe_url}; build one "
                    "with `cxrsearch reindex --backend es --vectors es --checkpoint CKPT`") from None
        meta = mapping.get("_meta") or {}
        dims = mapping.get("properties", {}).get(FIELD, {}).get("dims")
        if not isinstance(dims, int):
            raise VectorStoreError(f"Elasticsearch index {index!r} has no {FIELD!r} dense_vector field")
        kind, model_version = meta.get("kind") or "context_vector", meta.get("model_version") or "unknown"
        if expect_kind is not None and kind != expect_kind:
            raise InvalidVectorConfig(f"Elasticsearch index {index!r} holds {kind!r} vectors, not {expect_kind!r}")
        if expect_model_version is not None and model_version != expect_model_version:
            from indexer.errors import ModelVersionMismatch

            raise ModelVersionMismatch(f"Elasticsearch index {index!r} was built by model version {model_version!r}, "
                                       f"but {expect_model_version!r} was expected")
        return cls(index, dims, kind=kind, model_version=model_version, settings=probe.settings, client=probe.client)

    @property
    def client(self) -> Elasticsearch:
        """The Elasticsearch client (made from ``settings`` on first use)."""
        return self._connection.client

    def _guard(self, action: str):
        """Client errors: unusable server -> IndexUnavailable naming the URL (indexer.es_connection); a missing
        index -> VectorStoreNotFound; others -> VectorStoreError."""
        return self._connection.guard(
            action, lambda message: VectorStoreNotFound(f"{message}: index {self.index!r}; create it with "
                                                        "EsVectorIndex.create()"), VectorStoreError)

    def _owner(self) -> str:
        return f"Elasticsearch index {self.index!r} ({self.kind}, model version {self.model_version!r})"

    # -- index lifecycle ---------------------------------------------------------------------------

    def create(self, *, replace: bool = False, quantized: bool = False, building: bool = False) -> None:
        """Create the index with the explicit mapping; an existing one must have the same dimension.

        Args:
            replace: delete an existing index first.
            building: no periodic refresh (a bulk build); ``finish_build`` turns it on.
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
        settings: dict[str, Any] = {"number_of_shards": self.settings.shards,
                                    "number_of_replicas": self.settings.replicas}
        if building:
            settings["refresh_interval"] = "-1"
        with self._guard(f"create index {self.index}"):
            self.client.indices.create(
                index=self.index,
                mappings=vector_mapping(self.dimension, quantized=quantized, kind=self.kind,
                                        model_version=self.model_version),
                settings=settings,
            )

    def finish_build(self, *, merge: bool = True) -> None:
        """After a bulk build: periodic refresh on, refresh, and merge to one segment (one HNSW graph)."""
        with self._guard(f"finish building {self.index}"):
            self.client.indices.put_settings(index=self.index, settings={"index": {"refresh_interval": "1s"}})
            self.client.indices.refresh(index=self.index)
            if merge:
                self.client.options(request_timeout=3600).indices.forcemerge(index=self.index, max_num_segments=1)
                self.client.indices.refresh(index=self.index)

    def exists(self) -> bool:
        """Whether the index exists."""
        with self._guard(f"check index {self.index}"):
            return bool(self.client.indices.exists(index=self.index))

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

    def size_bytes(self) -> int:
        """Space the index takes on disk (primaries), vectors and HNSW graph included."""
        with self._guard(f"stats of {self.index}"):
            stats = self.client.indices.stats(index=self.index, metric="store")
        return int(stats["indices"][self.index]["primaries"]["store"]["size_in_bytes"])

    # -- the reader interface (as VectorStore) ------------------------------------------------------

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, image_id: object) -> bool:
        if not isinstance(image_id, str) or not image_id:
            return False
        with self._guard(f"look up {image_id} in {self.index}"):
            return bool(self.client.exists(index=self.index, id=image_id))

    def present(self, image_ids: Sequence[str]) -> set[str]:
        """Those of ``image_ids`` that have a vector here (one request per 1,000)."""
        ids, found = list(dict.fromkeys(image_ids)), set()
        with self._guard(f"look up ids in {self.index}"):
            for start in range(0, len(ids), 1000):
                response = self.client.mget(index=self.index, ids=ids[start:start + 1000], source=False)
                found.update(d["_id"] for d in response["docs"] if d.get("found"))
        return found

    def image_ids(self) -> list[str]:
        """All stored image ids, sorted (paged with search_after)."""
        out: list[str] = []
        after: list | None = None
        with self._guard(f"list ids of {self.index}"):
            while True:
                response = self.client.search(index=self.index, size=PAGE, source=False, sort=[{"image_id": "asc"}],
                                              query={"match_all": {}}, search_after=after, track_total_hits=False)
                hits = response["hits"]["hits"]
                out.extend(h["_id"] for h in hits)
                if len(hits) < PAGE:
                    return out
                after = hits[-1]["sort"]

    def get_vectors(self, image_ids: Sequence[str]) -> np.ndarray:
        """The stored unit vectors of ``image_ids`` as (N, D) float32; UnknownImageId for a missing one."""
        ids = list(image_ids)
        rows: dict[str, list[float]] = {}
        with self._guard(f"get vectors from {self.index}"):
            for start in range(0, len(ids), 1000):
                response = self.client.mget(index=self.index, ids=ids[start:start + 1000], source=[FIELD])
                rows.update({d["_id"]: d["_source"][FIELD] for d in response["docs"] if d.get("found")})
        missing = [i for i in ids if i not in rows]
        if missing:
            raise UnknownImageId(f"image ids not in the {self.kind} index {self.index!r}: {missing[:5]}"
                                 f"{' ...' if len(missing) > 5 else ''}")
        if not ids:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.asarray([rows[i] for i in ids], dtype=np.float32)  # (N, D)

    # -- writes ------------------------------------------------------------------------------------

    def add(self, image_ids: Sequence[str], vectors: np.ndarray, *, refresh: bool = False, batch_size: int = 500,
            documents: Mapping[str, Mapping] | None = None) -> AddResult:
        """Write (or overwrite) the vectors of ``image_ids``; normalised here like the FAISS store.

        Args:
            documents: image id -> its text document, whose filter fields are copied (for filtered kNN).
        Returns:
            counts of added and updated (overwritten) image ids.
        """
        x = unit_vectors(vectors, self.dimension, "vectors", self._owner())  # (N, D)
        ids = check_image_ids(image_ids, len(x))
        docs = documents or {}

        def actions() -> Iterator[dict]:
            for image_id, row in zip(ids, x):
                doc = {**filter_fields(docs.get(image_id)), "image_id": image_id, "kind": self.kind,
                       "model_version": self.model_version, FIELD: row.tolist()}
                yield {"_op_type": "index", "_index": self.index, "_id": image_id, "_source": doc}

        added = updated = 0
        failed: dict[str, str] = {}
        with self._guard(f"bulk write to {self.index}"):
            for ok, item in helpers.streaming_bulk(self.client, actions(), chunk_size=batch_size, raise_on_error=False,
                                                   max_retries=2, initial_backoff=1):
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
            raise VectorStoreError(f"Elasticsearch rejected {len(failed)} of {len(ids)} vectors, "
                                   f"e.g. {first[0]!r}: {first[1]}")
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
            raise DimensionMismatch(f"store holds {store.dimension}-d vectors, "
                                    f"{self._owner()} holds {self.dimension}-d")
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
        filters: VectorFilters | None = None,
        num_candidates: int | None = None,
        restrict_to: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
    ) -> list[Neighbours]:
        """Approximate kNN: the ``k`` nearest stored images of each query, best first.

        Args:
            query_vectors: (Q, D) or (D,); normalised here.
            filters: only images whose filter fields match (``{"view": ["frontal"]}``), applied inside
                the kNN search (a pre-filter).
            num_candidates: HNSW candidates per shard (default the index's, else max(100, 10 k)).
            restrict_to: only these image ids may be returned.
            exclude: these image ids are never returned.
        Returns:
            one ``Neighbours`` per query, scores as inner products (cosine similarity).
        """
        k = check_k(k)
        if k > MAX_KNN:
            raise InvalidVectors(f"k={k} exceeds Elasticsearch's kNN limit of {MAX_KNN}")
        queries = unit_vectors(query_vectors, self.dimension, "query vectors", self._owner())  # (Q, D)
        wanted = num_candidates or self.num_candidates or max(100, 10 * k)
        candidates = min(max(wanted, k), MAX_KNN)
        clauses: list[dict] = [{"terms": {name: values}} for name, values in normalise_filters(filters).items()]
        if restrict_to is not None:
            clauses.append({"ids": {"values": list(restrict_to)}})
        must_not = [{"ids": {"values": list(exclude)}}] if exclude else []
        knn_filter = {"bool": {"filter": clauses, "must_not": must_not}} if clauses or must_not else None
        results = []
        for q in queries:
            knn: dict[str, Any] = {"field": FIELD, "query_vector": q.tolist(), "k": k, "num_candidates": candidates}
            if knn_filter is not None:
                knn["filter"] = knn_filter
            with self._guard(f"kNN search {self.index}"):
                # ids from doc values, no stored fields: loading each hit's stored _id decompresses the block of
                # its _source (the vector and every filter field), which cost most of a deep kNN search
                response = self.client.search(index=self.index, knn=knn, size=k, stored_fields="_none_",
                                              docvalue_fields=["image_id"])
            hits = response["hits"]["hits"]
            results.append(
                Neighbours(tuple(h["fields"]["image_id"][0] for h in hits),
                           tuple(score_to_inner_product(h["_score"]) for h in hits))
            )
        return results

    def similar(self, image_id: str, k: int = 10, *, include_self: bool = False,
                filters: VectorFilters | None = None) -> Neighbours:
        """The images nearest to a stored image (its own vector as the query), optionally filtered."""
        query = self.get_vectors([image_id])  # UnknownImageId when absent
        return self.search(query, k, filters=filters, exclude=None if include_self else [image_id])[0]
