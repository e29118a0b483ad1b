"""The real Elasticsearch server started by `make test` answers the official Python client."""
from __future__ import annotations

import uuid

import pytest
from elasticsearch import Elasticsearch

pytestmark = pytest.mark.es


def test_client_indexes_and_searches_on_real_server(es_url):
    es = Elasticsearch(es_url, request_timeout=30)
    health = es.cluster.health(wait_for_status="yellow", timeout="30s")
    assert health["status"] in ("green", "yellow")
    index = f"cxrsearch-test-{uuid.uuid4().hex[:8]}"
    try:
        es.indices.create(index=index, mappings={"properties": {"annotation": {"type": "text"},
                                                                 "label": {"type": "keyword"}}})
        es.index(index=index, id="CXR1_1_IM-0001-3001",
                 document={"annotation": "calcified granuloma lung upper lobe right", "label": "calcified granuloma"})
        es.index(index=index, id="CXR2_IM-0652-1001",
                 document={"annotation": "cardiomegaly mild", "label": "cardiomegaly"})
        es.indices.refresh(index=index)
        hits = es.search(index=index, query={"match": {"annotation": "granuloma"}})["hits"]["hits"]
        assert [h["_id"] for h in hits] == ["CXR1_1_IM-0001-3001"]
        assert es.count(index=index)["count"] == 2
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)
