"""Text indices behind one interface: embedded SQLite FTS5 (default) or Elasticsearch."""
from __future__ import annotations

import os
from pathlib import Path

from indexer.errors import IndexerError
from indexer.text.base import Hit, SearchResult, TextBackend, WriteResult

BACKENDS = ("embedded", "es")


def open_backend(kind: str = "embedded", *, index_dir: str | os.PathLike | None = None,
                 es_settings=None) -> TextBackend:
    """Open a text backend.

    Args:
        kind: 'embedded' (SQLite FTS5 under `index_dir/text`) or 'es' (Elasticsearch).
        index_dir: the index home directory (embedded backend; required for it).
        es_settings: `indexer.text.elasticsearch.ESSettings`; default from CXRSEARCH_ES_* variables.
    """
    if kind == "embedded":
        if index_dir is None:
            raise IndexerError("the embedded text backend needs an index directory")
        from indexer.text.embedded import EmbeddedTextBackend

        return EmbeddedTextBackend(Path(index_dir) / "text")
    if kind in ("es", "elasticsearch"):
        from indexer.text.elasticsearch import ElasticsearchTextBackend

        return ElasticsearchTextBackend(es_settings)
    raise IndexerError(f"unknown text backend {kind!r}; valid: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Hit", "SearchResult", "TextBackend", "WriteResult", "open_backend"]
