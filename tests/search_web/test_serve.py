"""`cxrsearch serve`: a production server (gunicorn, waitress) on loopback; long URLs, Host and slow clients handled."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests

from pipelines.cli.serve import config_from_args, gunicorn_options, parser, pick_server


def test_defaults_loopback_and_only_given_options():
    args = parser().parse_args([])
    assert args.host == "127.0.0.1" and args.port == 8000 and config_from_args(args) == {}
    assert args.workers >= 1 and args.threads >= 1 and args.timeout == 30 and not args.debug
    args = parser().parse_args(["--backend", "es", "--es-url", "http://es.local:9200", "--checkpoint", "none"])
    assert config_from_args(args) == {"BACKEND": "es", "ES_URL": "http://es.local:9200", "CHECKPOINT": "none"}
    assert config_from_args(parser().parse_args(["--answer-cache", "0"])) == {"ANSWER_CACHE": 0}


def test_gunicorn_settings():
    options = gunicorn_options(parser().parse_args(["--workers", "3", "--threads", "2", "--timeout", "9"]))
    assert options["bind"] == "127.0.0.1:8000" and options["workers"] == 3 and options["threads"] == 2
    assert options["worker_class"] == "gthread" and options["timeout"] == 9
    assert options["limit_request_line"] == 0  # the app answers long URLs itself (JSON 414)
    assert gunicorn_options(parser().parse_args(["--host", "::1"]))["bind"] == "[::1]:8000"
    assert pick_server("waitress") == "waitress" and pick_server("auto") in ("gunicorn", "waitress")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["gunicorn", "waitress"])
def served(request, web_corpus, tmp_path):
    port = free_port()
    env = {**os.environ, "CXRSEARCH_DATA": str(web_corpus.root), "CXRSEARCH_UPLOAD_DIR": str(tmp_path / "u")}
    cmd = [sys.executable, "-c", "import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))",
           "serve", "--server", request.param, "--port", str(port),
           "--images-dir", str(web_corpus.images), "--checkpoint", str(web_corpus.checkpoint), "--workers", "2",
           "--threads", "2", "--timeout", "20"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.3)
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read())
        yield request.param, base, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its workers: their own process group
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_production_server_answers_and_survives_slow_clients(served, web_corpus):
    server, base, proc = served
    health = requests.get(base + "/api/health", timeout=10)
    assert health.status_code == 200 and health.json()["text_index"]["documents"] == len(web_corpus.ids)
    long = requests.get(base + "/api/search", params={"q": "a" * 70_000}, timeout=10)
    assert long.status_code == 414 and long.json()["error"]["type"] == "RequestURITooLarge"
    big_filter = requests.get(base + "/api/search", params={"filter": "view:" + "x" * 32_766}, timeout=10)
    assert big_filter.status_code == 400 and "32766 bytes" in big_filter.json()["error"]["message"]
    evil = requests.get(base + "/admin/", headers={"Host": "evil.example"}, timeout=10, allow_redirects=False)
    assert "evil.example" not in evil.text and "evil.example" not in evil.headers.get("Location", "")
    # half-open connections (a request line, then silence) must not hold the server's threads for ever
    from pipelines.cli.serve import READ_TIMEOUT_S

    port = int(base.rsplit(":", 1)[1])
    sockets = []
    try:
        for _ in range(4):  # as many as the two gunicorn workers have threads
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")
            sockets.append(s)
        start = time.monotonic()
        response = requests.get(base + "/api/search?q=granuloma&k=3", timeout=2 * READ_TIMEOUT_S + 15)
        assert response.status_code == 200 and time.monotonic() - start < 2 * READ_TIMEOUT_S + 10
        if server == "gunicorn":  # each stalled read is cut after READ_TIMEOUT_S and its connection closed
            for s in sockets:
                s.settimeout(READ_TIMEOUT_S + 10)
                assert s.recv(1024) == b""
        else:  # waitress reads requests in its event loop: threads only ever see whole requests
            assert time.monotonic() - start < 5
    finally:
        for s in sockets:
            s.close()
    metrics = requests.get(base + "/metrics", timeout=10).text
    assert 'cxrsearch_http_requests_total{endpoint="/api/search",method="GET",status="200"}' in metrics


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
