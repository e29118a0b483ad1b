"""Where each text-index version's vectors live (FAISS files or Elasticsearch kNN), and how readers open them.

Layout (shared by the reindex job, which writes, and the web app and CLI, which read):

    <index_dir>/vectors/<space>/<version>/cnn_embedding/    VectorStore of the CNN embeddings
    <index_dir>/vectors/<space>/<version>/context_vector/   VectorStore of the joint context vectors
    <index_dir>/vectors/<space>/<version>/findings/         VectorStore of the findings vectors (models.findings)
    or, built with `reindex --vectors es`, on the Elasticsearch cluster of the text index:
    <alias>-knn-<kind>-v<version> for each kind   (indexer.vectors.es_knn)

Readers call one interface whatever the vector backend: `open_vectors` / `LiveVectors.get` return a
`VectorReader` (indexer.vectors.base): the FAISS `VectorStore` when the version has FAISS files,
else the `EsVectorIndex` when the text backend is Elasticsearch and the version has kNN indices.

`space` names the text index the versions belong to: 'embedded' for the embedded backend,
'es-<alias>' for Elasticsearch (so two aliases can share one index directory). There is no
separate "live" pointer for vectors: readers ask the text backend for its live version (the
embedded LIVE file, or the Elasticsearch alias) and open that version's stores. The reindex job
writes a version's stores completely *before* it switches the text index, so the one atomic
switch makes text and vectors live together, and no reader can see vectors without their text.
A version built without a cascade checkpoint has no vector stores: `open_vectors` says so.
"""
from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

from indexer.errors import InvalidVectorConfig, VectorStoreNotFound
from indexer.text.base import TextBackend, check_version_name
from indexer.vectors.base import VECTOR_KINDS, VectorReader
from indexer.vectors.faiss_store import VectorStore

log = logging.getLogger(__name__)

VECTORS_DIR = "vectors"
# short names (the CLI's --kind) -> stored kinds
KIND_NAMES = {"context": "context_vector", "embedding": "cnn_embedding", "findings": "findings",
              "context_vector": "context_vector", "cnn_embedding": "cnn_embedding"}


def vector_kind(name: str) -> str:
    """'context' / 'embedding' (or the full kind names) -> the stored kind, else InvalidVectorConfig."""
    try:
        return KIND_NAMES[name]
    except KeyError:
        raise InvalidVectorConfig(f"vector kind {name!r} is unknown; valid: context, embedding, findings "
                                  f"({', '.join(VECTOR_KINDS)})") from None


def vector_space(backend: TextBackend) -> str:
    """The folder name that keeps one text index's vector versions apart from another's."""
    if backend.name == "embedded":
        return "embedded"
    alias = getattr(getattr(backend, "settings", None), "index", None) or "default"
    return f"{backend.name}-{alias}"


def space_dir(index_dir: str | os.PathLike, backend: TextBackend) -> Path:
    """<index_dir>/vectors/<space>: the vector versions of this text index."""
    return Path(index_dir) / VECTORS_DIR / vector_space(backend)


def version_dir(index_dir: str | os.PathLike, backend: TextBackend, version: str) -> Path:
    """<index_dir>/vectors/<space>/<version>: the stores of one text-index version."""
    return space_dir(index_dir, backend) / check_version_name(version)


def es_vector_index(backend: TextBackend, kind: str, version: str):
    """The EsVectorIndex of `kind` for `version` of an Elasticsearch text backend (sharing its client)."""
    from indexer.vectors.es_knn import EsVectorIndex, knn_index_name

    return EsVectorIndex(knn_index_name(backend.settings.index, vector_kind(kind), version), 1, kind=vector_kind(kind),
                         settings=backend.settings, client=backend.client)


def vector_backend_of(index_dir: str | os.PathLike, backend: TextBackend, version: str,
                      kind: str = "context_vector") -> str | None:
    """Where `version`'s vectors of `kind` are: 'faiss', 'es', or None (built without a checkpoint)."""
    if VectorStore.exists(version_dir(index_dir, backend, version) / vector_kind(kind)):
        return "faiss"
    if backend.name == "es" and es_vector_index(backend, kind, version).exists():
        return "es"
    return None


def has_vectors(index_dir: str | os.PathLike, backend: TextBackend, version: str, kind: str = "context_vector") -> bool:
    """Whether `version` has vectors of `kind` (FAISS files, or an Elasticsearch kNN index)."""
    return vector_backend_of(index_dir, backend, version, kind) is not None


def open_vectors(index_dir: str | os.PathLike, backend: TextBackend, kind: str = "context_vector",
                 version: str | None = None, *, mmap: bool = True) -> VectorReader:
    """The vectors of `kind` for a text-index version (the live one when None), FAISS or Elasticsearch.

    A FAISS store comes with the version's text documents attached, so `search(..., filters=...)`
    works on both backends.

    Raises:
        IndexNotFound: there is no live text index (from the backend).
        VectorStoreNotFound: that version has no vectors (built without a checkpoint).
    """
    kind = vector_kind(kind)
    for attempt in range(3):
        chosen = version or backend.live_version()
        if chosen is None:
            backend.count()  # raises the backend's own IndexNotFound, which says how to build one
            raise VectorStoreNotFound(f"no live text index in {index_dir}; build one with `cxrsearch reindex`")
        path = version_dir(index_dir, backend, chosen) / kind
        try:
            store = VectorStore.load(path, mmap=mmap, expect_kind=kind)
            store.attach_documents(lambda ids, v=chosen: backend.get_many(ids, version=v))
            return store
        except VectorStoreNotFound:
            pass
        if backend.name == "es":
            from indexer.vectors.es_knn import EsVectorIndex

            index = es_vector_index(backend, kind, chosen)
            try:
                return EsVectorIndex.open(index.index, settings=backend.settings, client=backend.client,
                                          expect_kind=kind)
            except VectorStoreNotFound:
                pass
        if version is None and attempt < 2 and backend.live_version() != chosen:
            continue  # a reindex switched between our read of the live version and the load
        where = f"{path} missing" + (f", no Elasticsearch index {index.index}" if backend.name == "es" else "")
        raise VectorStoreNotFound(
            f"index version {chosen!r} has no {kind} vectors ({where}): it was built without a "
            "cascade checkpoint; run `cxrsearch reindex --checkpoint CKPT` to add them")
    raise AssertionError("unreachable")


def live_vectors(index_dir: str | os.PathLike, kind: str = "context_vector", *, backend: str = "embedded",
                 es_settings=None, mmap: bool = True) -> VectorReader:
    """Open the live vector store of `kind` ('findings', 'embedding' or 'context') for an index directory.

    Args:
        index_dir: the index home (`DATA_DIR/index`), where the vectors live for every backend.
        backend: 'embedded' or 'es': whose live version decides which vectors are live.
        es_settings: Elasticsearch settings (default from CXRSEARCH_ES_* variables).
    """
    from indexer.text import open_backend

    text = open_backend(backend, index_dir=index_dir, es_settings=es_settings)
    return open_vectors(index_dir, text, kind, mmap=mmap)  # the reader keeps the backend for filters


class LiveVectors:
    """The live stores of one text index, reopened when a reindex switches versions (for the web app).

    `get(kind)` costs one read of the live version (a small file, or one alias request) per call;
    the store itself is reloaded only when that version changed.
    """

    def __init__(self, index_dir: str | os.PathLike, backend: TextBackend):
        self.index_dir = Path(index_dir)
        self.backend = backend
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str, VectorReader]] = {}

    def get(self, kind: str = "context_vector", version: str | None = None) -> tuple[str, VectorReader]:
        """(live version, its vectors of `kind`: FAISS or Elasticsearch); raises like `open_vectors`.

        `version`: the text-index version the caller already read (a search's), which spares reading it again.
        """
        kind = vector_kind(kind)
        live = version if version is not None else self.backend.live_version()
        with self._lock:
            cached = self._cache.get(kind)
            if cached is not None and cached[0] == live:
                return cached
        store = open_vectors(self.index_dir, self.backend, kind, live)
        with self._lock:
            self._cache[kind] = (live, store)
        return live, store


def remove_version(index_dir: str | os.PathLike, backend: TextBackend, version: str) -> None:
    """Delete a version's FAISS stores (readers holding them memory-mapped keep their copy)."""
    shutil.rmtree(version_dir(index_dir, backend, version), ignore_errors=True)


def remove_orphans(index_dir: str | os.PathLike, backend: TextBackend) -> list[str]:
    """Delete the vectors (FAISS and Elasticsearch kNN) of versions the text index no longer has.

    Returns the versions removed.
    """
    existing = set(backend.versions())
    removed = []
    home = space_dir(index_dir, backend)
    if home.is_dir():
        for folder in sorted(home.iterdir()):
            if folder.is_dir() and folder.name not in existing:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
    if backend.name == "es":
        from indexer.vectors.es_knn import knn_versions

        client = backend.client
        try:
            for version, names in sorted(knn_versions(client, backend.settings.index).items()):
                if version not in existing:
                    client.indices.delete(index=",".join(names), ignore_unavailable=True)
                    removed.append(version)
        except Exception as e:  # noqa: BLE001 - a leftover index costs space, never correctness: say so, go on
            log.warning("could not delete the kNN indices of dropped versions at %s: %s", backend.settings.safe_url, e)
    return sorted(set(removed))
