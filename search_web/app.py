"""The Flask app factory: configuration, the text index and vector stores, and the JSON API."""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from flask import Flask, current_app

from indexer.errors import IndexerError
from indexer.text import BACKENDS, open_backend
from indexer.text.base import TextBackend
from indexer.vectors.live import LiveVectors
from indexer.settings import data_dir

EXTENSION = "cxrsearch"


@dataclass
class Services:
    """What the API reads: the text backend (or why it could not be opened) and the live vector stores."""

    backend_name: str
    index_dir: Path
    backend: TextBackend | None = None
    open_error: IndexerError | None = None
    vectors: LiveVectors | None = None
    url: str | None = None  # the Elasticsearch URL (password masked), None for the embedded backend
    _synthetic: dict[str, bool] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def text(self) -> TextBackend:
        """The text backend; raises the error that kept it from opening."""
        if self.backend is None:
            raise self.open_error or IndexerError("no text backend configured")
        return self.backend

    def corpus_synthetic(self, version: str | None) -> bool:
        """Whether the index version holds synthetic (stand-in) documents; cached per version."""
        key = version or ""
        with self._lock:
            if key in self._synthetic:
                return self._synthetic[key]
        found = self.text().search("", filters={"synthetic": True}, k=1, facets=(), version=version).total > 0
        with self._lock:
            self._synthetic[key] = found
        return found


def _es_settings(config) -> object:
    from indexer.text.elasticsearch import ESSettings

    index = config.get("ES_INDEX")
    return ESSettings.from_env(url=config.get("ES_URL") or None, index=str(index) if index else None)


def open_services(config) -> Services:
    """Open the configured text backend without touching the network (Elasticsearch connects lazily)."""
    kind = str(config["BACKEND"])
    index_dir = Path(config["INDEX_DIR"])
    services = Services(backend_name=kind, index_dir=index_dir)
    try:
        if kind not in BACKENDS:
            raise IndexerError(f"BACKEND={kind!r} is unknown; valid: {', '.join(BACKENDS)}")
        settings = _es_settings(config) if kind == "es" else None
        services.url = getattr(settings, "safe_url", None)
        services.backend = open_backend(kind, index_dir=index_dir, es_settings=settings)
        services.vectors = LiveVectors(index_dir, services.backend)
    except IndexerError as e:  # keep the app up; every request reports this error
        services.open_error = e
    return services


def services() -> Services:
    """The current app's Services."""
    return current_app.extensions[EXTENSION]


def create_app(config: dict | None = None) -> Flask:
    """Build the web app.

    Configuration, later wins: defaults; CXRSEARCH_* environment variables (CXRSEARCH_BACKEND,
    CXRSEARCH_INDEX_DIR, CXRSEARCH_ES_URL, CXRSEARCH_ES_INDEX, ...); then `config`.

    Args:
        config: keys BACKEND ('embedded' or 'es'), DATA_DIR, INDEX_DIR (default DATA_DIR/index),
            ES_URL, ES_INDEX, and any Flask setting such as TESTING.
    """
    app = Flask(__name__)
    app.config.from_mapping(BACKEND="embedded", DATA_DIR=None, INDEX_DIR=None, ES_URL=None, ES_INDEX=None)
    app.config.from_prefixed_env("CXRSEARCH")
    if config:
        app.config.update(config)
    app.config["DATA_DIR"] = str(data_dir(app.config["DATA_DIR"]))
    if not app.config["INDEX_DIR"]:
        app.config["INDEX_DIR"] = str(Path(app.config["DATA_DIR"]) / "index")
    app.extensions[EXTENSION] = open_services(app.config)

    from search_web.api import bp

    app.register_blueprint(bp)
    return app
