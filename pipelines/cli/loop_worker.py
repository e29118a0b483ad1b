"""A gunicorn worker for a CPU-bound app: one thread per process, one event loop, each request answered whole.

The embedded backend's searches are Python and numpy work that holds the GIL, so threads in a worker add
no throughput; what they add is cost. Under gunicorn's gthread worker every request passes between the
poller thread and a pool thread, each numpy step of a search hands the GIL to a thread that waits for it,
and gunicorn's pure-Python parser and response cost about 0.17 ms a request even in a hot loop. This
worker reads requests without blocking, parses them with llhttp (httptools, Node's HTTP parser), and only a
request that has wholly arrived goes to the app, in this one thread. Measured in `cxrsearch bench` (see
the README's speed section) and under wrk here: less CPU a search than gthread's 2 x 4 threads, and a 404
in about half.

What a connection may take (the limits serve.ReadLimits keeps under gthread, kept here by the loop):
- a new connection READ_TIMEOUT_S for its first request's head; a kept-alive one `keepalive` seconds of
  silence, then READ_TIMEOUT_S for the head once its first byte came;
- a body READ_TIMEOUT_S plus a second for every MIN_BODY_RATE bytes; a body that is slower goes to the app
  as it stands, whose read of it fails (408, JSON under /api), and the connection closes;
- a body longer than the app accepts (its MAX_CONTENT_LENGTH) is not read: the app answers 413 from the
  head, and the connection closes; a body is kept in memory up to SPOOL_BYTES, beyond that in a temp file;
- a request line over MAX_REQUEST_LINE goes to the app cut there (its 414), more than
  `limit_request_fields` header fields or one over `limit_request_field_size` is a 431, and a head still
  unfinished after MAX_HEAD_BYTES closes the connection (llhttp holds a header field whole until it ends);
- an answer is sent as fast as the client reads it, at MIN_BODY_RATE or more after READ_TIMEOUT_S, else
  the connection is closed.
A stalled or dripping client costs a buffer, never the thread. A request that runs past --timeout stops the
heartbeat and gunicorn replaces the worker, as with its sync worker. Pipelined requests are answered in
order, one per connection in turn, so a client that pipelines many cannot keep the others waiting.
"""
from __future__ import annotations

import collections
import errno
import io
import ipaddress
import os
import selectors
import socket
import sys
import tempfile
import time
from datetime import timedelta
from email.utils import formatdate
from types import SimpleNamespace
from urllib.parse import unquote_to_bytes

import httptools
import orjson
from gunicorn.workers import base

from pipelines.cli.serve import MIN_BODY_RATE, READ_TIMEOUT_S

RECV_BYTES = 256 * 1024
MAX_REQUEST_LINE = 1024 * 1024     # a longer request target reaches the app cut here (the app answers 414)
MAX_HEAD_BYTES = 8 * 1024 * 1024   # a request head still unfinished past this closes its connection
SPOOL_BYTES = 1024 * 1024          # a request body past this is kept in a temp file until the app reads it
SWEEP_S = 0.25                     # how often deadlines are checked
CLOSE_LINGER_S = 2.0               # after the last answer, what the client still sends is read and dropped
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
NO_BODY = frozenset({204, 304})
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "upgrade", "proxy-connection", "te",
                        "trailer"})


class _Request:
    __slots__ = ("url", "url_size", "headers", "method", "version", "keep_alive", "body", "body_size",
                 "too_large", "too_slow", "error", "queued", "fields")

    def __init__(self):
        self.url, self.url_size, self.headers, self.fields = [], 0, [], 0
        self.method, self.version, self.keep_alive = "GET", "1.1", True
        self.body, self.body_size = None, 0  # body: a SpooledTemporaryFile once a byte of it came
        self.too_large = self.too_slow = self.queued = False
        self.error: tuple[int, str, str] | None = None  # (status, type, message) the worker answers itself

    @property
    def cut(self) -> bool:
        """Not all of the request reached the app: the connection closes after the answer."""
        return self.too_large or self.too_slow or self.error is not None or self.url_size > MAX_REQUEST_LINE


class _CutBody:
    """wsgi.input of a request answered before its body came whole: reads of what came, then the app's error.
    A read of everything fails at once (it never came), as does a read past what came."""

    def __init__(self, body, error: Exception):
        self._body, self._error = body, error

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            raise self._error
        data = self._body.read(size) if self._body is not None else b""
        if not data and size:
            raise self._error
        return data

    def readline(self, size: int | None = -1) -> bytes:
        data = self._body.readline(size) if self._body is not None else b""
        if not data.endswith(b"\n") and (size is None or size < 0 or len(data) < size):
            raise self._error
        return data

    def __iter__(self):
        while True:
            yield self.readline()


class _Conn:
    """One client connection: its llhttp parser (this object gets the parser's callbacks), the request being
    read, requests read whole and waiting their turn, and answer bytes not yet sent."""

    __slots__ = ("sock", "addr", "server", "trusted", "parser", "req", "pending", "stage", "since", "count",
                 "head_bytes", "out", "send_since", "sent", "closing", "events", "limits")

    def __init__(self, sock, addr, server, trusted: bool, limits, now: float):
        self.sock, self.addr, self.server, self.trusted, self.limits = sock, addr, server, trusted, limits
        self.parser = httptools.HttpRequestParser(self)
        self.req: _Request | None = None
        self.pending: collections.deque[_Request] = collections.deque()
        self.stage, self.since, self.count = "new", now, 0  # see deadline()
        self.head_bytes = 0  # bytes received since the last head ended (llhttp holds a header field whole)
        self.out, self.send_since, self.sent = b"", 0.0, 0  # answer bytes not sent yet; since when; sent since
        self.closing = False
        self.events = 0  # what the selector waits for on this socket

    def deadline(self, keepalive: float) -> float:
        if self.out:
            return self.send_since + READ_TIMEOUT_S + self.sent / MIN_BODY_RATE
        if self.pending:
            return float("inf")  # whole requests wait their turn: nothing is late
        if self.stage == "idle":
            return self.since + keepalive
        if self.stage in ("new", "head"):
            return self.since + READ_TIMEOUT_S
        if self.stage == "linger":
            return self.since + CLOSE_LINGER_S
        return self.since + READ_TIMEOUT_S + self.count / MIN_BODY_RATE  # "body": bytes received

    # --- llhttp's callbacks (they must not raise: the parser would hide the error)

    def on_message_begin(self):
        self.req = _Request()
        if self.stage != "new":
            self.since = time.monotonic()
        self.stage = "head"

    def on_url(self, url: bytes):
        req = self.req
        if req.url_size <= MAX_REQUEST_LINE:
            req.url.append(url)
        req.url_size += len(url)

    def on_header(self, name: bytes, value: bytes):
        req = self.req
        req.fields += 1
        max_fields, max_field = self.limits
        if req.fields > max_fields or len(name) + len(value) + 2 > max_field:
            req.error = req.error or (431, "RequestHeaderFieldsTooLarge",
                                      f"a request may have at most {max_fields} header fields of "
                                      f"{max_field} bytes each")
            return
        req.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self):
        req, parser = self.req, self.parser
        req.method = parser.get_method().decode("ascii", "replace")
        req.version = parser.get_http_version()
        connection = expect = ""
        length = 0
        for name, value in req.headers:
            lower = name.lower()
            if lower == "connection":
                connection += "," + value.lower()
            elif lower == "expect":
                expect = value.strip().lower()
            elif lower == "content-length" and value.strip().isdigit():
                length = int(value.strip())
        tokens = {t.strip() for t in connection.split(",")}
        req.keep_alive = "keep-alive" in tokens if req.version == "1.0" else "close" not in tokens
        self.stage, self.since, self.count, self.head_bytes = "body", time.monotonic(), 0, 0
        if req.error is not None:
            self._queue()
        elif length > self.limits_body:
            req.too_large = True
            self._queue()
        elif expect == "100-continue" and not self.pending:  # (after an unanswered request it would come first)
            try:
                self.sock.send(CONTINUE)  # the client waits for it before it sends the body
            except OSError:
                pass  # it sends the body after a wait of its own anyway

    def on_body(self, data: bytes):
        req = self.req
        if req.queued:
            return  # answered already (too large or a bad head): the rest is dropped
        self.count += len(data)
        req.body_size += len(data)
        if req.body_size > self.limits_body:
            req.too_large = True
            self._queue()
            return
        if req.body is None:
            req.body = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)
        req.body.write(data)

    def on_message_complete(self):
        if not self.req.queued:
            self._queue()
        self.req = None
        self.stage, self.since = "idle", time.monotonic()

    def _queue(self):
        self.req.queued = True
        self.pending.append(self.req)

    limits_body = 64 * 1024 * 1024  # the app's MAX_CONTENT_LENGTH, set by the worker for every connection


class LoopWorker(base.Worker):
    """gunicorn worker: see the module's docstring."""

    def init_process(self):
        self.selector = selectors.DefaultSelector()
        self.conns: dict[int, _Conn] = {}
        self.ready: collections.deque[_Conn] = collections.deque()
        self._date = (0, "")
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        config = getattr(self.wsgi, "config", None)  # a Flask app: its own limit on a request body
        limit = config.get("MAX_CONTENT_LENGTH") if config is not None else None
        _Conn.limits_body = int(limit) if limit else 64 * 1024 * 1024

    # --- the loop

    def run(self):
        self.servers = {}
        for listener in self.sockets:
            listener.setblocking(False)
            name = listener.getsockname()
            self.servers[listener] = (name[0], str(name[1])) if isinstance(name, tuple) else (str(name), "")
            self.selector.register(listener, selectors.EVENT_READ, listener)
        self.selector.register(self.PIPE[0], selectors.EVENT_READ, None)
        self.accepting = True
        self.keepalive = max(float(self.cfg.keepalive), 0.0)
        self.max_fields = self.cfg.limit_request_fields if self.cfg.limit_request_fields > 0 else 100
        self.max_field = self.cfg.limit_request_field_size if self.cfg.limit_request_field_size > 0 else 8190
        self.multiprocess = self.cfg.workers > 1
        last_sweep = last_beat = 0.0
        while self.alive:
            now = time.monotonic()
            if now - last_beat >= 0.5:
                self.notify()
                last_beat = now
            if now - last_sweep >= SWEEP_S:
                last_sweep = now
                if self.ppid != os.getppid():
                    self.log.info("Parent changed, shutting down: %s", self)
                    break
                self.sweep(now)
            try:
                events = self.selector.select(0 if self.ready else SWEEP_S)
            except InterruptedError:
                continue
            for key, mask in events:
                if key.data is None:  # a signal woke us
                    try:
                        os.read(self.PIPE[0], 64)
                    except OSError:
                        pass
                elif isinstance(key.data, _Conn):
                    if mask & selectors.EVENT_WRITE:
                        self.send(key.data)
                    else:
                        self.receive(key.data)
                else:
                    self.accept(key.data)
            for _ in range(len(self.ready)):  # connections with a further whole request, one each in turn
                conn = self.ready.popleft()
                if conn.sock.fileno() >= 0 and conn.pending and not conn.out:
                    self.serve(conn)
        self.shutdown()

    def accept(self, listener) -> None:
        for _ in range(64):
            if len(self.conns) >= self.cfg.worker_connections:
                self.pause_accepting()
                return
            try:
                sock, addr = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.ECONNABORTED, errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return
                raise
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(sock, addr, self.servers[listener], self.trusted(addr), (self.max_fields, self.max_field),
                         time.monotonic())
            self.conns[sock.fileno()] = conn
            self.want(conn, selectors.EVENT_READ)

    def trusted(self, addr) -> bool:
        """Whether the peer may set the scheme (X-Forwarded-Proto and the like): gunicorn's forwarded_allow_ips."""
        if not isinstance(addr, tuple):
            return True  # a unix socket: a local proxy
        allowed = self.cfg.forwarded_allow_ips
        if "*" in allowed:
            return True
        networks = getattr(self.cfg, "forwarded_allow_networks", None)  # gunicorn >= 23.x
        if networks is None:
            return addr[0] in allowed
        try:
            ip = ipaddress.ip_address(addr[0])
        except ValueError:
            return False
        return any(ip in network for network in networks())

    def pause_accepting(self) -> None:
        if self.accepting:
            self.accepting = False
            for listener in self.sockets:
                self.selector.unregister(listener)

    def resume_accepting(self) -> None:
        if not self.accepting and self.alive and len(self.conns) < self.cfg.worker_connections:
            self.accepting = True
            for listener in self.sockets:
                self.selector.register(listener, selectors.EVENT_READ, listener)

    def want(self, conn: _Conn, events: int) -> None:
        """What the selector should wait for on the connection (0: nothing for now)."""
        if events == conn.events:
            return
        if conn.events == 0:
            self.selector.register(conn.sock, events, conn)
        elif events == 0:
            self.selector.unregister(conn.sock)
        else:
            self.selector.modify(conn.sock, events, conn)
        conn.events = events

    def receive(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(RECV_BYTES)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.close(conn)
            return
        if conn.stage == "linger":
            return  # the last answer is out: what the client still sends is dropped
        if conn.stage != "body":
            conn.head_bytes += len(data)
            if conn.head_bytes > MAX_HEAD_BYTES:
                self.log.debug("Closing a connection whose request head is over %s bytes", MAX_HEAD_BYTES)
                self.close(conn)
                return
        try:
            conn.parser.feed_data(data)
        except httptools.HttpParserUpgrade:  # no protocol switch here: answered as it is, then closed
            conn.closing = True
            if conn.req is not None and not conn.req.queued:
                conn.req.queued = True
                conn.pending.append(conn.req)
        except httptools.HttpParserError as e:
            req = conn.req or _Request()
            req.error = (400, "BadRequest", f"the request is not valid HTTP/1.1: {e}")
            if not req.queued:
                req.queued = True
                conn.pending.append(req)
        if conn.pending:
            self.serve(conn)

    def serve(self, conn: _Conn) -> None:
        """Answer the connection's first waiting request; the next one waits for the other connections' turn."""
        req = conn.pending.popleft()
        if req.cut:
            conn.closing = True
            conn.pending.clear()
        if conn.closing or not self.alive:
            req.keep_alive = False
        self.write(conn, self.answer(conn, req))
        if req.body is not None:
            req.body.close()

    def sweep(self, now: float) -> None:
        """Deadlines: a late request head, an idle or a stalled connection closes; a late body is answered."""
        for conn in list(self.conns.values()):
            if now < conn.deadline(self.keepalive):
                continue
            if conn.stage == "body" and not conn.out and conn.req is not None and not conn.req.queued:
                conn.req.too_slow = True
                conn.req.queued = True
                conn.pending.append(conn.req)
                self.serve(conn)
            else:
                self.close(conn)

    # --- one request

    def environ(self, conn: _Conn, req: _Request) -> dict:
        url = b"".join(req.url)
        if req.url_size > MAX_REQUEST_LINE:
            url = url[:MAX_REQUEST_LINE]
        target = url.split(b"#", 1)[0]
        if not target.startswith(b"/") and target != b"*":  # absolute form (through a proxy)
            try:
                parsed = httptools.parse_url(target)
                target = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query is not None else b"")
            except httptools.HttpParserInvalidURLError:
                pass
        path, _, query = target.partition(b"?")
        environ = {
            "REQUEST_METHOD": req.method, "SCRIPT_NAME": "", "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
            "QUERY_STRING": query.decode("latin-1"), "RAW_URI": url.decode("latin-1"),
            "REQUEST_URI": url.decode("latin-1"), "SERVER_PROTOCOL": f"HTTP/{req.version}",
            "SERVER_NAME": conn.server[0], "SERVER_PORT": conn.server[1],
            "REMOTE_ADDR": conn.addr[0] if isinstance(conn.addr, tuple) else "",
            "REMOTE_PORT": str(conn.addr[1]) if isinstance(conn.addr, tuple) else "",
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.errors": sys.stderr,
            "wsgi.multithread": False, "wsgi.multiprocess": self.multiprocess, "wsgi.run_once": False,
            "wsgi.input_terminated": True,
        }
        secure = self.cfg.secure_scheme_headers if conn.trusted else {}
        for name, value in req.headers:
            key = name.upper()
            if "_" in key:
                continue  # dropped, as gunicorn does: X_Forwarded_For must not pass for X-Forwarded-For
            if key in secure and value.strip().lower() == str(secure[key]).lower():
                environ["wsgi.url_scheme"] = "https"
            key = key.replace("-", "_")
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            if key in environ:
                value = environ[key] + ("; " if key == "HTTP_COOKIE" else ",") + value
            environ[key] = value
        body = req.body
        if body is not None:
            body.seek(0)
        if req.too_slow or req.too_large:
            from werkzeug.exceptions import RequestEntityTooLarge, RequestTimeout

            environ["wsgi.input"] = (
                _CutBody(body, RequestTimeout(f"the request body came slower than {MIN_BODY_RATE} bytes/s"))
                if req.too_slow else
                _CutBody(None, RequestEntityTooLarge(f"the request body is over {_Conn.limits_body} bytes")))
        else:
            environ["wsgi.input"] = body if body is not None else io.BytesIO()
        return environ

    def answer(self, conn: _Conn, req: _Request) -> bytes:
        """The whole answer to one request: the app's, or the worker's own for a request it cannot pass on."""
        if req.error is not None:
            return self.error_answer(*req.error)
        started = time.monotonic()
        environ: dict = {}
        self.nr += 1
        if self.nr >= self.max_requests:
            self.log.info("Autorestarting worker after current request.")
            self.alive = False
            req.keep_alive = False
        state: list = []
        parts: list[bytes] = []

        def start_response(status, headers, exc_info=None):
            if state and exc_info is None:
                raise AssertionError("start_response was called again without exc_info")
            state[:] = [status, headers]
            return parts.append  # WSGI's write(); kept with the rest

        try:
            environ = self.environ(conn, req)
            self.cfg.pre_request(self, SimpleNamespace(method=req.method, path=environ["PATH_INFO"]))
            result = self.wsgi(environ, start_response)
            try:
                for part in result:
                    if part:
                        parts.append(part)
            finally:
                if hasattr(result, "close"):
                    result.close()
            if not state:
                raise AssertionError("the app returned without calling start_response")
            answer, status, sent = self.head_and_body(req, state[0], state[1], parts)
        except Exception:
            self.log.exception("Error handling request %s", environ.get("RAW_URI"))
            req.keep_alive = False
            answer, status = self.error_answer(500, "InternalServerError", "the server failed to answer"), "500"
            sent = len(answer)
        if not req.keep_alive:
            conn.closing = True
        if environ and getattr(self.log, "access_log_enabled", True):
            self.log.access(SimpleNamespace(status=status, sent=sent, headers=state[1] if state else []),
                            SimpleNamespace(headers=req.headers), environ,
                            timedelta(seconds=time.monotonic() - started))
        return answer

    def head_and_body(self, req: _Request, status: str, headers, parts: list[bytes]) -> tuple[bytes, str, int]:
        """The answer's bytes, its status and its body's length."""
        code = int(status[:3])
        body = b"".join(parts)
        lines = [f"HTTP/1.1 {status}\r\n"]
        length = None
        for name, value in headers:
            lower = name.lower()
            if "\r" in name or "\n" in name or "\r" in value or "\n" in value or ":" in name:
                raise ValueError(f"the app sent an invalid header: {name!r}")
            if lower == "content-length":
                length = int(value)  # written below, from the body sent
                continue
            if lower == "connection" and "close" in value.lower():
                req.keep_alive = False
                continue
            if lower in HOP_BY_HOP:
                continue  # the server's to set
            lines.append(f"{name}: {value}\r\n")
        if req.method == "HEAD" or code in NO_BODY or code < 200:
            body = b""
            if length is not None and req.method == "HEAD":
                lines.append(f"Content-Length: {length}\r\n")
        else:
            if length is not None and length != len(body):
                self.log.warning("%s answered %d bytes with Content-Length %d", status, len(body), length)
                req.keep_alive = False
                body = body[:length]
            lines.append(f"Content-Length: {len(body)}\r\n")
        lines.append(f"Date: {self.http_date()}\r\n")
        if not req.keep_alive:
            lines.append("Connection: close\r\n")
        elif req.version == "1.0":
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1") + body, status, len(body)

    def error_answer(self, status: int, kind: str, message: str) -> bytes:
        body = orjson.dumps({"error": {"type": kind, "message": message}})
        reason = {400: "Bad Request", 431: "Request Header Fields Too Large",
                  500: "Internal Server Error"}.get(status, "Error")
        return (f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"X-Content-Type-Options: nosniff\r\nDate: {self.http_date()}\r\nConnection: close\r\n\r\n"
                ).encode("latin-1") + body

    def http_date(self) -> str:
        now = int(time.time())
        if self._date[0] != now:
            self._date = (now, formatdate(now, usegmt=True))
        return self._date[1]

    # --- sending and closing

    def write(self, conn: _Conn, data: bytes) -> None:
        try:
            sent = conn.sock.send(data) if data else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.close(conn)
            return
        if sent < len(data):
            conn.out, conn.send_since, conn.sent = data[sent:], time.monotonic(), 0
            self.want(conn, selectors.EVENT_WRITE)
            return
        self.answered(conn)

    def send(self, conn: _Conn) -> None:
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.close(conn)
            return
        conn.out = conn.out[sent:]
        conn.sent += sent
        if not conn.out:
            self.answered(conn)

    def answered(self, conn: _Conn) -> None:
        """An answer is out: close, answer the next waiting request in turn, or read the next one."""
        if conn.closing:
            self.finish(conn)
            return
        if conn.req is None:  # no request begun since: kept alive from now
            conn.stage, conn.since = "idle", time.monotonic()
        if conn.pending:
            self.want(conn, 0)
            self.ready.append(conn)
        else:
            self.want(conn, selectors.EVENT_READ)

    def finish(self, conn: _Conn) -> None:
        """The last answer is out: half-close, then read and drop what the client still sends for a while, so
        that unread request bytes do not make the kernel reset the connection before the client reads it."""
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            self.close(conn)
            return
        conn.stage, conn.since = "linger", time.monotonic()
        conn.pending.clear()
        self.want(conn, selectors.EVENT_READ)

    def close(self, conn: _Conn) -> None:
        fd = conn.sock.fileno()
        if fd >= 0:
            self.want(conn, 0)
            self.conns.pop(fd, None)
            try:
                conn.sock.close()
            except OSError:
                pass
        for req in ([conn.req] if conn.req is not None else []) + list(conn.pending):
            if req.body is not None:
                req.body.close()
        conn.pending.clear()
        self.resume_accepting()

    def shutdown(self) -> None:
        """Stop accepting; send what is queued (up to the graceful timeout); close every connection."""
        self.pause_accepting()
        deadline = time.monotonic() + max(float(self.cfg.graceful_timeout), 0.0)
        while any(c.out for c in self.conns.values()) and time.monotonic() < deadline:
            for key, mask in self.selector.select(0.1):
                if isinstance(key.data, _Conn) and mask & selectors.EVENT_WRITE:
                    self.send(key.data)
        for conn in list(self.conns.values()):
            self.close(conn)
        for listener in self.sockets:
            try:
                listener.close()
            except OSError:
                pass
