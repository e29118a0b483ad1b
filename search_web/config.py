"""The web app's settings: defaults, CXRSEARCH_* environment variables, and checks that name bad values."""
from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path

from indexer.settings import data_dir
from search_web.errors import ConfigError

SERVE_CONFIG_VARIABLE = "CXRSEARCH_SERVE_CONFIG"  # create_app config `cxrsearch serve` hands to search_web.wsgi
SERVE_TIMEOUT_VARIABLE = "CXRSEARCH_SERVE_TIMEOUT"  # its --timeout, for servers without one (search_web.wsgi)

# Every setting the app reads, with its default. create_app(config) and CXRSEARCH_<NAME> override them.
DEFAULTS: dict[str, object] = {
    "BACKEND": "embedded",          # text index: embedded | es
    "DATA_DIR": None,               # default $CXRSEARCH_DATA or <project>/data
    "INDEX_DIR": None,              # default DATA_DIR/index
    "IMAGES_DIR": None,             # folder of <image id>.png (default: the synthetic corpus in DATA_DIR)
    "ES_URL": None,
    "ES_INDEX": None,
    "CHECKPOINT": "auto",           # cascade for uploads: a path, 'auto' (the one that made the live vectors), 'none'
    "ADMIN_TOKEN": None,            # admin pages and POST /api/reindex are off without one
    "SECRET_KEY": None,             # signs the session cookie (CSRF token); random per process when unset
    "MAX_UPLOAD_BYTES": 32 * 1024 * 1024,
    "MAX_UPLOAD_PIXELS": 40_000_000,
    "UPLOAD_DIR": None,             # temp area for uploads (default <system temp>/cxrsearch-uploads)
    "MAX_URL_BYTES": 65_000,        # longer request targets get a JSON/HTML 414 (granian: 65,534+ bytes, its own)
    "TORCH_THREADS": 1,             # torch threads per worker for upload encoding
    "FAISS_THREADS": 1,             # OpenMP threads per FAISS search in a server worker (search_web.app.warm_up)
    "PAGE_SIZE": 20,
    "THUMBNAIL_SIZE": 256,
    "RETRY_AFTER_S": 2,             # Retry-After on 503 answers
    "TRUSTED_HOSTS": None,          # comma-separated Host values to accept (None: any; never reflected)
    "ANSWER_CACHE": 512,            # search answers kept per worker (embedded backend; 0: none), indexer.query.cache
    "FAST_SEARCH": True,            # GET /api/search (embedded) answered by search_web.fast_search, not Flask
}

# integer settings and their smallest allowed value
_INT_KEYS = {"MAX_UPLOAD_BYTES": 1, "MAX_UPLOAD_PIXELS": 1, "MAX_URL_BYTES": 1, "TORCH_THREADS": 1, "FAISS_THREADS": 1,
             "PAGE_SIZE": 1, "THUMBNAIL_SIZE": 1, "RETRY_AFTER_S": 1, "ANSWER_CACHE": 0}


def resolve(config) -> None:
    """Fill derived paths and check values in a Flask config, in place (ConfigError names the bad one)."""
    for key, least in _INT_KEYS.items():
        value = config.get(key)
        try:
            number = -1 if isinstance(value, bool) else int(value)
        except (TypeError, ValueError):
            number = -1
        if number < least:
            raise ConfigError(f"{key}={value!r} is invalid: use an integer >= {least}")
        config[key] = number
    fast = config.get("FAST_SEARCH", True)
    config["FAST_SEARCH"] = fast if isinstance(fast, bool) else str(fast).strip().lower() not in ("0", "false", "no",
                                                                                                 "off", "")
    backend = str(config.get("BACKEND") or "embedded")
    if backend not in ("embedded", "es"):
        raise ConfigError(f"BACKEND={backend!r} is unknown; valid: embedded, es")
    config["BACKEND"] = backend
    config["DATA_DIR"] = str(data_dir(config.get("DATA_DIR")))
    root = Path(config["DATA_DIR"])
    config["INDEX_DIR"] = str(Path(config.get("INDEX_DIR") or root / "index"))
    config["IMAGES_DIR"] = str(Path(config.get("IMAGES_DIR") or root / "images" / "synthetic" / "NLMCXR_png"))
    config["UPLOAD_DIR"] = str(Path(config.get("UPLOAD_DIR") or Path(tempfile.gettempdir()) / "cxrsearch-uploads"))
    config["MAX_CONTENT_LENGTH"] = config["MAX_UPLOAD_BYTES"] + 64 * 1024  # room for the form's other fields
    if not config.get("SECRET_KEY"):
        config["SECRET_KEY"] = secrets.token_hex(32)
    token = config.get("ADMIN_TOKEN")
    if token is not None:
        token = config["ADMIN_TOKEN"] = str(token)  # from_prefixed_env may have read digits as a number
    if token is not None and len(token) < 16:
        raise ConfigError("ADMIN_TOKEN is too short: use at least 16 characters (e.g. `openssl rand -hex 24`)")
    hosts = config.get("TRUSTED_HOSTS")
    if isinstance(hosts, str):
        config["TRUSTED_HOSTS"] = [h.strip() for h in hosts.split(",") if h.strip()] or None
    config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    config["SESSION_COOKIE_SAMESITE"] = "Lax"
    if os.environ.get("CXRSEARCH_COOKIE_SECURE", "").lower() in ("1", "true", "yes"):
        config["SESSION_COOKIE_SECURE"] = True


def serve_config_from_environment() -> dict:
    """The create_app config that `cxrsearch serve` left in CXRSEARCH_SERVE_CONFIG ({} when unset)."""
    text = os.environ.get(SERVE_CONFIG_VARIABLE, "").strip()
    if not text:
        return {}
    config = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError(f"{SERVE_CONFIG_VARIABLE} must hold a JSON object; got {type(config).__name__}")
    return config
