"""The web app as a module-level WSGI callable, for servers that import their application by name.

    granian --interface wsgi search_web.wsgi:app      (what `cxrsearch serve --server granian` runs)

The app's config comes from CXRSEARCH_SERVE_CONFIG (a JSON object of create_app keys, set by
`cxrsearch serve` from its options) over the usual CXRSEARCH_* environment; each worker process
imports this module once, so every worker builds and warms its own app (importing it builds one: the
server's master must not, so the variable's name lives in search_web.config).
"""
from __future__ import annotations

import json
import os

from search_web.app import create_app, warm_up
from search_web.config import SERVE_CONFIG_VARIABLE as CONFIG_VARIABLE


def config_from_environment() -> dict:
    """The create_app config that `cxrsearch serve` left in CXRSEARCH_SERVE_CONFIG ({} when unset)."""
    text = os.environ.get(CONFIG_VARIABLE, "").strip()
    if not text:
        return {}
    config = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError(f"{CONFIG_VARIABLE} must hold a JSON object; got {type(config).__name__}")
    return config


app = warm_up(create_app(config_from_environment()))
