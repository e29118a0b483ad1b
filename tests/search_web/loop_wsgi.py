"""A WSGI app for the event-loop worker's tests (tests/search_web/test_loop_worker.py), served by a real gunicorn
with pipelines.cli.loop_worker.LoopWorker: it echoes what reached it as JSON, and has paths that answer big,
fail, set headers and take time. `config` holds the body limit, as a Flask app's does."""
from __future__ import annotations

import json
import os
import time

from werkzeug.exceptions import HTTPException

config = {"MAX_CONTENT_LENGTH": 1_000_000}


def app(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/big":
        body = b"x" * 5_000_000
        start_response("200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/fail":
        raise RuntimeError("the app failed")
    if path == "/no-content":
        start_response("204 No Content", [])
        return []
    if path == "/bad-header":
        start_response("200 OK", [("X-Injected", "a\r\nSet-Cookie: evil=1")])
        return [b"no"]
    if path == "/stream":  # no Content-Length: the worker counts the parts it was given
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iter([b"one ", b"two ", b"three"])
    if path == "/work":
        time.sleep(float(environ["QUERY_STRING"] or 0.002))
    try:
        body = environ["wsgi.input"].read()
    except HTTPException as e:  # a body the worker cut: the app's error, as Flask answers it
        start_response(f"{e.code} {e.name}", [("Content-Type", "text/plain")])
        return [e.name.encode()]
    echo = {"method": environ["REQUEST_METHOD"], "path": path, "query": environ["QUERY_STRING"],
            "raw_uri_bytes": len(environ["RAW_URI"]), "protocol": environ["SERVER_PROTOCOL"],
            "scheme": environ["wsgi.url_scheme"], "body_bytes": len(body), "body_head": body[:20].decode("latin-1"),
            "pid": os.getpid(), "content_type": environ.get("CONTENT_TYPE"),
            "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")}}
    data = json.dumps(echo).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


app.config = config
