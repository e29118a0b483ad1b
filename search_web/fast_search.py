"""`GET /api/search` on the embedded backend answered without Flask's per-request machinery, the same way.

A new search is the app's most frequent costly request. In the app, about a quarter of its Python time
went to Flask's handling around the view (request and app contexts, session, URL matching, the hooks,
the Response object), not to searching: in-process, the view's own work (the query service, links, the
note and the JSON) took 570-640 us of CPU where the same searches through Flask took 790-850 us (2-core
build VM, interleaved batches; `scripts/ab_search.py` compares versions). `FastSearch` wraps the app's
WSGI callable (`app.wsgi_app`) and answers a plain `GET /api/search` itself, with:

- the view's own code (`search_web.api.run_search`: the request's parameters read by werkzeug's own
  `Request.args`, the query service, the links of `link_builder`, the synthetic note);
- the same JSON bytes as `jsonify` (`search_web.json_provider.encode`);
- the same headers: `Content-Type` and `Content-Length` as Flask writes them, then the security headers
  of `search_web.security.HEADERS`, as its `add_headers` hook adds them;
- the same metrics (`search_web.metrics.observe`: endpoint `/api/search`, latency, status 200).

Anything else goes to Flask unchanged: another path or method, a mount point (SCRIPT_NAME), the debug
mode or JSON settings other than the compact orjson answers, the Elasticsearch backend (its searches
wait on the network, where Flask's cost is noise, and a failing cluster must not be asked twice), a
request target over MAX_URL_BYTES, a Host that TRUSTED_HOSTS refuses. And so does every request whose
answer cannot be made here: a bad parameter, an index error, anything raised. Flask then runs the view
as if this were not there, which raises the same error for its handlers to answer (JSON 400, 404, 503,
...). tests/search_web/test_fast_search.py holds both paths to the same status, headers and body.
"""
from __future__ import annotations

import time

from flask import Flask
from werkzeug.wrappers import Request
from werkzeug.wsgi import get_host

from search_web.api import run_search
from search_web.detail import link_builder
from search_web.json_provider import encode
from search_web.metrics import observe
from search_web.security import HEADERS, target_length
from search_web.services import EXTENSION

PATH = "/api/search"
_SECURITY_HEADERS = list(HEADERS.items())


class FastSearch:
    """WSGI middleware: `GET /api/search` (embedded backend) answered by the view's code without Flask's request
    handling; every other request, and any it cannot answer, passed to `wsgi_app` (Flask's)."""

    def __init__(self, app: Flask, wsgi_app):
        self.app, self.wsgi_app = app, wsgi_app
        self.answered = 0   # requests answered here, not by Flask (read by the tests)

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET" or environ.get("SCRIPT_NAME"):
            return self.wsgi_app(environ, start_response)
        started = time.perf_counter()
        try:
            data = self.answer(environ)
        except Exception:  # noqa: BLE001 - Flask answers it (its view raises the same error for its handlers)
            data = None
        if data is None:
            return self.wsgi_app(environ, start_response)
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                  *_SECURITY_HEADERS])
        observe(PATH, "GET", 200, time.perf_counter() - started)
        self.answered += 1
        return [data]

    def answer(self, environ) -> bytes | None:
        """The search's JSON answer, or None when Flask should answer the request."""
        app = self.app
        config = app.config
        svc = app.extensions[EXTENSION]
        if svc.backend_name != "embedded" or app.debug or not getattr(app.json, "orjson_answers", False):
            return None
        if target_length(environ) > config["MAX_URL_BYTES"]:
            return None
        trusted = config.get("TRUSTED_HOSTS")
        if trusted is not None:
            get_host(environ, trusted)  # raises for a Host it refuses: Flask answers 400
        body = run_search(svc, Request(environ, populate_request=False).args, link_builder(app, ""))
        return encode(body)


def install(app: Flask) -> None:
    """Put `FastSearch` in front of the app's WSGI callable (app.wsgi_app), unless config FAST_SEARCH is false."""
    if app.config.get("FAST_SEARCH", True):
        app.wsgi_app = FastSearch(app, app.wsgi_app)
