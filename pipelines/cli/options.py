"""Options shared by the commands that read or write an index: backend, data and index folders, Elasticsearch."""
from __future__ import annotations

import argparse
from pathlib import Path

from indexer.settings import data_dir


def add_backend_options(p: argparse.ArgumentParser) -> None:
    """--backend, --data-dir, --index-dir, --es-url, --es-index (reindex, search, similar, eval)."""
    p.add_argument("--backend", choices=("embedded", "es"), default="embedded",
                   help="text index: embedded SQLite FTS5 (default, no server) or Elasticsearch")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--index-dir", help="index directory (default DATA_DIR/index)")
    p.add_argument("--es-url", help="Elasticsearch URL (default $CXRSEARCH_ES_URL or http://127.0.0.1:9200); "
                                    "credentials from CXRSEARCH_ES_API_KEY or CXRSEARCH_ES_USER/PASSWORD, "
                                    "CA certificate from CXRSEARCH_ES_CA")
    p.add_argument("--es-index", help="Elasticsearch alias (default $CXRSEARCH_ES_INDEX or cxrsearch-images)")


def index_dir(args: argparse.Namespace) -> Path:
    return Path(args.index_dir) if args.index_dir else data_dir(args.data_dir) / "index"


def es_settings(args: argparse.Namespace):
    """Elasticsearch settings from the environment, overridden by --es-url/--es-index (None for embedded)."""
    if args.backend != "es":
        return None
    from indexer.text.elasticsearch import ESSettings

    return ESSettings.from_env(url=args.es_url, index=args.es_index)
