"""Run the search web app (JSON API) on this machine; 127.0.0.1 by default."""
from __future__ import annotations

import argparse

from indexer.text import BACKENDS


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch serve", description=__doc__)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1; use 0.0.0.0 only behind a proxy you trust)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--backend", choices=BACKENDS, help="text index: embedded (default) or es; "
                                                       "default $CXRSEARCH_BACKEND or embedded")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--index-dir", help="index directory (default DATA_DIR/index)")
    p.add_argument("--es-url", help="Elasticsearch URL (default $CXRSEARCH_ES_URL or http://127.0.0.1:9200)")
    p.add_argument("--es-index", help="Elasticsearch alias (default $CXRSEARCH_ES_INDEX or cxrsearch-images)")
    p.add_argument("--debug", action="store_true", help="Flask debug mode (reloader, tracebacks): never in production")
    return p


def config_from_args(args: argparse.Namespace) -> dict:
    """The create_app config of the options given (unset ones leave the environment's values)."""
    given = {"BACKEND": args.backend, "DATA_DIR": args.data_dir, "INDEX_DIR": args.index_dir,
             "ES_URL": args.es_url, "ES_INDEX": args.es_index}
    return {key: value for key, value in given.items() if value is not None}


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    from search_web.app import create_app

    app = create_app(config_from_args(args))
    backend = app.config["BACKEND"]
    where = app.extensions["cxrsearch"].url if backend == "es" else app.config["INDEX_DIR"]
    print(f"cxrsearch serve: {backend} text index at {where}; health at http://{args.host}:{args.port}/api/health")
    app.run(host=args.host, port=args.port, debug=args.debug)
    return 0
