"""What the views read: the text backend, the live vector stores, the query service and the upload encoder."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from indexer.errors import IndexerError
from indexer.text import open_backend
from indexer.text.base import TextBackend
from indexer.vectors.live import LiveVectors, has_vectors
from search_web.params import KINDS
from search_web.query import AnswerCache, QueryService

EXTENSION = "cxrsearch"


@dataclass
class Services:
    """One per app: opened once, shared by the request threads of a worker."""

    config: dict
    backend_name: str
    index_dir: Path
    images_dir: Path
    backend: TextBackend | None = None
    open_error: IndexerError | None = None
    vectors: LiveVectors | None = None
    url: str | None = None  # the Elasticsearch URL (password masked), None for the embedded backend
    _query: QueryService | None = None
    _encoder: object | None = None
    _synthetic: dict[str, bool] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def text(self) -> TextBackend:
        """The text backend; raises the error that kept it from opening."""
        if self.backend is None:
            raise self.open_error or IndexerError("no text backend configured")
        return self.backend

    def query(self) -> QueryService:
        """The query service over the text backend, the live vectors and a query encoder (built on first use).

        The encoder (words -> context space, for the vector retriever) uses the checkpoint that made
        the live vectors; the service says in `skipped` when it cannot run.
        """
        if self._query is None:
            backend = self.text()
            with self._lock:
                if self._query is None:
                    cache = AnswerCache(int(self.config.get("ANSWER_CACHE", 0)))
                    self._query = QueryService(backend, vectors=self.vectors, encoder=self._query_encoder(),
                                               cache=cache)
        return self._query

    def _query_encoder(self):
        from indexer.query.encoder import QueryEncoder
        from search_web.encoder import find_checkpoint

        try:
            model_version = self.vectors.get("context")[1].model_version if self.vectors is not None else None
        except IndexerError:
            return None
        if model_version is None:
            return None
        path = find_checkpoint(str(self.config["CHECKPOINT"]), Path(self.config["DATA_DIR"]), model_version)
        return None if path is None else QueryEncoder(path, model_version)

    def encoder(self):
        """The upload encoder (search_web.encoder.UploadEncoder), loaded on first use."""
        if self._encoder is None:
            from search_web.encoder import UploadEncoder

            with self._lock:
                if self._encoder is None:
                    self._encoder = UploadEncoder(self.config["CHECKPOINT"], Path(self.config["DATA_DIR"]),
                                                  int(self.config["TORCH_THREADS"]))
        return self._encoder

    def live_version(self) -> str | None:
        return self.text().live_version()

    def vector_kinds(self, version: str | None) -> list[str]:
        """The vector kinds (search_web.params.KINDS: findings, embedding, context) the version has stores for."""
        if version is None or self.backend is None:
            return []
        return [k for k in KINDS if has_vectors(self.index_dir, self.backend, version, k)]

    def corpus_synthetic(self, version: str | None = None) -> bool:
        """Whether the live (or given) index version holds synthetic documents; cached per version.

        False when the index cannot be read (the banner then says nothing it cannot know).
        """
        try:
            key = version or self.text().live_version() or ""
        except IndexerError:
            return False
        with self._lock:
            if key in self._synthetic:
                return self._synthetic[key]
        try:
            found = self.text().search("", filters={"synthetic": True}, k=1, facets=(), version=version).total > 0
        except IndexerError:
            return False
        with self._lock:
            self._synthetic[key] = found
        return found


def _es_settings(config):
    from indexer.text.elasticsearch import ESSettings

    index = config.get("ES_INDEX")
    return ESSettings.from_env(url=config.get("ES_URL") or None, index=str(index) if index else None)


def open_services(config) -> Services:
    """Open the configured text backend without touching the network (Elasticsearch connects lazily)."""
    kind = str(config["BACKEND"])
    svc = Services(config=config, backend_name=kind, index_dir=Path(config["INDEX_DIR"]),
                   images_dir=Path(config["IMAGES_DIR"]))
    try:
        settings = _es_settings(config) if kind == "es" else None
        svc.url = getattr(settings, "safe_url", None)
        svc.backend = open_backend(kind, index_dir=svc.index_dir, es_settings=settings)
        svc.vectors = LiveVectors(svc.index_dir, svc.backend)
    except IndexerError as e:  # keep the app up; every request reports this error
        svc.open_error = e
    return svc


def services() -> Services:
    """The current app's Services."""
    return current_app.extensions[EXTENSION]
