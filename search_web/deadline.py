"""RequestDeadline: a request timeout for WSGI servers that have none (granian), by ending the worker process.

Kept apart from search_web.wsgi, whose import builds an app.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable


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
