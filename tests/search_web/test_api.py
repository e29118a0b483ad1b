"""The JSON API through the app factory: search, images, similar, concepts, health, stats; input errors; ES down."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import requests
from werkzeug.serving import make_server

from search_web import create_app
from tests.indexer.conftest import CORPUS


def test_search_returns_results_marked_synthetic(client):
    response = client.get("/api/search?q=calcified+granuloma&k=5")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] >= 1 and body["k"] == 5 and body["page"] == 1 and body["source"] == "all"
    assert {"query", "parsed", "results", "facets"} <= set(body)
    first = body["results"][0]
    assert first["image_id"] == "IMG-A" and first["links"]["page"] == "/images/IMG-A"
    assert "calcified granuloma" in first["report_annotation"]
    assert body["synthetic"] is True and "not clinical accuracy" in body["note"]


def test_search_filters_are_anded_across_fields(client):
    body = client.get("/api/search?q=&k=100&filter=view:lateral&filter=split=test").get_json()  # both forms
    assert [r["image_id"] for r in body["results"]] == ["IMG-I"]
    assert body["facets"]["view"] == {"lateral": 1}


def test_search_pages_do_not_overlap(client):
    one = client.get("/api/search?q=&k=3&page=1").get_json()
    two = client.get("/api/search?q=&k=3&page=2").get_json()
    ids1, ids2 = [r["image_id"] for r in one["results"]], [r["image_id"] for r in two["results"]]
    assert len(ids1) == 3 and len(ids2) == 3 and not set(ids1) & set(ids2)


@pytest.mark.parametrize("k", ["0", "101", "ten", "-3", "2.5"])
def test_bad_k_is_a_400_naming_the_value(client, k):
    response = client.get(f"/api/search?q=lung&k={k}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "BadRequest" and f"k={k!r}" in error["message"] and "1 to 100" in error["message"]


@pytest.mark.parametrize("args, says", [
    ("page=0", "page='0'"), ("page=x", "page='x'"), ("k=100&page=101", "past result 10000"),
    ("source=pixels", "source='pixels'"), ("filter=view", "FIELD:VALUE"), ("filter=colour:red", "colour"),
    ("filter=synthetic:True", "use true or false"), ("filter=synthetic:1", "use true or false"),
    ("filter=synthetic:yes", "use true or false"),
])
def test_bad_search_parameters_are_400s(client, args, says):
    response = client.get(f"/api/search?q=lung&{args}")
    assert response.status_code == 400, response.get_json()
    assert says in response.get_json()["error"]["message"]


def test_boolean_filter_accepts_exactly_true_and_false(client):
    assert client.get("/api/search?q=&filter=synthetic:true").get_json()["total"] == len(CORPUS)
    assert client.get("/api/search?q=&filter=synthetic:false").get_json()["total"] == 0


def test_filter_values_below_elasticsearch_term_limit(client):
    from indexer.query.service import MAX_FILTER_VALUE_BYTES

    assert MAX_FILTER_VALUE_BYTES < 32_766  # Lucene refuses keyword terms of 32,766 bytes and more
    ok = client.get("/api/search", query_string={"q": "lung", "filter": "view:" + "x" * MAX_FILTER_VALUE_BYTES})
    assert ok.status_code == 200 and ok.get_json()["total"] == 0
    for size in (MAX_FILTER_VALUE_BYTES + 1, 32_766, 40_000):
        bad = client.get("/api/search", query_string={"q": "lung", "filter": "view:" + "x" * size})
        assert bad.status_code == 400 and f"{size} bytes" in bad.get_json()["error"]["message"]
    multibyte = client.get("/api/search", query_string={"filter": "view:" + "é" * 16_383})  # 32,766 bytes
    assert multibyte.status_code == 400


def test_queries_of_1025_distinct_words_are_400s(client):
    words = [f"w{i}" for i in range(1025)]
    assert client.get("/api/search", query_string={"q": " ".join(words[:300])}).status_code == 200
    bad = client.get("/api/search", query_string={"q": " ".join(words)})
    assert bad.status_code == 400 and bad.get_json()["error"]["type"] == "InvalidQuery"
    assert "at most" in bad.get_json()["error"]["message"]


def test_image_detail_and_files_by_id(corpus_client, web_corpus):
    image_id = web_corpus.ids[0]
    body = corpus_client.get(f"/api/images/{image_id}").get_json()
    assert body["image_id"] == image_id and body["report"]["findings"] and body["generated_annotation"]
    assert body["label_probabilities"] and 0 <= body["label_probabilities"][0]["probability"] <= 1
    assert body["links"]["full"] == f"/api/images/{image_id}/full"
    thumb = corpus_client.get(body["links"]["thumbnail"])
    assert thumb.status_code == 200 and thumb.mimetype == "image/jpeg" and thumb.data[:3] == b"\xff\xd8\xff"
    again = corpus_client.get(body["links"]["thumbnail"], headers={"If-None-Match": thumb.headers["ETag"]})
    assert again.status_code == 304
    full = corpus_client.get(body["links"]["full"])
    assert full.status_code == 200 and full.data == (web_corpus.images / f"{image_id}.png").read_bytes()


@pytest.mark.parametrize("image_id, status", [
    ("NO-SUCH-IMAGE", 404), ("..%2F..%2Fetc%2Fpasswd", 404), ("..", 400), ("a" * 200, 400), ("x%00y", 400),
])
def test_files_are_served_by_indexed_id_only(corpus_client, image_id, status):
    for suffix in ("", "/thumbnail", "/full", "/similar"):
        response = corpus_client.get(f"/api/images/{image_id}{suffix}")
        assert response.status_code in (status, 404), (suffix, response.status_code)
        assert response.mimetype == "application/json" and "error" in response.get_json()


def test_an_image_file_outside_the_index_is_not_served(corpus_client, web_corpus):
    (web_corpus.images / "STRAY_IM-0000-0000.png").write_bytes((web_corpus.images / f"{web_corpus.ids[0]}.png")
                                                               .read_bytes())
    try:
        response = corpus_client.get("/api/images/STRAY_IM-0000-0000/full")
        assert response.status_code == 404 and "STRAY_IM-0000-0000" in response.get_json()["error"]["message"]
    finally:
        (web_corpus.images / "STRAY_IM-0000-0000.png").unlink()


def test_similar_by_id_is_cosine_nearest_of_the_live_store(corpus_client, corpus_app, web_corpus):
    from search_web.services import services

    image_id = web_corpus.ids[3]
    for kind in ("context", "embedding", "findings"):
        body = corpus_client.get(f"/api/images/{image_id}/similar?k=5&kind={kind}").get_json()
        with corpus_app.app_context():
            _, store = services().vectors.get(kind)
        ids = store.image_ids()
        vectors = store.get_vectors(ids)
        query = vectors[ids.index(image_id)].copy()
        if kind == "findings":     # asked with the remainder coordinate at 0 (indexer.vectors.base.findings_query)
            query[-1] = 0
        report = image_id.split("_")[0]  # the other views of the same examination are left out
        order = [ids[i] for i in np.argsort(-(vectors @ query)) if not ids[i].startswith(report + "_")][:5]
        assert [h["image_id"] for h in body["hits"]] == order
        assert body["model_version"] == store.model_version and body["kind"] in (kind, store.kind)
    default = corpus_client.get(f"/api/images/{image_id}/similar?k=5").get_json()
    assert default["kind"] == "findings" and default["view"] == "any"
    own_view = default["query"]["view"]
    for view, wanted in (("same", own_view), ("lateral", "lateral"), ("frontal", "frontal")):
        body = corpus_client.get(f"/api/images/{image_id}/similar?k=5&view={view}").get_json()
        assert body["view"] == view and len(body["hits"]) == 5 and {h["view"] for h in body["hits"]} == {wanted}
    assert {h["view"] for h in corpus_client.get(f"/api/images/{image_id}/similar?k=20").get_json()["hits"]} == {
        "frontal", "lateral"}                                   # without the filter both views come back
    bad_view = corpus_client.get(f"/api/images/{image_id}/similar?view=oblique")
    assert bad_view.status_code == 400 and "view='oblique'" in bad_view.get_json()["error"]["message"]
    bad = corpus_client.get(f"/api/images/{image_id}/similar?kind=colour")
    assert bad.status_code == 400 and "kind='colour'" in bad.get_json()["error"]["message"]


def test_similar_without_vectors_is_a_clear_409(client):
    response = client.get("/api/images/IMG-A/similar")
    assert response.status_code == 409
    assert "cxrsearch reindex --checkpoint" in response.get_json()["error"]["message"]


def test_concepts_autocomplete_ranks_by_use(corpus_client):
    body = corpus_client.get("/api/concepts?prefix=gran").get_json()
    texts = [s["text"] for s in body["suggestions"]]
    assert "calcified granuloma" in texts and all("gran" in t for t in texts)
    by_word = corpus_client.get("/api/concepts?prefix=upper+lo").get_json()["suggestions"]
    assert by_word[0]["text"] == "upper lobe" and by_word[0]["kind"] == "location" and by_word[0]["count"] > 0
    assert corpus_client.get("/api/concepts?prefix=zzzzqq").get_json()["suggestions"] == []
    assert corpus_client.get("/api/concepts?prefix=" + "a" * 101).status_code == 400
    assert corpus_client.get("/api/concepts?prefix=a&limit=0").status_code == 400


def test_health_and_stats(corpus_client, web_corpus):
    body = corpus_client.get("/api/health").get_json()
    assert body["status"] == "ok" and body["synthetic"] is True
    assert body["text_index"]["documents"] == len(web_corpus.ids)
    assert body["vectors"]["kinds"] == ["findings", "embedding", "context"] and body["vectors"]["error"] is None
    stats = corpus_client.get("/api/stats").get_json()
    assert stats["documents"] == len(web_corpus.ids) and stats["size_bytes"] > 0
    assert stats["vectors"]["context"]["count"] == stats["vectors"]["findings"]["count"] == len(web_corpus.ids)
    assert sum(stats["facets"]["view"].values()) == len(web_corpus.ids)


def test_no_index_is_404_and_health_degraded(tmp_path):
    app = create_app({"TESTING": True, "INDEX_DIR": str(tmp_path / "empty"), "DATA_DIR": str(tmp_path)})
    client = app.test_client()
    response = client.get("/api/search?q=lung")
    assert response.status_code == 404 and "no text index" in response.get_json()["error"]["message"]
    body = client.get("/api/health").get_json()
    assert body["status"] == "degraded" and body["text_index"]["error"]["type"] == "IndexNotFound"


def test_elasticsearch_down_is_503_with_retry_after_and_health_says_so(es_down_client, closed_es_url):
    response = es_down_client.get("/api/search?q=granuloma")
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    error = response.get_json()["error"]
    assert error["type"] == "IndexUnavailable" and closed_es_url in error["message"]
    health = es_down_client.get("/api/health")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "degraded" and body["text_index"]["available"] is False
    assert closed_es_url in body["text_index"]["error"]["message"]
    assert "unavailable" in body["text_index"]["error"]["message"]
    assert body["vectors"]["available"] is None and "missing" not in str(body["vectors"])  # says ES, not vectors
    assert es_down_client.get("/api/images/IMG-A/similar").status_code == 503
    page = es_down_client.get("/search?q=granuloma")
    assert page.status_code == 503 and b"Search is unavailable" in page.data and page.headers["Retry-After"]


def test_real_http_server_serves_health_and_search(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_port}/api"
        health = requests.get(f"{base}/health", timeout=10)
        assert health.status_code == 200 and health.json()["text_index"]["available"] is True
        search = requests.get(f"{base}/search", params={"q": "effusion", "filter": "view:frontal"}, timeout=10)
        assert search.status_code == 200
        results = search.json()["results"]
        assert results[0]["image_id"] == "IMG-H" and {r["view"] for r in results} == {"frontal"}
        bad = requests.get(f"{base}/search", params={"q": "x", "k": "0"}, timeout=10)
        assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("application/json")
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_query_elasticsearch_rejects_is_a_500_not_a_retryable_503():
    """An _msearch item refused with a 4xx (a query the server will never answer) is not 'restarting, retry':
    only a 5xx/429 item is (Retry-After would make clients retry forever)."""
    from indexer.text.elasticsearch import _answer_error
    from search_web.errors import classify

    refused = _answer_error("http://es:9200", "images", {"type": "search_phase_execution_exception",
                                                          "reason": "all shards failed"}, 400)
    assert classify(refused)[0] == 500
    down = _answer_error("http://es:9200", "images", {"type": "search_phase_execution_exception",
                                                       "reason": "all shards failed"}, 503)
    assert classify(down)[:2] == (503, "IndexUnavailable")


def test_a_repeated_search_is_served_from_the_answer_cache_with_its_links(index_dir, tmp_path):
    """Each worker keeps recent answers: an answer is kept the second time it is asked, so the third identical
    request is not ranked again, and what the view adds to an answer (links, the note) is added afresh every time;
    ANSWER_CACHE=0 switches it off."""
    app = create_app({"TESTING": True, "BACKEND": "embedded", "INDEX_DIR": str(index_dir), "DATA_DIR": str(tmp_path),
                      "UPLOAD_DIR": str(tmp_path / "uploads"), "ANSWER_CACHE": 8})
    client = app.test_client()
    first = client.get("/api/search?q=calcified+granuloma&k=3").get_json()
    second = client.get("/api/search?q=calcified+granuloma&k=3").get_json()
    again = client.get("/api/search?q=calcified+granuloma&k=3").get_json()
    assert (first["cached"], second["cached"], again["cached"]) == (False, False, True)
    assert again["results"] == first["results"] and all("links" in r for r in again["results"])
    assert again["note"] == first["note"]
    assert [client.get("/api/search?q=calcified+granuloma&k=3&page=2").get_json()["cached"]
            for _ in range(2)] == [False, False]
    held = client.get("/api/stats").get_json()["answer_cache"]
    assert held["entries"] == 2 and held["hits"] == 1 and held["misses"] == 4 and held["max_entries"] == 8
    assert held["second_miss"] is True
    off = create_app({"TESTING": True, "BACKEND": "embedded", "INDEX_DIR": str(index_dir), "DATA_DIR": str(tmp_path),
                      "UPLOAD_DIR": str(tmp_path / "uploads"), "ANSWER_CACHE": 0}).test_client()
    assert [off.get("/api/search?q=granuloma").get_json()["cached"] for _ in range(2)] == [False, False]
    assert off.get("/api/stats").get_json()["answer_cache"] is None


def test_an_index_built_before_the_findings_kind_says_to_reindex(web_corpus, tmp_path):
    """An index whose live version has no findings store (built by an older version): health names it, the
    default similar images answer a clear error, the other kinds still answer."""
    import shutil

    from search_web import create_app

    config = web_corpus.config(UPLOAD_DIR=str(tmp_path / "uploads"))
    index = tmp_path / "index"
    shutil.copytree(config["INDEX_DIR"], index)
    removed = [p for p in (index / "vectors").rglob("findings") if p.is_dir()]
    assert removed
    for path in removed:
        shutil.rmtree(path)
    client = create_app({**config, "INDEX_DIR": str(index)}).test_client()
    health = client.get("/api/health").get_json()
    assert health["vectors"]["kinds"] == ["embedding", "context"]
    assert "no findings vectors" in health["vectors"]["error"] and "cxrsearch reindex" in health["vectors"]["error"]
    image_id = web_corpus.ids[3]
    default = client.get(f"/api/images/{image_id}/similar")
    assert default.status_code in (404, 409) and "cxrsearch reindex" in default.get_json()["error"]["message"]
    assert client.get(f"/api/images/{image_id}/similar?kind=embedding").status_code == 200
