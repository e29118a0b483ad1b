"""The web app as a module-level WSGI callable, for servers that import their application by name.

    granian --interface wsgi search_web.wsgi:app      (what `cxrsearch serve --server granian` runs)

The app's config comes from CXRSEARCH_SERVE_CONFIG (a JSON object of create_app keys, set by
`cxrsearch serve` from its options) over the usual CXRSEARCH_* environment; each worker process
imports this module once, so every worker builds and warms its own app (importing it builds one: the
server's master must not, so the variables and their reading live in search_web.config). With
CXRSEARCH_SERVE_TIMEOUT (seconds) the app runs under search_web.deadline.RequestDeadline: granian has
no request timeout.
"""
from __future__ import annotations

import os

from search_web.config import SERVE_TIMEOUT_VARIABLE, serve_config_from_environment
from search_web.deadline import RequestDeadline


def _build():
    from search_web.app import create_app, warm_up

    application = warm_up(create_app(serve_config_from_environment()))
    timeout = os.environ.get(SERVE_TIMEOUT_VARIABLE, "").strip()
    return RequestDeadline(application, float(timeout)) if timeout else application


app = _build()
