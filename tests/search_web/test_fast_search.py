"""GET /api/search answered by search_web.fast_search: the same status, headers and body as Flask's view, and every
request it should not answer (or cannot) passed to Flask."""
from __future__ import annotations

import json

import pytest

from search_web import create_app
from search_web.fast_search import FastSearch

# plain searches, odd but valid parameters, and bad ones (which Flask must answer)
TARGETS = [
    "/api/search?q=calcified+granuloma&k=5",
    "/api/search?q=calcified%20granuloma%20right%20upper%20lobe&k=3&page=2",
    "/api/search?q=no+pleural+effusion&source=report",
    "/api/search?q=opacity&source=generated&filter=view:frontal&filter=split=test",
    "/api/search?q=&k=100&filter=view:lateral",
    "/api/search",
    "/api/search?q=%C3%A9panchement+pleural",        # UTF-8
    "/api/search?q=%E9t%E9&k=2",                     # not UTF-8: kept percent-encoded, as werkzeug does
    "/api/search?q=granuloma&q=nodule",               # the first q, as request.args.get
    "/api/search?q=<script>alert(1)</script>",
    "/api/search?q=granuloma&k=0",                    # 400
    "/api/search?q=granuloma&k=ten",                  # 400
    "/api/search?q=granuloma&page=0",                 # 400
    "/api/search?q=granuloma&source=pixels",          # 400
    "/api/search?q=granuloma&filter=synthetic:True",  # 400 from the query service
    "/api/search?q=granuloma&filter=nosuchfield:x",   # 400
    "/api/search?q=" + "x" * 70_000,                  # 414
]


def _apps(index_dir, tmp_path, **config):
    made = []
    for fast in (True, False):
        made.append(create_app({"TESTING": True, "BACKEND": "embedded", "INDEX_DIR": str(index_dir),
                                "DATA_DIR": str(tmp_path), "UPLOAD_DIR": str(tmp_path / "uploads"),
                                "FAST_SEARCH": fast, **config}))
    return made


def _seen(response) -> tuple:
    """Status, headers and body, less what differs between two computations of one answer (its time, so its
    length: checked against the body instead)."""
    body = response.get_json()
    if isinstance(body, dict):
        body.pop("took_ms", None)
    headers = dict(response.headers)
    assert int(headers.pop("Content-Length", len(response.data))) == len(response.data)
    return response.status_code, sorted(headers.items()), body


@pytest.mark.parametrize("target", TARGETS)
def test_both_paths_give_the_same_answer(index_dir, tmp_path, target):
    fast_app, flask_app = _apps(index_dir, tmp_path)
    assert isinstance(fast_app.wsgi_app, FastSearch) and not isinstance(flask_app.wsgi_app, FastSearch)
    fast, flask = fast_app.test_client(), flask_app.test_client()
    for _ in range(3):  # asked three times: computed, computed and kept, then from the answer cache
        assert _seen(fast.get(target)) == _seen(flask.get(target))
    ok = flask.get(target).status_code == 200
    assert fast_app.wsgi_app.answered == (3 if ok else 0)  # answered here exactly when the answer is a 200


def test_the_fast_answer_is_what_the_api_promises(index_dir, tmp_path):
    fast_app, _ = _apps(index_dir, tmp_path)
    response = fast_app.test_client().get("/api/search?q=calcified+granuloma&k=5")
    assert fast_app.wsgi_app.answered == 1 and response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert int(response.headers["Content-Length"]) == len(response.data) and response.data.endswith(b"\n")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = json.loads(response.data)
    assert body["results"][0]["links"]["page"] == "/images/IMG-A" and body["synthetic"] is True


def test_requests_it_should_not_answer_go_to_flask(index_dir, tmp_path):
    fast_app, flask_app = _apps(index_dir, tmp_path)
    fast, flask = fast_app.test_client(), flask_app.test_client()
    assert fast.head("/api/search?q=granuloma").status_code == 200
    assert _seen(fast.post("/api/search?q=granuloma")) == _seen(flask.post("/api/search?q=granuloma"))  # 405
    assert fast.get("/api/search/").status_code == flask.get("/api/search/").status_code
    mounted = fast.get("/api/search?q=granuloma", environ_overrides={"SCRIPT_NAME": "/cxr"})
    assert mounted.status_code == 200 and mounted.get_json()["results"][0]["links"]["page"] == "/cxr/images/IMG-A"
    with_cookie = fast.get("/api/search?q=nodule", headers={"Cookie": "session=garbage"})
    assert _seen(with_cookie) == _seen(flask.get("/api/search?q=nodule", headers={"Cookie": "session=garbage"}))
    assert fast_app.wsgi_app.answered == 1  # only the request with the cookie
    fast_app.debug = True
    assert fast.get("/api/search?q=granuloma").status_code == 200 and fast_app.wsgi_app.answered == 1


def test_a_host_that_trusted_hosts_refuses_is_answered_by_flask(index_dir, tmp_path):
    fast_app, _ = _apps(index_dir, tmp_path, TRUSTED_HOSTS="cxr.example.org")
    client = fast_app.test_client()
    refused = client.get("/api/search?q=granuloma", headers={"Host": "evil.example.com"})
    assert refused.status_code == 400 and fast_app.wsgi_app.answered == 0
    ok = client.get("/api/search?q=granuloma", headers={"Host": "cxr.example.org"})
    assert ok.status_code == 200 and fast_app.wsgi_app.answered == 1


def test_the_elasticsearch_backend_is_left_to_flask(index_dir, tmp_path):
    fast_app, _ = _apps(index_dir, tmp_path)
    from search_web.services import EXTENSION

    fast_app.extensions[EXTENSION].backend_name = "es"  # as if: its searches wait on a cluster
    assert fast_app.test_client().get("/api/search?q=granuloma").status_code == 200
    assert fast_app.wsgi_app.answered == 0


def test_fast_answers_are_counted_in_the_metrics(index_dir, tmp_path):
    fast_app, _ = _apps(index_dir, tmp_path)
    client = fast_app.test_client()

    def searches() -> float:
        text = client.get("/metrics").get_data(as_text=True)
        line = next((x for x in text.splitlines() if x.startswith("cxrsearch_http_requests_total{")
                     and 'endpoint="/api/search"' in x and 'status="200"' in x), None)
        return float(line.rsplit(" ", 1)[1]) if line else 0.0

    before = searches()
    for q in ("granuloma", "nodule", "opacity"):
        client.get(f"/api/search?q={q}")
    assert fast_app.wsgi_app.answered == 3 and searches() == before + 3


def test_fast_search_can_be_switched_off(index_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("CXRSEARCH_FAST_SEARCH", "false")
    app = create_app({"TESTING": True, "BACKEND": "embedded", "INDEX_DIR": str(index_dir), "DATA_DIR": str(tmp_path)})
    assert app.config["FAST_SEARCH"] is False and not isinstance(app.wsgi_app, FastSearch)
