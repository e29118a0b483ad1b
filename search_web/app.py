"""The Flask app factory: settings, services, blueprints (pages, API, uploads, admin, metrics), errors and security."""
from __future__ import annotations

import gc

from flask import Flask

from search_web import config as settings
from search_web.json_provider import FastJSONProvider
from search_web.services import EXTENSION, open_services


def create_app(config: dict | None = None) -> Flask:
    """Build the web app.

    Configuration, later wins: `search_web.config.DEFAULTS`; CXRSEARCH_* environment variables
    (CXRSEARCH_BACKEND, CXRSEARCH_INDEX_DIR, CXRSEARCH_ES_URL, CXRSEARCH_ADMIN_TOKEN, ...); then `config`.

    Args:
        config: any key of DEFAULTS (BACKEND, DATA_DIR, INDEX_DIR, IMAGES_DIR, ES_URL, ES_INDEX,
            CHECKPOINT, ADMIN_TOKEN, SECRET_KEY, MAX_UPLOAD_BYTES, ...) and any Flask setting such as TESTING.
    """
    app = Flask(__name__)
    app.json = FastJSONProvider(app)
    app.config.from_mapping(settings.DEFAULTS)
    app.config.from_prefixed_env("CXRSEARCH")
    if config:
        app.config.update(config)
    settings.resolve(app.config)
    app.json.sort_keys = False
    app.extensions[EXTENSION] = open_services(app.config)

    from search_web import admin, api, errors, fast_search, metrics, pages, security, upload_views

    security.install(app)
    metrics.install(app)
    errors.register(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(upload_views.bp)
    app.register_blueprint(admin.bp)
    pages.install(app)
    fast_search.install(app)
    return app


def warm_up(app: Flask) -> Flask:
    """Prepare a server worker: FAISS's thread count, then load what the first search would (query parser,
    lexicon, live index pages) before serving; returns app."""
    from indexer.errors import IndexerError
    from search_web.query import SearchRequest

    limit_faiss_threads(int(app.config["FAISS_THREADS"]))
    svc = app.extensions[EXTENSION]
    try:
        svc.query().search(SearchRequest("calcified granuloma right upper lobe", k=1))
    except IndexerError as e:  # the app still starts; requests report the problem
        app.logger.warning("warm-up search failed: %s", e)
    # What is loaded now (index, lexicon, models) lives as long as the worker: kept out of the cyclic
    # collector's walks. Else every full collection walks it: 155 ms about every 2,000 searches over 2,000
    # images, the p99 of a single client.
    gc.freeze()
    return app


def limit_faiss_threads(threads: int) -> None:
    """OpenMP threads of each FAISS search in this process (a server worker; default FAISS_THREADS = 1).

    A server's parallelism is its workers and threads: with FAISS's default (one OpenMP thread per core)
    every similar-image search in every worker thread also woke a thread per core, and they fought for
    the cores. `/api/images/<id>/similar?kind=context` under wrk at 16 connections on the 2-core build
    machine: 505 requests/s with the default, 826 with one thread (1 connection: 302 -> 398).
    """
    try:
        import faiss
    except ImportError:  # no vector search in this install: nothing to limit
        return
    faiss.omp_set_num_threads(threads)
