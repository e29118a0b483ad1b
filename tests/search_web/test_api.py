"""The JSON API through the app factory: search, similar, health, input errors and Elasticsearch down."""
from __future__ import annotations

import threading

import numpy as np
import pytest
import requests
from werkzeug.serving import make_server

from indexer.text.embedded import EmbeddedTextBackend
from indexer.vectors.faiss_store import VectorStore
from indexer.vectors.live import version_dir
from search_web.app import create_app
from tests.indexer.conftest import CORPUS


def test_search_returns_ranked_hits_marked_synthetic(client):
    response = client.get("/api/search?q=calcified+granuloma&k=5")
    assert response.status_code == 200
    body = response.get_json()
    assert body["total"] == 1 and body["backend"] == "embedded" and body["version"]
    hit = body["hits"][0]
    assert hit["image_id"] == "IMG-A" and hit["score"] > 0
    assert "report_annotation" in hit["matched_fields"] and hit["synthetic"] is True
    assert body["synthetic"] is True and "not clinical accuracy" in body["note"]


def test_search_filters_are_anded_across_fields(client):
    body = client.get("/api/search?q=&k=100&filter=view:lateral&filter=split=test").get_json()  # both forms
    assert [h["image_id"] for h in body["hits"]] == ["IMG-I"]
    assert body["filters"] == {"view": ["lateral"], "split": ["test"]} and body["facets"]["view"] == {"lateral": 1}
    body = client.get("/api/search?q=lungs&k=1").get_json()
    assert len(body["hits"]) == 1 and body["total"] > 1


@pytest.mark.parametrize("k", ["0", "101", "ten", "-3", "2.5"])
def test_bad_k_is_a_400_naming_the_value(client, k):
    response = client.get(f"/api/search?q=lung&k={k}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "BadRequest" and f"k={k!r}" in error["message"] and "1 to 100" in error["message"]


def test_bad_filters_are_400s(client):
    response = client.get("/api/search?q=lung&filter=colour:red")
    assert response.status_code == 400
    assert "unknown filter field 'colour'" in response.get_json()["error"]["message"]
    response = client.get("/api/search?q=lung&filter=view")
    assert response.status_code == 400 and "FIELD:VALUE" in response.get_json()["error"]["message"]


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/nope")
    assert response.status_code == 404 and response.get_json()["error"]["type"] == "NotFound"


def test_health_reports_the_embedded_index(client):
    response = client.get("/api/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok" and body["synthetic"] is True
    text = body["text_index"]
    assert text["available"] is True and text["documents"] == len(CORPUS) and text["error"] is None
    assert body["vectors"]["available"] is False and body["vectors"]["kinds"] == []


def test_no_index_is_404_and_health_degraded(tmp_path):
    client = create_app({"TESTING": True, "BACKEND": "embedded", "INDEX_DIR": str(tmp_path / "empty")}).test_client()
    response = client.get("/api/search?q=lung")
    assert response.status_code == 404
    assert "no text index" in response.get_json()["error"]["message"]
    body = client.get("/api/health").get_json()
    assert body["status"] == "degraded" and body["text_index"]["error"]["type"] == "IndexNotFound"


def test_elasticsearch_down_is_503_naming_the_url_and_the_app_stays_up(es_down_client, closed_es_url):
    response = es_down_client.get("/api/search?q=granuloma")
    assert response.status_code == 503
    error = response.get_json()["error"]
    assert error["type"] == "IndexUnavailable"
    assert closed_es_url in error["message"] and "the text index is unavailable" in error["message"]
    health = es_down_client.get("/api/health")
    assert health.status_code == 200
    body = health.get_json()
    assert body["status"] == "degraded" and body["text_index"]["available"] is False
    assert body["text_index"]["url"] == closed_es_url and closed_es_url in body["text_index"]["error"]["message"]
    assert es_down_client.get("/api/similar/IMG-A").status_code == 503
    assert es_down_client.get("/api/search?q=granuloma").status_code == 503  # still serving


def test_similar_without_vectors_is_a_clear_409(client):
    response = client.get("/api/similar/IMG-A")
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["type"] == "VectorStoreNotFound" and "cxrsearch reindex --checkpoint" in error["message"]
    response = client.get("/api/similar/IMG-A?kind=colour")
    assert response.status_code == 400 and "vector kind 'colour' is unknown" in response.get_json()["error"]["message"]


@pytest.fixture
def vector_client(index_dir, tmp_path):
    """An app over a copy of the index with a context-vector store of seeded random vectors (IMG-J left out)."""
    import shutil

    root = tmp_path / "index"
    shutil.copytree(index_dir, root)
    with EmbeddedTextBackend(root / "text") as backend:
        version = backend.live_version()
        ids = [i for i in CORPUS if i != "IMG-J"]
        vectors = np.random.default_rng(0).normal(size=(len(ids), 8)).astype("float32")
        store = VectorStore.build(ids, vectors, kind="context_vector", model_version="test-v1")
        store.save(version_dir(root, backend, version) / "context_vector")
    return create_app({"TESTING": True, "BACKEND": "embedded", "INDEX_DIR": str(root)}).test_client(), ids, vectors


def test_similar_returns_nearest_by_cosine(vector_client):
    client, ids, vectors = vector_client
    body = client.get("/api/similar/IMG-A?k=3").get_json()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit[1:] @ unit[0]
    expected = [ids[1 + i] for i in np.argsort(-cosine)[:3]]
    assert [h["image_id"] for h in body["hits"]] == expected
    assert body["query"]["image_id"] == "IMG-A" and body["model_version"] == "test-v1" and body["synthetic"] is True
    assert client.get("/api/health").get_json()["vectors"]["kinds"] == ["context"]
    response = client.get("/api/similar/IMG-J")
    assert response.status_code == 409 and "has no context_vector" in response.get_json()["error"]["message"]
    response = client.get("/api/similar/NO-SUCH-IMAGE")
    assert response.status_code == 404 and "unknown image id 'NO-SUCH-IMAGE'" in response.get_json()["error"]["message"]


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
        hits = search.json()["hits"]
        assert hits[0]["image_id"] == "IMG-H" and {h["view"] for h in hits} == {"frontal"}  # IMG-D: "No effusion."
        bad = requests.get(f"{base}/search", params={"q": "x", "k": "0"}, timeout=10)
        assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("application/json")
    finally:
        server.shutdown()
        thread.join(timeout=10)
    assert not thread.is_alive()


def test_serve_defaults_to_loopback_and_passes_only_given_options():
    from pipelines.cli.serve import config_from_args, parser

    args = parser().parse_args([])
    assert args.host == "127.0.0.1" and args.port == 8000 and config_from_args(args) == {}
    args = parser().parse_args(["--backend", "es", "--es-url", "http://es.local:9200"])
    assert config_from_args(args) == {"BACKEND": "es", "ES_URL": "http://es.local:9200"}
