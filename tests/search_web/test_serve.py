"""`cxrsearch serve`: a production server (gunicorn, waitress, granian) on loopback; long URLs, Host and slow clients
handled."""
from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from pipelines.cli.serve import config_from_args, granian_options, gunicorn_options, parser, pick_server


def test_defaults_loopback_and_only_given_options():
    args = parser().parse_args([])
    assert args.host == "127.0.0.1" and args.port == 8000 and config_from_args(args) == {}
    assert args.workers >= 1 and args.timeout == 30 and not args.debug
    assert args.threads is None or "CXRSEARCH_THREADS" in os.environ  # else chosen by server and backend:
    args = parser().parse_args(["--backend", "es", "--es-url", "http://es.local:9200", "--checkpoint", "none"])
    assert config_from_args(args) == {"BACKEND": "es", "ES_URL": "http://es.local:9200", "CHECKPOINT": "none"}
    assert config_from_args(parser().parse_args(["--answer-cache", "0"])) == {"ANSWER_CACHE": 0}


def test_threads_by_default_fit_the_server_and_backend(monkeypatch):
    from pipelines.cli.serve import default_threads

    monkeypatch.delenv("CXRSEARCH_BACKEND", raising=False)
    assert default_threads("gunicorn", None) == 1 and default_threads("gunicorn", "embedded") == 1  # the loop
    assert default_threads("gunicorn", "es") == 4  # searches wait on Elasticsearch: threads overlap them
    assert default_threads("waitress", None) == 4 and default_threads("granian", "embedded") == 4
    monkeypatch.setenv("CXRSEARCH_BACKEND", "es")
    assert default_threads("gunicorn", None) == 4


def test_gunicorn_settings():
    options = gunicorn_options(parser().parse_args(["--workers", "3", "--threads", "2", "--timeout", "9"]))
    assert options["bind"] == "127.0.0.1:8000" and options["workers"] == 3 and options["threads"] == 2
    assert options["worker_class"] == "gthread" and options["timeout"] == 9
    assert options["limit_request_line"] == 0  # the app answers long URLs itself (JSON 414)
    loop = gunicorn_options(parser().parse_args(["--threads", "1"]))
    assert loop["worker_class"] == "loop" and loop["sendfile"] is False  # pipelines.cli.loop_worker
    assert gunicorn_options(parser().parse_args(["--host", "::1"]))["bind"] == "[::1]:8000"
    assert pick_server("waitress") == "waitress" and pick_server("auto") in ("gunicorn", "waitress")


def test_granian_settings():
    from pipelines.cli.serve import READ_TIMEOUT_S

    options = granian_options(parser().parse_args(["--workers", "3", "--threads", "2", "--host", "::1"]))
    assert options["target"] == "search_web.wsgi:app" and options["address"] == "::1" and options["port"] == 8000
    assert options["workers"] == 3 and options["blocking_threads"] == 2 and options["respawn_failed_workers"]
    assert options["http1_settings"].header_read_timeout == READ_TIMEOUT_S * 1000
    assert pick_server("granian") == "granian"  # only by choice: never what "auto" picks


def test_the_wsgi_module_reads_the_config_serve_leaves(monkeypatch):
    from search_web.config import SERVE_CONFIG_VARIABLE as CONFIG_VARIABLE
    from search_web.config import serve_config_from_environment as config_from_environment

    monkeypatch.delenv(CONFIG_VARIABLE, raising=False)
    assert config_from_environment() == {}
    monkeypatch.setenv(CONFIG_VARIABLE, '{"BACKEND": "embedded", "ANSWER_CACHE": 0}')
    assert config_from_environment() == {"BACKEND": "embedded", "ANSWER_CACHE": 0}
    monkeypatch.setenv(CONFIG_VARIABLE, "[1]")
    with pytest.raises(ValueError, match="JSON object"):
        config_from_environment()


def test_the_request_deadline_ends_the_worker_only_when_a_request_overruns():
    from search_web.deadline import RequestDeadline

    now, exits, seen = [100.0], [], []

    def app(environ, start_response):
        seen.append(deadline.overdue())
        now[0] += environ["took"]
        seen.append(deadline.check())
        return [b"ok"]

    deadline = RequestDeadline(app, 30, exit=exits.append, clock=lambda: now[0], watch=False)
    assert deadline({"PATH_INFO": "/api/search", "took": 29.0}, None) == [b"ok"]
    assert seen == [[], False] and exits == [] and deadline.overdue() == []  # finished requests are forgotten
    deadline({"PATH_INFO": "/api/search", "took": 31.0}, None)
    assert seen[-1] is True and exits == [1]
    with pytest.raises(ValueError, match="positive"):
        RequestDeadline(app, 0)


def test_granian_needs_a_timeout_longer_than_its_crash_loop_window():
    from pipelines.cli.serve import check_args

    check_args(parser().parse_args(["--server", "granian", "--timeout", "10"]))
    check_args(parser().parse_args(["--server", "gunicorn", "--timeout", "3"]))
    with pytest.raises(SystemExit, match="needs --timeout 10 or more"):
        check_args(parser().parse_args(["--server", "granian", "--timeout", "3"]))


def test_under_granian_a_request_past_the_deadline_ends_its_worker_and_another_serves(tmp_path):
    """A real granian server (1 worker) over an app wrapped as serve wraps the web app: the slow request loses its
    connection once the deadline passes, the worker is replaced, and the server answers again."""
    port = free_port()
    env = {**os.environ, "CXRSEARCH_TEST_DEADLINE": "2", "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "granian", "--interface", "wsgi", "--workers", "1",
                             "--blocking-threads", "2", "--respawn-failed-workers", "--port", str(port),
                             "tests.search_web.slow_wsgi:app"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        def pid_answering(deadline_s: float) -> str:
            deadline = time.monotonic() + deadline_s
            while time.monotonic() < deadline:
                try:
                    return requests.get(base + "/", timeout=2).text
                except requests.RequestException:
                    time.sleep(0.2)
            raise AssertionError("granian did not answer")

        first = pid_answering(30)
        start = time.monotonic()
        with pytest.raises(requests.RequestException):
            requests.get(base + "/slow", timeout=30)  # its worker ends after ~2 s: no answer
        assert time.monotonic() - start < 15
        second = pid_answering(30)
        assert second != first  # another worker process
    finally:
        stop_server(proc)
    log = proc.stdout.read()
    assert "over the 2 s request timeout: ending worker " + first in log


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(web_corpus, tmp_path, server: str, workers: int, threads: int | None, answer_cache: int | None = 0):
    """`cxrsearch serve` on a free loopback port; returns (process, base URL) once /api/health answers.
    threads / answer_cache None: serve's defaults."""
    port = free_port()
    env = {**os.environ, "CXRSEARCH_DATA": str(web_corpus.root), "CXRSEARCH_UPLOAD_DIR": str(tmp_path / "u")}
    cmd = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))",
           "serve", "--server", server, "--port", str(port),
           "--images-dir", str(web_corpus.images), "--checkpoint", str(web_corpus.checkpoint), "--workers",
           str(workers), "--timeout", "20"]
    cmd += ["--threads", str(threads)] if threads is not None else []
    cmd += ["--answer-cache", str(answer_cache)] if answer_cache is not None else []
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/api/health", timeout=2).status_code == 200:
                    return proc, base
            except requests.RequestException:
                time.sleep(0.3)
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read())
        raise AssertionError("the server did not answer /api/health within 60 s")
    except BaseException:
        stop_server(proc)
        raise


def stop_server(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: their own process group
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture(params=[("gunicorn", 1), ("gunicorn", 2), ("waitress", 2), ("granian", 2)],
                ids=["gunicorn-loop", "gunicorn-gthread", "waitress", "granian"])
def served(request, web_corpus, tmp_path):
    server, threads = request.param  # gunicorn with 1 thread: the event-loop worker (pipelines.cli.loop_worker)
    proc, base = start_server(web_corpus, tmp_path, server, workers=2, threads=threads)
    try:
        yield server, base, proc
    finally:
        stop_server(proc)


def test_production_server_answers_and_survives_slow_clients(served, web_corpus):
    server, base, proc = served
    health = requests.get(base + "/api/health", timeout=10)
    assert health.status_code == 200 and health.json()["text_index"]["documents"] == len(web_corpus.ids)
    # an option given on the command line reaches every worker's app (--answer-cache 0: nothing is cached)
    assert [requests.get(base + "/api/search?q=nodule", timeout=10).json()["cached"] for _ in range(4)] == [False] * 4
    long = requests.get(base + "/api/search", params={"q": "a" * 64_000 + "b" * 1_400}, timeout=10)
    assert long.status_code == 414 and long.json()["error"]["type"] == "RequestURITooLarge"
    longer = requests.get(base + "/api/search", params={"q": "a" * 70_000}, timeout=10)
    assert longer.status_code == 414  # granian answers a target of 65,534 bytes or more itself, with no body
    if server != "granian":
        assert longer.json()["error"]["type"] == "RequestURITooLarge"
    big_filter = requests.get(base + "/api/search", params={"filter": "view:" + "x" * 32_766}, timeout=10)
    assert big_filter.status_code == 400 and "32766 bytes" in big_filter.json()["error"]["message"]
    evil = requests.get(base + "/admin/", headers={"Host": "evil.example"}, timeout=10, allow_redirects=False)
    assert "evil.example" not in evil.text and "evil.example" not in evil.headers.get("Location", "")
    upload = web_corpus.images / f"{web_corpus.ids[0]}.png"  # a whole upload at once is read as before
    with open(upload, "rb") as f:
        similar = requests.post(base + "/api/similar", files={"image": ("x.png", f, "image/png")}, timeout=60)
    assert similar.status_code == 200 and similar.json()["hits"], similar.text
    # half-open connections (a request line, then silence) and connections that send their head a byte a second
    # must not hold the server's threads for ever
    from pipelines.cli.serve import READ_TIMEOUT_S

    port = int(base.rsplit(":", 1)[1])
    sockets, stop, dripped = [], threading.Event(), {}

    def drip(s: socket.socket) -> None:  # until the server closes the connection (or the test ends)
        for byte in b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            try:
                s.sendall(bytes([byte]))
                if select.select([s], [], [], 1.0)[0] and s.recv(1024) == b"":
                    dripped[s] = time.monotonic()
                    return
            except OSError:
                dripped[s] = time.monotonic()
                return
            if stop.is_set():
                return

    drips = []
    try:
        for _ in range(4):  # as many as the two gunicorn workers have threads
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            sockets.append(s)
        start = time.monotonic()
        for _ in range(4):  # as many again
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            drips.append(threading.Thread(target=drip, args=(s,), daemon=True))
            sockets.append(s)
            drips[-1].start()
        # gunicorn's threads read heads: waves of slow clients, each cut after READ_TIMEOUT_S, at most four when
        # one worker took all eight (before the head's deadline the drips held every thread for as long as they
        # kept sending: no answer at all)
        response = requests.get(base + "/api/search?q=granuloma&k=3", timeout=4 * READ_TIMEOUT_S + 20)
        assert response.status_code == 200 and time.monotonic() - start < 4 * READ_TIMEOUT_S + 15
        if server in ("gunicorn", "granian"):  # each stalled read is cut after READ_TIMEOUT_S, its connection closed
            for s in sockets[:4]:
                s.settimeout(READ_TIMEOUT_S + 10)
                assert s.recv(1024) == b""
            for thread in drips:  # and so is each head not sent whole within READ_TIMEOUT_S
                thread.join(timeout=4 * READ_TIMEOUT_S + 20)
            assert len(dripped) == 4 and max(dripped.values()) - start < 4 * READ_TIMEOUT_S + 15
            if server == "granian":  # granian reads requests in Rust: no thread waited on the stalled ones
                assert time.monotonic() - start < READ_TIMEOUT_S + 10
        else:  # waitress reads requests in its event loop: threads only ever see whole requests
            assert time.monotonic() - start < 5
    finally:
        stop.set()
        for s in sockets:
            s.close()
    if server == "gunicorn":  # its threads read bodies for the app: one sent a byte at a time gets a 408
        answers: dict[int, bytes] = {}

        def slow_upload(i: int) -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"POST /api/similar HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                          b"Content-Type: multipart/form-data; boundary=XX\r\n\r\n")
                got, part = b"", b'--XX\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
                for byte in part + b"a" * 100:
                    try:
                        s.sendall(bytes([byte]))
                        if select.select([s], [], [], 1.0)[0]:
                            got += s.recv(4096)
                    except OSError:
                        break
                    if b"\r\n\r\n" in got or stop.is_set():
                        break
                s.settimeout(READ_TIMEOUT_S + 5)
                try:  # then the connection closes, with no second answer
                    while chunk := s.recv(4096):
                        got += chunk
                except OSError:
                    got += b"<no close>"
                answers[i] = got

        stop.clear()
        uploads = [threading.Thread(target=slow_upload, args=(i,), daemon=True) for i in range(4)]
        start = time.monotonic()
        try:
            for thread in uploads:
                thread.start()
            time.sleep(2)
            response = requests.get(base + "/api/search?q=granuloma&k=3", timeout=3 * READ_TIMEOUT_S + 20)
            assert response.status_code == 200 and time.monotonic() - start < 3 * READ_TIMEOUT_S + 15
            for thread in uploads:
                thread.join(timeout=3 * READ_TIMEOUT_S + 20)
            assert [answers.get(i, b"")[:12] for i in range(4)] == [b"HTTP/1.1 408"] * 4, answers
            assert all(a.count(b"HTTP/1.1 ") == 1 and not a.endswith(b"<no close>") for a in answers.values())
            assert time.monotonic() - start < 3 * READ_TIMEOUT_S + 15
        finally:
            stop.set()
    metrics = requests.get(base + "/metrics", timeout=10).text
    assert 'cxrsearch_http_requests_total{endpoint="/api/search",method="GET",status="200"}' in metrics


def test_a_warmed_up_worker_keeps_what_it_loaded_out_of_the_cyclic_collector(web_corpus, tmp_path):
    """warm_up freezes what the worker loaded (gc.freeze): full collections no longer walk the index."""
    import gc

    from search_web import create_app
    from search_web.app import warm_up

    gc.unfreeze()
    try:
        app = warm_up(create_app(web_corpus.config(UPLOAD_DIR=str(tmp_path / "u"))))
        index = app.extensions["cxrsearch"].text().memory_index()
        assert gc.get_freeze_count() > 0 and not any(o is index for o in gc.get_objects())
    finally:
        gc.unfreeze()


def test_a_server_worker_runs_each_faiss_search_on_one_thread(web_corpus, tmp_path):
    """warm_up (what gunicorn and waitress workers run) sets FAISS's OpenMP threads to FAISS_THREADS (default 1):
    the workers' request threads are the parallelism, and a thread per core per search made them fight."""
    import faiss

    from search_web import create_app
    from search_web.app import warm_up
    from search_web.errors import ConfigError

    before = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(2)
        warm_up(create_app(web_corpus.config(UPLOAD_DIR=str(tmp_path / "u"))))
        assert faiss.omp_get_max_threads() == 1
        warm_up(create_app(web_corpus.config(UPLOAD_DIR=str(tmp_path / "u"), FAISS_THREADS=3)))
        assert faiss.omp_get_max_threads() == 3
        with pytest.raises(ConfigError, match="FAISS_THREADS=0"):
            create_app(web_corpus.config(FAISS_THREADS=0))
    finally:
        faiss.omp_set_num_threads(before)


def test_the_keep_alive_fast_path_waits_briefly_for_the_next_request():
    """next_request_sent: bytes read ahead or sent by the client -> answer on this thread; silence -> give the
    connection back to gunicorn's poller after KEEPALIVE_LINGER_S."""
    import io
    from types import SimpleNamespace

    from pipelines.cli.serve import KEEPALIVE_LINGER_S, next_request_sent

    ours, client = socket.socketpair()
    with ours, client:
        conn = SimpleNamespace(sock=ours, parser=SimpleNamespace(unreader=SimpleNamespace(buf=io.BytesIO())))
        start = time.monotonic()
        assert not next_request_sent(conn) and time.monotonic() - start >= KEEPALIVE_LINGER_S * 0.9
        conn.parser.unreader.buf.write(b"GET / HTTP/1.1\r\n")
        assert next_request_sent(conn)            # read ahead with the last request: nothing to wait for
        conn.parser.unreader.buf = io.BytesIO()
        client.sendall(b"GET /api/health HTTP/1.1\r\n")
        assert next_request_sent(conn)
        ours.recv(100)
        client.close()                            # a closing client: answered (and closed) on this thread too
        assert next_request_sent(conn)
        assert not next_request_sent(SimpleNamespace(sock=ours, parser=SimpleNamespace()))  # HTTP/2: stock path


def test_the_counting_pool_knows_how_many_jobs_wait_for_a_thread():
    import threading

    from pipelines.cli.serve import CountingPool

    release = threading.Event()
    with CountingPool(max_workers=1) as pool:
        first = pool.submit(release.wait, 10)
        deadline = time.monotonic() + 5
        while pool.waiting and time.monotonic() < deadline:  # the first job reaches the only thread
            time.sleep(0.01)
        rest = [pool.submit(lambda x: x * 2, i) for i in range(2)]
        assert pool.waiting == 2
        release.set()
        assert first.result(timeout=5) and [f.result(timeout=5) for f in rest] == [0, 2] and pool.waiting == 0


def read_response(sock_file) -> tuple[int, bytes]:
    """One HTTP/1.1 response (status, body) from a socket's file, by its Content-Length."""
    status = int(sock_file.readline().split()[1])
    length = 0
    while (line := sock_file.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    return status, sock_file.read(length)


@pytest.mark.parametrize("threads", [1, 2], ids=["loop", "gthread"])
def test_kept_alive_clients_are_answered_in_turn_and_pipelined_requests_in_order(web_corpus, tmp_path, threads):
    """One worker: clients sending request after request on one connection (as many as the worker has threads;
    gthread's fast path answers them on that thread, the event loop one each in turn) must not starve another
    client; two requests sent in one packet are both answered, in order."""
    import threading

    proc, base = start_server(web_corpus, tmp_path, "gunicorn", workers=1, threads=threads)
    try:
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s, s.makefile("rb") as f:
            s.sendall(b"GET /api/search?q=granuloma&k=1 HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /api/nothing HTTP/1.1\r\nHost: x\r\n\r\n")
            first, second = read_response(f), read_response(f)
            assert first[0] == 200 and b'"results"' in first[1]
            assert second[0] == 404 and b'"NotFound"' in second[1]

        # each busy client pipelines 3,000 requests on one connection: there is always a next one to answer
        total, answered, threads_ = 3000, [0] * threads, []
        busy = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(threads)]
        try:
            for i, sock in enumerate(busy):
                f = sock.makefile("rb")
                threads_.append(threading.Thread(
                    target=sock.sendall, args=(b"GET /api/nothing HTTP/1.1\r\nHost: x\r\n\r\n" * total,)))

                def read_all(f=f, i=i):
                    for _ in range(total):
                        assert read_response(f)[0] == 404
                        answered[i] += 1

                threads_.append(threading.Thread(target=read_all))
            for thread in threads_:
                thread.start()
            while min(answered) < 50 and all(t.is_alive() for t in threads_[1::2]):
                time.sleep(0.005)
            assert requests.get(base + "/api/health", timeout=30).status_code == 200
            assert max(answered) < total, "the other client waited until a busy one was done"
            for thread in threads_:
                thread.join(timeout=90)
            assert answered == [total] * threads
        finally:
            for sock in busy:
                sock.close()
    finally:
        stop_server(proc)
