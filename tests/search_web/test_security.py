"""Edges: security headers, no Host reflection, JSON errors for 404/405/413/414 and errors before a view,
CSRF, admin token."""
from __future__ import annotations

import io

import pytest

from search_web import create_app
from search_web.errors import ConfigError
from tests.search_web.conftest import ADMIN_TOKEN


@pytest.mark.parametrize("path", ["/", "/search?q=lung", "/api/search?q=lung", "/api/nope", "/nope", "/metrics"])
def test_security_headers_on_every_answer(client, path):
    response = client.get(path)
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert "script-src 'self'" in headers["Content-Security-Policy"] and "unsafe-inline" not in headers[
        "Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff" and headers["X-Frame-Options"] == "DENY"
    assert headers["Referrer-Policy"] == "same-origin"
    for name in ("Content-Security-Policy", "X-Content-Type-Options", "X-Frame-Options", "Referrer-Policy"):
        assert len(headers.getlist(name)) == 1, name  # added once, never twice
    if response.mimetype == "text/html":
        assert headers.getlist("Cache-Control") == ["no-store"]


def test_a_view_keeps_its_own_headers_and_api_calls_get_no_session_cookie(corpus_client, web_corpus):
    thumb = corpus_client.get(f"/api/images/{web_corpus.ids[0]}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers.getlist("Cache-Control") == ["private, max-age=3600"]
    assert "Set-Cookie" not in corpus_client.get("/api/search?q=granuloma").headers
    page = corpus_client.get("/")  # the upload form's CSRF token opens a session
    assert "Set-Cookie" in page.headers and "HttpOnly" in page.headers["Set-Cookie"]


def test_pages_have_no_inline_script_or_style(client):
    html = client.get("/search?q=granuloma").get_data(as_text=True)
    assert "<script>" not in html and "style=" not in html and " on" + "click=" not in html


@pytest.mark.parametrize("path", ["/admin", "/admin/", "/api/search/", "//api//health", "/images/IMG-A/",
                                  "/search?q=x", "/admin/login"])
def test_the_host_header_is_never_reflected(client, path):
    for method in ("GET", "POST"):
        response = client.open(path, method=method, headers={"Host": "evil.example"})
        assert b"evil.example" not in response.data
        assert "evil.example" not in response.headers.get("Location", "")


def test_trusted_hosts_refuse_other_hosts(index_dir, tmp_path):
    app = create_app({"TESTING": True, "INDEX_DIR": str(index_dir), "DATA_DIR": str(tmp_path),
                      "TRUSTED_HOSTS": "search.example, localhost"})
    client = app.test_client()
    assert client.get("/api/health", headers={"Host": "search.example"}).status_code == 200
    bad = client.get("/api/health", headers={"Host": "evil.example"})
    assert bad.status_code == 400 and bad.get_json()["error"]["type"] in ("SecurityError", "BadRequest")


def test_json_errors_everywhere_under_api(client):
    not_found = client.get("/api/images/IMG-A/nothing")
    assert not_found.status_code == 404 and not_found.get_json()["error"]["type"] == "NotFound"
    wrong_method = client.delete("/api/search")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"]["type"] == "MethodNotAllowed"
    assert "GET" in wrong_method.headers["Allow"]
    too_long = client.get("/api/search?q=" + "a" * 70_000)
    assert too_long.status_code == 414 and "65000 bytes" in too_long.get_json()["error"]["message"]
    html_too_long = client.get("/search?q=" + "a" * 70_000)
    assert html_too_long.status_code == 414 and html_too_long.mimetype == "text/html"
    big = client.post("/api/similar", data={"image": (io.BytesIO(b"\x89PNG" + b"0" * (33 * 1024 * 1024)), "a.png")},
                      content_type="multipart/form-data")
    assert big.status_code == 413 and big.get_json()["error"]["type"] == "RequestEntityTooLarge"
    bad_json_accept = client.get("/api/search?k=0", headers={"Accept": "text/html"})
    assert bad_json_accept.mimetype == "application/json"


def test_an_error_before_the_view_is_json(client, app):
    @app.before_request
    def explode():
        from flask import request

        if request.args.get("explode"):
            raise RuntimeError("secret detail /etc/shadow")

    response = client.get("/api/health?explode=1")
    assert response.status_code == 500 and response.get_json()["error"]["type"] == "RuntimeError"
    assert "/etc/shadow" not in response.get_data(as_text=True)  # internal details stay in the log
    page = client.get("/?explode=1")
    assert page.status_code == 500 and page.mimetype == "text/html"


def test_html_errors_outside_the_api(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and response.mimetype == "text/html" and b"Back to search" in response.data


def test_state_changing_forms_need_the_csrf_token(corpus_client, web_corpus):
    png = (web_corpus.images / f"{web_corpus.ids[0]}.png").read_bytes()
    response = corpus_client.post("/search/image", data={"image": (io.BytesIO(png), "x.png")},
                                  content_type="multipart/form-data")
    assert response.status_code == 403 and b"CSRF" in response.data
    for path in ("/admin/login", "/admin/reindex", "/admin/logout"):
        assert corpus_client.post(path, data={"token": ADMIN_TOKEN}).status_code == 403


def test_admin_token_compared_in_constant_time_and_required(corpus_client, monkeypatch):
    import hmac

    from search_web import security

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(security.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    assert corpus_client.post("/api/reindex").status_code == 401
    wrong = corpus_client.post("/api/reindex", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status_code == 401 and wrong.get_json()["error"]["type"] == "Unauthorized"
    assert calls and all(len(a) == len(b) == 32 for a, b in calls)  # digests: the length does not leak


def test_admin_is_off_without_a_token(client):
    assert client.post("/api/reindex", headers={"Authorization": "Bearer anything-anything"}).status_code == 403
    assert client.get("/admin").status_code == 403


def test_bad_settings_are_named(index_dir):
    with pytest.raises(ConfigError, match="ADMIN_TOKEN is too short"):
        create_app({"INDEX_DIR": str(index_dir), "ADMIN_TOKEN": "short"})
    with pytest.raises(ConfigError, match="MAX_UPLOAD_BYTES='lots'"):
        create_app({"INDEX_DIR": str(index_dir), "MAX_UPLOAD_BYTES": "lots"})
    with pytest.raises(ConfigError, match="BACKEND='solr'"):
        create_app({"INDEX_DIR": str(index_dir), "BACKEND": "solr"})
    for bad in (-1, "many", True):
        with pytest.raises(ConfigError, match="ANSWER_CACHE="):
            create_app({"INDEX_DIR": str(index_dir), "ANSWER_CACHE": bad})
