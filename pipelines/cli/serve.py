"""Serve the web UI and JSON API under a production WSGI server (gunicorn; waitress where gunicorn cannot run;
granian by choice).

Flask's development server runs only with --debug. Defaults: 127.0.0.1:8000, 2 worker processes, 30 s
request timeout. With the embedded backend each gunicorn worker is one thread running an event loop
(pipelines.cli.loop_worker: searches are CPU-bound, so threads only add hand-offs); with Elasticsearch, whose
searches wait on the network, 4 threads each (gunicorn's gthread worker). Either way a request's head must
arrive within 10 s and its body at 500 bytes/s or more after that, so slow or half-open connections cannot
hold a worker.
`--server granian` (HTTP in Rust, the app in Python threads) costs less CPU per request than gthread; it
has no request timeout of its own, so the app's worker ends itself when a request runs past --timeout and
granian starts another (search_web.deadline.RequestDeadline), and no limit on reading a body (see the README).
"""
from __future__ import annotations

import argparse
import atexit
import json
import os
import secrets
import select
import shutil
import sys
import tempfile
import threading
import time
from concurrent import futures

from indexer.text import BACKENDS

SERVERS = ("auto", "gunicorn", "waitress", "granian")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch serve", description=__doc__)
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (127.0.0.1; 0.0.0.0 in a container or behind a proxy you trust)")
    p.add_argument("--port", type=int, default=8000, help="port (8000)")
    p.add_argument("--backend", choices=BACKENDS, help="text index: embedded (default) or es; "
                                                       "default $CXRSEARCH_BACKEND or embedded")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--index-dir", help="index directory (default DATA_DIR/index)")
    p.add_argument("--images-dir", help="folder of <image id>.png served by id (default: the synthetic corpus)")
    p.add_argument("--es-url", help="Elasticsearch URL (default $CXRSEARCH_ES_URL or http://127.0.0.1:9200)")
    p.add_argument("--es-index", help="Elasticsearch alias (default $CXRSEARCH_ES_INDEX or cxrsearch-images)")
    p.add_argument("--checkpoint", help="cascade for search by image: a path, 'auto' (the one that made the live "
                                        "vectors; default) or 'none'")
    p.add_argument("--server", choices=SERVERS, default="auto",
                   help="WSGI server: gunicorn (default where it runs), waitress (Windows, or by choice), granian "
                        "(by choice: HTTP in Rust, the app in threads)")
    p.add_argument("--workers", type=int, default=int(os.environ.get("CXRSEARCH_WORKERS", 2)),
                   help="worker processes (gunicorn, granian; 2, or $CXRSEARCH_WORKERS)")
    p.add_argument("--threads", type=int, default=int(os.environ["CXRSEARCH_THREADS"])
                   if os.environ.get("CXRSEARCH_THREADS") else None,
                   help="threads per worker; under gunicorn 1 means its event-loop worker (default "
                        "$CXRSEARCH_THREADS, else 1 for the embedded backend under gunicorn, 4 otherwise)")
    p.add_argument("--timeout", type=int, default=30, help="seconds a request may take before its worker is "
                                                           "restarted (gunicorn, granian: at least 10) / a "
                                                           "channel is closed (waitress) (30)")
    p.add_argument("--answer-cache", type=int, metavar="N",
                   help="search answers each worker keeps for repeated searches (embedded backend; default 512, "
                        "or $CXRSEARCH_ANSWER_CACHE; 0 switches it off)")
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    p.add_argument("--debug", action="store_true", help="Flask's development server with reloader and tracebacks: "
                                                       "never in production")
    return p


def config_from_args(args: argparse.Namespace) -> dict:
    """The create_app config of the options given (unset ones leave the environment's values)."""
    given = {"BACKEND": args.backend, "DATA_DIR": args.data_dir, "INDEX_DIR": args.index_dir,
             "IMAGES_DIR": getattr(args, "images_dir", None), "ES_URL": args.es_url, "ES_INDEX": args.es_index,
             "CHECKPOINT": getattr(args, "checkpoint", None), "ANSWER_CACHE": getattr(args, "answer_cache", None)}
    return {key: value for key, value in given.items() if value is not None}


def pick_server(choice: str) -> str:
    """'gunicorn' or 'waitress': gunicorn needs a POSIX system (fcntl); waitress runs anywhere."""
    if choice != "auto":
        return choice
    if sys.platform.startswith("win"):
        return "waitress"
    try:
        import gunicorn  # noqa: F401
    except ImportError:
        return "waitress"
    return "gunicorn"


def default_threads(server: str, backend: str | None) -> int:
    """Threads per worker when --threads is not given: 1 (gunicorn's event-loop worker) for the embedded
    backend, whose searches hold the GIL; 4 for Elasticsearch, whose searches wait on the network, and
    for waitress and granian, which run the app in a thread pool."""
    backend = backend or os.environ.get("CXRSEARCH_BACKEND") or "embedded"
    return 1 if server == "gunicorn" and backend == "embedded" else 4


def check_args(args: argparse.Namespace) -> None:
    for name in ("workers", "threads", "timeout"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise SystemExit(f"cxrsearch serve: --{name} must be at least 1; got {getattr(args, name)}")
    if args.server == "granian" and args.timeout < GRANIAN_MIN_TIMEOUT_S:
        raise SystemExit(f"cxrsearch serve: --server granian needs --timeout {GRANIAN_MIN_TIMEOUT_S} or more; got "
                         f"{args.timeout} (granian stops altogether when a worker it has just replaced ends "
                         "within 5.5 s)")
    if not 0 < args.port < 65536:
        raise SystemExit(f"cxrsearch serve: --port {args.port} is not a TCP port (1..65535)")


READ_TIMEOUT_S = 10  # a client that stops sending mid-request loses its connection after this long
MIN_BODY_RATE = 500  # bytes/s a request body must average after its first READ_TIMEOUT_S (Apache's MinRate)
GRANIAN_MIN_TIMEOUT_S = 10  # a worker ended by the request deadline must outlive granian's crash-loop window (5.5 s)
KEEPALIVE_LINGER_S = 0.002  # how long a worker thread waits on its kept-alive connection for the next request


class CountingPool(futures.ThreadPoolExecutor):
    """A thread pool that knows how many submitted jobs still wait for a thread (`waiting`)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.waiting = 0
        self._count = threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        with self._count:
            self.waiting += 1
        return super().submit(self._started, fn, *args, **kwargs)

    def _started(self, fn, *args, **kwargs):
        with self._count:
            self.waiting -= 1
        return fn(*args, **kwargs)


def next_request_sent(conn, linger_s: float = KEEPALIVE_LINGER_S) -> bool:
    """Whether the client of a kept-alive gunicorn connection sent (part of) its next request within `linger_s`:
    bytes read ahead with the last request, or the socket readable (data, or the client closing)."""
    unreader = getattr(conn.parser, "unreader", None)
    if unreader is None:
        return False  # no HTTP/1 parser (HTTP/2): gunicorn's own path
    if unreader.buf.getvalue():
        return True
    poller = select.poll()
    poller.register(conn.sock, select.POLLIN)
    return bool(poller.poll(linger_s * 1000))


class ReadLimits:
    """A connection's socket as gunicorn's HTTP/1 parser and the app read it, with deadlines for each request.

    - The head (from `head()`, as the worker begins a request, until `body()`): READ_TIMEOUT_S in all, so a
      client that sends its head a few bytes at a time loses its connection as one that stops sending does.
    - The body (from `body()`, once the head is parsed; the app reads it): READ_TIMEOUT_S plus a second for
      every MIN_BODY_RATE bytes received, so a body sent a byte at a time is cut (the app answers 408) while
      an upload at any real link speed is not.

    Ten clients sending a byte every 2 s, heads or bodies, had held every thread of the default server
    (2 workers x 4 threads) for as long as they kept sending: no answer to anyone. A read waits for what is
    left of the deadline only when that is shorter than the socket's own timeout (READ_TIMEOUT_S per read,
    or what gunicorn set while draining a body) by more than a second, so a head or body that arrives at once
    costs no extra system call. Anything else is the socket's.
    """

    def __init__(self, sock):
        self.sock = sock
        self._since: float | None = None  # start of the head or body being read; None: no deadline
        self._rate: float | None = None   # body: MIN_BODY_RATE; head: None
        self._received = 0
        self._in_app = False              # the app reads the body (else gunicorn's parser reads or drains)

    def head(self) -> None:
        self._since, self._rate, self._received, self._in_app = time.monotonic(), None, 0, False

    def body(self) -> None:
        self._since, self._rate, self._received, self._in_app = time.monotonic(), MIN_BODY_RATE, 0, True

    def answered(self) -> None:
        """The app has answered: what is left of the body is gunicorn's to drain (a timeout closes)."""
        self._in_app = False

    def recv(self, size: int) -> bytes:
        if self._since is None:
            return self.sock.recv(size)
        allowed = READ_TIMEOUT_S + (self._received / self._rate if self._rate else 0.0)
        left = self._since + allowed - time.monotonic()
        if left <= 0:
            self._too_slow()
        prior = self.sock.gettimeout()
        try:
            if prior is not None and left + 1.0 >= prior:
                data = self.sock.recv(size)
            else:
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(size)
                finally:
                    self.sock.settimeout(prior)
        except TimeoutError:
            self._too_slow()
        self._received += len(data)
        return data

    def _too_slow(self):
        if not self._in_app:  # gunicorn's parser or its drain after the answer: the connection is closed
            raise TimeoutError(f"the request came slower than {READ_TIMEOUT_S} s for its head, "
                               f"{MIN_BODY_RATE} bytes/s for its body")
        from werkzeug.exceptions import RequestTimeout  # in the app: a 408 answer (JSON under /api)

        raise RequestTimeout(f"the request body came slower than {MIN_BODY_RATE} bytes/s")

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def read_timeout_worker():
    """gunicorn's gthread worker with a time limit on reading a request's head, and a keep-alive fast path.

    Stock gthread hands silent connections back to its poller, but a client that sends half a
    request and stops holds a thread for ever (the parser blocks in recv), and so does one that
    sends its head a byte at a time. With a timeout on the socket and a deadline for the whole head
    (ReadLimits), such a read fails after READ_TIMEOUT_S and the connection is closed; a body sent a byte at a
    time gets a 408.

    Stock gthread also passes every request on a kept-alive connection through three thread
    hand-offs (worker thread -> main loop -> poller -> worker thread); on the 2-core build VM each
    wake-up costs tens of microseconds of CPU and as much latency. A client usually sends its next
    request at once, so a thread that has just answered waits up to KEEPALIVE_LINGER_S for it and
    answers it itself, as long as no other connection's request waits for a thread (those go first:
    no client is starved by a busy one).
    """
    from gunicorn.workers import gthread

    class ReadTimeoutConn(gthread.TConn):
        def init(self):  # gunicorn calls it before reading each request of the connection
            super().init()
            self.sock.settimeout(READ_TIMEOUT_S)
            unreader = getattr(self.parser, "unreader", None)  # None: no HTTP/1 parser (HTTP/2)
            if unreader is not None:
                if not isinstance(unreader.sock, ReadLimits):
                    unreader.sock = ReadLimits(unreader.sock)
                unreader.sock.head()

    class ReadTimeoutWorker(gthread.ThreadWorker):
        def get_thread_pool(self):
            return CountingPool(max_workers=self.cfg.threads)

        def handle_request(self, req, conn):  # the head is read: now the body's limit, as the app reads it
            limits = getattr(getattr(conn.parser, "unreader", None), "sock", None)
            if not isinstance(limits, ReadLimits):
                return super().handle_request(req, conn)
            limits.body()
            try:
                return super().handle_request(req, conn)
            finally:
                limits.answered()

        def handle(self, conn):
            if type(conn) is gthread.TConn:
                conn.__class__ = ReadTimeoutConn
            keep = super().handle(conn)
            while keep is True and self.alive and not self.tpool.waiting and next_request_sent(conn):
                keep = super().handle(conn)
            return keep

    return ReadTimeoutWorker


def gunicorn_options(args: argparse.Namespace) -> dict:
    """gunicorn settings for this run (a function so tests can check them without starting a server)."""
    return {
        "bind": f"{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}",
        "workers": args.workers, "threads": args.threads,
        "worker_class": "loop" if args.threads == 1 else "gthread",  # loop: pipelines.cli.loop_worker
        "sendfile": False if args.threads == 1 else None,  # the loop worker sends files from its own buffers
        "timeout": args.timeout, "graceful_timeout": args.timeout, "keepalive": 5,
        "limit_request_line": 0,          # the app answers over-long URLs itself, as JSON 414 under /api
        "limit_request_field_size": 16_380, "limit_request_fields": 100,
        "forwarded_allow_ips": "127.0.0.1", "proxy_allow_ips": "127.0.0.1",
        "accesslog": "-" if args.access_log else None, "errorlog": "-", "loglevel": "info",
        "worker_tmp_dir": "/dev/shm" if os.path.isdir("/dev/shm") else None,
        "child_exit": _child_exit,
        "control_socket_disable": True,   # gunicorn >= 25: no shared ~/.gunicorn socket between servers
    }


def _child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def run_gunicorn(config: dict, args: argparse.Namespace) -> None:
    from gunicorn.app.base import BaseApplication

    options = {k: v for k, v in gunicorn_options(args).items() if v is not None}
    if options["worker_class"] == "gthread":
        options["worker_class"] = read_timeout_worker()
    else:
        from pipelines.cli.loop_worker import LoopWorker

        options["worker_class"] = LoopWorker

    class Server(BaseApplication):
        def load_config(self):
            for key, value in options.items():
                if key in self.cfg.settings:  # older gunicorn versions lack some settings
                    self.cfg.set(key, value)

        def load(self):
            from search_web import create_app
            from search_web.app import warm_up

            return warm_up(create_app(config))

    Server().run()


def granian_options(args: argparse.Namespace) -> dict:
    """granian settings for this run (a function so tests can check them without starting a server): HTTP/1,
    `--threads` blocking threads per worker (the app's threads), a READ_TIMEOUT_S limit on reading a request's
    headers (a half-open connection is closed; it never holds a thread: granian reads requests in Rust)."""
    from granian.constants import HTTPModes, Interfaces
    from granian.http import HTTP1Settings

    return {"target": "search_web.wsgi:app", "address": args.host, "port": args.port,
            "interface": Interfaces.WSGI, "http": HTTPModes.http1, "websockets": False,
            "workers": args.workers, "blocking_threads": args.threads,
            "http1_settings": HTTP1Settings(header_read_timeout=READ_TIMEOUT_S * 1000),
            "log_access": args.access_log, "respawn_failed_workers": True,
            "workers_kill_timeout": args.timeout}


def run_granian(config: dict, args: argparse.Namespace) -> None:
    from granian import Granian

    from search_web.config import SERVE_CONFIG_VARIABLE, SERVE_TIMEOUT_VARIABLE

    # each worker builds its app from them (search_web.wsgi); importing that module here would build one in the master
    os.environ[SERVE_CONFIG_VARIABLE] = json.dumps(config)
    os.environ[SERVE_TIMEOUT_VARIABLE] = str(args.timeout)  # granian has none: search_web.deadline.RequestDeadline
    Granian(**granian_options(args)).serve()


def run_waitress(config: dict, args: argparse.Namespace) -> None:
    from waitress import serve

    from search_web import create_app
    from search_web.app import warm_up

    serve(warm_up(create_app(config)), host=args.host, port=args.port, threads=args.threads,
          channel_timeout=args.timeout, connection_limit=1000, max_request_header_size=128 * 1024,
          ident="cxrsearch", clear_untrusted_proxy_headers=True)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    check_args(args)
    config = config_from_args(args)
    # one session-signing key for every worker (else a form served by one worker fails CSRF in another)
    if not os.environ.get("CXRSEARCH_SECRET_KEY"):
        config["SECRET_KEY"] = secrets.token_hex(32)
    url = f"http://{'[' + args.host + ']' if ':' in args.host else args.host}:{args.port}/"
    if args.debug:
        from search_web import create_app

        print(f"cxrsearch serve: DEVELOPMENT server (--debug); open {url}", flush=True)
        create_app(config).run(host=args.host, port=args.port, debug=True)
        return 0
    server = pick_server(args.server)
    if args.threads is None:
        args.threads = default_threads(server, args.backend)
    if server in ("gunicorn", "granian") and args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        folder = tempfile.mkdtemp(prefix="cxrsearch-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # /metrics adds up every worker's counts
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    workers = (f"{args.threads} threads" if server == "waitress" else
               f"{args.workers} event-loop workers" if server == "gunicorn" and args.threads == 1 else
               f"{args.workers} workers x {args.threads} threads")
    print(f"cxrsearch serve: {server}, {workers}, timeout {args.timeout} s; open {url}", flush=True)
    {"gunicorn": run_gunicorn, "granian": run_granian, "waitress": run_waitress}[server](config, args)
    return 0
