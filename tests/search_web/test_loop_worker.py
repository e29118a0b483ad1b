"""The event-loop gunicorn worker (pipelines.cli.loop_worker) under a real gunicorn, over raw sockets: framing,
keep-alive, pipelining in turn, chunked and 100-continue bodies, limits, the app's failures. Slow clients
(408, closed heads) are in test_serve.py, against the whole app."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.search_web.test_serve import free_port, stop_server


def start(*options: str) -> tuple[int, subprocess.Popen]:
    """gunicorn with the event-loop worker and the test app on a free loopback port, once it accepts."""
    port = free_port()
    cmd = [sys.executable, "-m", "gunicorn", "--worker-class", "pipelines.cli.loop_worker.LoopWorker",
           "--bind", f"127.0.0.1:{port}", "--workers", "1", *options, "tests.search_web.loop_wsgi:app"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError as e:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()) from e
            time.sleep(0.2)
    return port, proc


@pytest.fixture(scope="module")
def server():
    port, proc = start("--keep-alive", "5", "--limit-request-fields", "20", "--limit-request-field_size", "1000",
                       "--forwarded-allow-ips", "127.0.0.1")
    try:
        yield port, proc
    finally:
        stop_server(proc)


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


class Reader:
    """Reads HTTP/1.1 answers off a socket, one at a time."""

    def __init__(self, sock: socket.socket):
        self.sock, self.buf = sock, b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buf += data
        return bool(data)

    def answer(self, for_head: bool = False) -> tuple[int, dict[str, str], bytes]:
        """The next answer: status, headers (lower-case names), body (none for a HEAD request's answer)."""
        while b"\r\n\r\n" not in self.buf:
            if not self._more():
                raise EOFError(f"closed after {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"{name} twice in {head!r}"
            headers[name.lower()] = value.strip()
        if status == 100 or for_head:
            return status, headers, b""
        length = int(headers.get("content-length", 0))
        while len(self.buf) < length:
            if not self._more():
                raise EOFError("closed mid-body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed(self) -> bool:
        """The server closed the connection (after what was read)."""
        try:
            return not self._more() and not self.buf
        except ConnectionResetError:
            return True


def get(path: str, extra: str = "", version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: x\r\n{extra}\r\n".encode()


def test_keep_alive_and_http_1_0(server):
    port, _ = server
    with connect(port) as s:
        reader = Reader(s)
        for i in range(3):  # one connection, three requests
            s.sendall(get(f"/echo?i={i}"))
            status, headers, body = reader.answer()
            assert status == 200 and json.loads(body)["query"] == f"i={i}" and "connection" not in headers
            assert headers["content-length"] == str(len(body)) and headers["date"].endswith("GMT")
    with connect(port) as s:  # HTTP/1.0: closed after the answer unless asked to keep it
        reader = Reader(s)
        s.sendall(get("/a", version="1.0"))
        status, headers, body = reader.answer()
        assert status == 200 and headers["connection"] == "close" and reader.closed()
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(get("/a", "Connection: keep-alive\r\n", version="1.0"))
        assert reader.answer()[1]["connection"] == "keep-alive"
        s.sendall(get("/b", "Connection: close\r\n"))
        status, headers, body = reader.answer()
        assert json.loads(body)["path"] == "/b" and headers["connection"] == "close" and reader.closed()


def test_pipelined_requests_are_answered_in_order_and_others_in_turn(server):
    port, _ = server
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(b"".join(get(f"/echo?n={i}") for i in range(5)))
        assert [json.loads(reader.answer()[2])["query"] for _ in range(5)] == [f"n={i}" for i in range(5)]
    # one client pipelines 400 requests of 5 ms each (2 s of work); another is answered long before they are done
    done = {}
    with connect(port) as busy, connect(port) as other:
        busy.sendall(get("/work?0.005") * 400)
        time.sleep(0.2)
        started = time.monotonic()
        other.sendall(get("/echo?other"))
        assert json.loads(Reader(other).answer()[2])["query"] == "other"
        done["other"] = time.monotonic() - started
        busy_reader = Reader(busy)
        for _ in range(400):
            assert busy_reader.answer()[0] == 200
        done["busy"] = time.monotonic() - started
    assert done["other"] < 0.5 < done["busy"], done


def test_bodies_by_length_chunked_and_after_100_continue(server):
    port, _ = server
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello")
        time.sleep(0.2)  # the rest later: nothing reaches the app before all of it came
        s.sendall(b" world")
        echo = json.loads(reader.answer()[2])
        assert echo["body_bytes"] == 11 and echo["body_head"] == "hello world" and echo["content_type"] == "text/plain"
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
        time.sleep(0.2)
        s.sendall(b"6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        echo = json.loads(reader.answer()[2])
        assert echo["body_bytes"] == 11 and echo["body_head"] == "hello world"
        body = b"z" * 300_000  # past nothing but the socket's buffers: it comes in pieces
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        assert reader.answer()[0] == 100  # before the body: the client waits for it
        s.sendall(body)
        assert json.loads(reader.answer()[2])["body_bytes"] == len(body)
        s.sendall(get("/after"))  # the connection still serves
        assert json.loads(reader.answer()[2])["path"] == "/after"


def test_a_body_over_the_apps_limit_is_refused_from_the_head(server):
    port, _ = server
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5000000\r\n\r\n")
        status, headers, body = reader.answer()  # no 100 Continue, no body read: the app's 413 at once
        assert status == 413 and headers["connection"] == "close" and reader.closed()
    with connect(port) as s:  # chunked: cut once past the limit
        reader = Reader(s)
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(30):
                s.sendall(b"10000\r\n" + b"a" * 0x10000 + b"\r\n")
        except OSError:
            pass  # closed under us once answered
        assert reader.answer()[0] == 413


def test_bad_requests_get_json_errors_and_close(server):
    port, _ = server
    for request, status in [(b"GET / HTTP/1.1\r\nBad Header: 1\r\n\r\n", 400),
                            (b"GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
                            (b"NOT HTTP AT ALL\r\n\r\n", 400),
                            (get("/", "".join(f"X-F{i}: {i}\r\n" for i in range(25))), 431),
                            (get("/", "X-Big: " + "b" * 2000 + "\r\n"), 431)]:
        with connect(port) as s:
            reader = Reader(s)
            s.sendall(request)
            got, headers, body = reader.answer()
            assert got == status and headers["content-type"] == "application/json", request
            assert set(json.loads(body)["error"]) == {"type", "message"} and reader.closed()


def test_a_request_line_over_a_mebibyte_reaches_the_app_cut(server):
    port, _ = server
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(b"GET /echo?q=" + b"a" * (1_100_000) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = reader.answer()
        assert status == 200 and json.loads(body)["raw_uri_bytes"] == 1024 * 1024 and headers["connection"] == "close"


def test_a_head_that_never_ends_closes_its_connection(server):
    port, proc = server
    with connect(port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nX-Endless: ")
        sent = 0
        try:
            while sent < 64 * 1024 * 1024:  # one header field, far past MAX_HEAD_BYTES (8 MiB) and the buffers
                s.sendall(b"v" * 65536)
                sent += 65536
        except OSError:
            pass  # closed under us
        reader = Reader(s)
        assert reader.closed() and sent < 64 * 1024 * 1024
    with connect(port) as s:
        s.sendall(get("/next"))
        assert json.loads(Reader(s).answer()[2])["path"] == "/next" and proc.poll() is None


def test_answers_big_streamed_empty_head_and_failed(server):
    port, _ = server
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(get("/big"))
        time.sleep(0.5)  # a client that reads late still gets all of it
        status, headers, body = reader.answer()
        assert status == 200 and len(body) == 5_000_000
        s.sendall(get("/stream"))
        status, headers, body = reader.answer()
        assert body == b"one two three" and headers["content-length"] == "13"
        s.sendall(get("/no-content"))
        status, headers, body = reader.answer()
        assert status == 204 and "content-length" not in headers and body == b""
        s.sendall(get("/bad-header"))  # a header that would split the answer: 500, never sent
        status, headers, body = reader.answer()
        assert status == 500 and "set-cookie" not in headers and reader.closed()
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(get("/fail"))
        status, headers, body = reader.answer()
        assert status == 500 and json.loads(body)["error"]["type"] == "InternalServerError" and reader.closed()


def test_head_sends_the_length_but_no_body(server):
    port, _ = server
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(b"HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n" + get("/echo?next"))
        status, headers, body = reader.answer(for_head=True)
        assert status == 200 and headers["content-length"] == "5000000"
        assert json.loads(reader.answer()[2])["query"] == "next"  # the next answer follows at once


def test_headers_reach_the_app_as_gunicorn_passes_them(server):
    port, _ = server
    with connect(port) as s:
        reader = Reader(s)
        s.sendall(get("/h", "X-Forwarded-Proto: https\r\nX_Sneaky: 1\r\nAccept: a\r\nAccept: b\r\n"
                            "Cookie: a=1\r\nCookie: b=2\r\n"))
        echo = json.loads(reader.answer()[2])
        assert echo["scheme"] == "https"  # from a trusted proxy address (127.0.0.1)
        assert "HTTP_X_SNEAKY" not in echo["headers"]  # underscores could pose as dashes: dropped
        assert echo["headers"]["HTTP_ACCEPT"] == "a,b" and echo["headers"]["HTTP_COOKIE"] == "a=1; b=2"
        s.sendall(b"GET http://example.org/abs/path?x=1 HTTP/1.1\r\nHost: example.org\r\n\r\n")
        echo = json.loads(reader.answer()[2])
        assert echo["path"] == "/abs/path" and echo["query"] == "x=1"
        s.sendall(get("/with%20space%2Fslash"))
        assert json.loads(reader.answer()[2])["path"] == "/with space/slash"


def test_a_client_gone_mid_request_leaves_the_worker_serving(server):
    port, proc = server
    for request in [b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc", b"GET /ec"]:
        s = connect(port)
        s.sendall(request)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # reset on close
        s.close()
    with connect(port) as s:
        s.sendall(get("/still"))
        assert json.loads(Reader(s).answer()[2])["path"] == "/still"
    assert proc.poll() is None


def test_many_connections_at_once_are_all_answered(server):
    port, _ = server
    answers = []

    def client(i: int) -> None:
        with connect(port) as s:
            reader = Reader(s)
            for j in range(5):
                s.sendall(get(f"/echo?c={i}&j={j}"))
                answers.append(json.loads(reader.answer()[2])["query"])

    threads = [threading.Thread(target=client, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(answers) == sorted(f"c={i}&j={j}" for i in range(40) for j in range(5))


def test_an_idle_worker_lives_and_one_stuck_in_a_request_past_the_timeout_is_replaced():
    port, proc = start("--timeout", "2")
    try:
        def pid() -> int:
            with connect(port) as s:
                s.sendall(get("/pid"))
                return json.loads(Reader(s).answer()[2])["pid"]

        first = pid()
        time.sleep(3.5)  # idle past the timeout: the loop's heartbeat keeps it
        assert pid() == first
        with connect(port) as s:  # a request of 6 s: the heartbeat stops, gunicorn replaces the worker
            s.settimeout(30)
            s.sendall(get("/work?6"))
            assert Reader(s).closed()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                assert pid() != first
                break
            except OSError:
                time.sleep(0.3)
        else:
            raise AssertionError("no new worker answered")
    finally:
        stop_server(proc)
