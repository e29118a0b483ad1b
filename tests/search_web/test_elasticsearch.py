"""The web app on a real Elasticsearch: the same 4xx as the embedded backend for the same bad request; 503 + Retry-After
while shards are unavailable (as during a restart)."""
from __future__ import annotations

import pytest

from indexer.documents import build_document
from indexer.vocabulary import Vocabulary
from search_web import create_app
from tests.indexer.conftest import CORPUS, make_inputs

pytestmark = pytest.mark.es

BAD_REQUESTS = [
    {"q": "lung", "filter": "synthetic:True"},
    {"q": "lung", "filter": "synthetic:1"},
    {"q": "lung", "filter": "view:" + "x" * 32_766},
    {"q": "lung", "filter": "view:" + "x" * 40_000},
    {"q": " ".join(f"w{i}" for i in range(1025))},
    {"q": "lung", "filter": "colour:red"},
    {"q": "lung", "k": "0"},
    {"q": "lung", "source": "pixels"},
]


@pytest.fixture
def es_backend(es_url, es_alias):
    from indexer.text.elasticsearch import ElasticsearchTextBackend, ESSettings

    backend = ElasticsearchTextBackend(ESSettings(url=es_url, index=es_alias))  # es_alias deletes its indices
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def es_client(es_backend, es_url, tmp_path):
    documents = [build_document(item, Vocabulary.load()) for item in make_inputs(synthetic_ids=tuple(CORPUS))]
    assert es_backend.index(documents).written == len(CORPUS)
    app = create_app({"TESTING": True, "BACKEND": "es", "ES_URL": es_url, "ES_INDEX": es_backend.settings.index,
                      "INDEX_DIR": str(tmp_path), "DATA_DIR": str(tmp_path)})
    return app.test_client()


def test_both_backends_search_alike(es_client, client):
    for args in ({"q": "calcified granuloma"}, {"q": "", "filter": ["view:lateral", "split:test"]},
                 {"q": "", "filter": "synthetic:true"}):
        es, embedded = es_client.get("/api/search", query_string=args), client.get("/api/search", query_string=args)
        assert es.status_code == embedded.status_code == 200
        assert es.get_json()["total"] == embedded.get_json()["total"]
        top_es = [r["image_id"] for r in es.get_json()["results"]][:1]
        assert top_es == [r["image_id"] for r in embedded.get_json()["results"]][:1]


@pytest.mark.parametrize("args", BAD_REQUESTS, ids=["synthetic-True", "synthetic-1", "filter-32766", "filter-40000",
                                                     "1025-words", "unknown-field", "k-0", "source"])
def test_the_same_bad_request_is_the_same_4xx_on_both_backends(es_client, client, args):
    es, embedded = es_client.get("/api/search", query_string=args), client.get("/api/search", query_string=args)
    assert es.status_code == embedded.status_code == 400, (es.get_json(), embedded.get_json())
    assert es.get_json()["error"]["type"] == embedded.get_json()["error"]["type"]


def test_unavailable_shards_are_503_with_retry_after(es_backend, es_url, tmp_path):
    """Shards that cannot be allocated answer 'all shards failed', as while Elasticsearch restarts."""
    from indexer.text.elasticsearch import index_mappings, index_settings

    name = es_backend.index_name("unassigned")
    es_backend.client.indices.create(index=name, mappings=index_mappings(), wait_for_active_shards="0", settings={
        **index_settings(es_backend.settings), "number_of_replicas": 0,
        "index.routing.allocation.require._name": "no-such-node"})
    es_backend.client.indices.update_aliases(actions=[{"add": {"index": name, "alias": es_backend.settings.index}}])
    client = create_app({"TESTING": True, "BACKEND": "es", "ES_URL": es_url, "ES_INDEX": es_backend.settings.index,
                         "INDEX_DIR": str(tmp_path), "DATA_DIR": str(tmp_path)}).test_client()
    response = client.get("/api/search?q=granuloma")
    assert response.status_code == 503 and response.headers["Retry-After"] == "2"
    assert "retry shortly" in response.get_json()["error"]["message"]
    page = client.get("/search?q=granuloma")
    assert page.status_code == 503 and page.headers["Retry-After"] == "2"
    health = client.get("/api/health").get_json()
    assert health["status"] == "degraded" and health["text_index"]["available"] is False


def test_answers_on_elasticsearch_are_never_cached(es_client):
    """Documents can change under an Elasticsearch alias without the app knowing: every answer is computed."""
    assert [es_client.get("/api/search?q=granuloma").get_json()["cached"] for _ in range(2)] == [False, False]
    assert es_client.get("/api/stats").get_json()["answer_cache"] is None
