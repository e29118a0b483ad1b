"""A WSGI app for the request-deadline test under a real granian server: /slow sleeps, anything else answers at
once with this worker's pid; wrapped in search_web.deadline.RequestDeadline as `cxrsearch serve --server granian`
wraps the web app (seconds from CXRSEARCH_TEST_DEADLINE)."""
from __future__ import annotations

import os
import time

from search_web.deadline import RequestDeadline


def _app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(60)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


app = RequestDeadline(_app, float(os.environ.get("CXRSEARCH_TEST_DEADLINE", "2")), poll_s=0.2)
