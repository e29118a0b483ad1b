"""The web app as a module-level WSGI callable, for servers that import their application by name.

    granian --interface wsgi search_web.wsgi:app      (what `cxrsearch serve --server granian` runs)

The app's config comes from CXRSEARCH_SERVE_CONFIG (a JSON object of create_app keys, set by
`cxrsearch serve` from its options) over the usual CXRSEARCH_* environment; each worker process
imports this module once, so every worker builds and warms its own app (importing it builds one: the
server's master must not, so the variables' names live in search_web.config). With
CXRSEARCH_SERVE_TIMEOUT (seconds) the app runs under RequestDeadline: granian has no request timeout.
"""
from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable

from search_web.config import SERVE_CONFIG_VARIABLE as CONFIG_VARIABLE
from search_web.config import SERVE_TIMEOUT_VARIABLE as TIMEOUT_VARIABLE


def config_from_environment() -> dict:
    """The create_app config that `cxrsearch serve` left in CXRSEARCH_SERVE_CONFIG ({} when unset)."""
    text = os.environ.get(CONFIG_VARIABLE, "").strip()
    if not text:
        return {}
    config = json.loads(text)
    if not isinstance(config, dict):
        raise ValueError(f"{CONFIG_VARIABLE} must hold a JSON object; got {type(config).__name__}")
    return config


class RequestDeadline:
    """WSGI middleware for a server without a request timeout (granian): when a request has run for more than
    `seconds`, this worker process ends (`exit(1)`) and the server starts another in its place, as gunicorn's
    arbiter does to a worker past its timeout. A thread in Python cannot be stopped from outside, so the
    process is what goes; the other requests it was serving get their connections closed.

    The app call is what is timed (a Flask view runs there; a streamed file body is sent after it)."""

    def __init__(self, app: Callable, seconds: float, *, exit: Callable[[int], object] = os._exit,
                 clock: Callable[[], float] = time.monotonic, poll_s: float | None = None, watch: bool = True):
        if seconds <= 0:
            raise ValueError(f"a request deadline must be positive; got {seconds}")
        self.app, self.seconds = app, float(seconds)
        self._exit, self._clock = exit, clock
        self._running: dict[object, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self._poll_s = poll_s if poll_s is not None else min(1.0, self.seconds / 4)
        self._watch_enabled = watch  # False: only explicit check() calls (tests)
        self._watcher: threading.Thread | None = None

    def __call__(self, environ, start_response):
        if self._watcher is None and self._watch_enabled:  # started in the worker that serves, on its first request
            with self._lock:
                if self._watcher is None:
                    self._watcher = threading.Thread(target=self._watch, name="request-deadline", daemon=True)
                    self._watcher.start()
        key = object()
        with self._lock:
            self._running[key] = (self._clock(), environ.get("PATH_INFO", ""))
        try:
            return self.app(environ, start_response)
        finally:
            with self._lock:
                del self._running[key]

    def overdue(self) -> list[tuple[float, str]]:
        """(seconds running, path) of every request past the deadline."""
        now = self._clock()
        with self._lock:
            return [(now - started, path) for started, path in self._running.values() if now - started > self.seconds]

    def check(self) -> bool:
        """End the process when a request is overdue (True when it asked to)."""
        late = self.overdue()
        if not late:
            return False
        running, path = max(late)
        print(f"cxrsearch serve: a request to {path} has run {running:.0f} s, over the {self.seconds:g} s request "
              f"timeout: ending worker {os.getpid()} (the server starts another)", file=sys.stderr, flush=True)
        self._exit(1)
        return True

    def _watch(self) -> None:
        while True:
            time.sleep(self._poll_s)
            self.check()


def _build():
    from search_web.app import create_app, warm_up

    application = warm_up(create_app(config_from_environment()))
    timeout = os.environ.get(TIMEOUT_VARIABLE, "").strip()
    return RequestDeadline(application, float(timeout)) if timeout else application


app = _build()
