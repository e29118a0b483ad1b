"""The text-backend contract: every backend (embedded SQLite FTS5, real Elasticsearch) passes these tests."""
from __future__ import annotations

import socket
from collections import Counter

import pytest

from indexer.documents import keyword_values
from indexer.errors import DocumentNotFound, IndexerError, IndexNotFound, IndexUnavailable, InvalidQuery


def ids(result) -> set[str]:
    return {h.image_id for h in result.hits}


@pytest.fixture
def live(text_backend, documents):
    """The backend with the ten documents in a live version."""
    version = text_backend.create()
    written = text_backend.index(documents, version=version, batch_size=3)
    assert written.written == len(documents) and not written.failed
    text_backend.switch(version)
    return text_backend


# --- index and read back -----------------------------------------------------------------------------


def test_index_then_get_and_count(live, documents):
    assert live.count() == 10
    stored = live.get_many(["IMG-A", "IMG-E", "NOPE"])
    assert set(stored) == {"IMG-A", "IMG-E"}
    assert stored["IMG-A"] == documents[0]
    assert stored["IMG-E"]["generated_annotation"] == "opacity lung base right"
    assert live.size_bytes() > 0


def test_reindexing_a_document_replaces_it(live, documents):
    doc = dict(documents[2], report_findings="The heart is markedly enlarged.")
    assert live.index([doc]).written == 1
    assert live.count() == 10
    assert live.get("IMG-C")["report_findings"] == "The heart is markedly enlarged."
    assert ids(live.search("markedly")) == {"IMG-C"}


def test_invalid_document_is_reported_not_written(live, documents):
    bad = {"image_id": "IMG-X", "no_such_field": 1}
    result = live.index([bad, dict(documents[0], image_id="IMG-Y")])
    assert result.written == 1
    assert "IMG-X" in result.failed and "no_such_field" in result.failed["IMG-X"]
    assert live.count() == 11


# --- search ---------------------------------------------------------------------------------------


def test_search_ranks_the_matching_image_first_and_names_matched_fields(live):
    result = live.search("calcified granuloma", k=5)
    assert result.hits[0].image_id == "IMG-A"
    assert result.total == 1
    assert {"report_annotation", "report_findings"} <= set(result.hits[0].matched_fields)
    assert result.hits[0].matched_sources == ("report",)
    assert result.version == live.live_version()


def test_query_words_are_ored_and_scores_descend(live):
    result = live.search("granuloma cardiomegaly effusion", k=10)
    # IMG-D's findings say "No effusion.": a negated finding is not searchable text, so it does not match
    assert ids(result) == {"IMG-A", "IMG-C", "IMG-H"}
    scores = [h.score for h in result.hits]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0


def test_k_limits_hits_but_not_total(live):
    result = live.search("lung", k=2)
    assert len(result.hits) == 2
    assert result.total > 2


def test_stop_words_alone_match_nothing(live):
    result = live.search("the of and")
    assert result.total == 0 and result.hits == []


def test_generated_text_is_marked_as_generated(live):
    result = live.search("opacity")
    assert ids(result) == {"IMG-E"}
    hit = result.hits[0]
    assert "generated_annotation" in hit.matched_fields
    assert hit.matched_sources == ("generated",)
    assert hit.annotation == "opacity lung base right"


def test_empty_query_with_filter_returns_exactly_the_filtered_set(live, documents):
    result = live.search("", filters={"view": "lateral"}, k=10)
    assert ids(result) == {d["image_id"] for d in documents if d["view"] == "lateral"}
    assert result.total == 3
    assert all(h.score == 0 for h in result.hits)


def test_filters_and_across_fields_or_within_a_field(live):
    result = live.search("", filters={"view": "frontal", "laterality": ["left", "right"]}, k=10)
    assert ids(result) == {"IMG-A", "IMG-B", "IMG-E", "IMG-F", "IMG-H"}
    result = live.search("lobe", filters={"laterality": "left"})
    assert ids(result) == {"IMG-F"}


def test_filter_on_a_mesh_ancestor_finds_descendant_findings(live):
    result = live.search("", filters={"ancestors": "Lung Diseases"}, k=10)
    assert "IMG-B" in ids(result)  # pulmonary atelectasis is a lung disease
    assert "IMG-C" not in ids(result)  # cardiomegaly is not
    assert {"IMG-J", "IMG-F"} <= ids(result)


def test_boolean_filter(live):
    assert ids(live.search("", filters={"synthetic": True}, k=10)) == {"IMG-A", "IMG-B", "IMG-C"}
    assert live.search("", filters={"synthetic": "false"}, k=10).total == 7


def test_facets_count_the_whole_match_set(live, documents):
    result = live.search("lungs lung", k=1, facets=["view", "findings", "synthetic"])
    matched = [d for d in documents if d["image_id"] in ids(live.search("lungs lung", k=10))]
    assert result.total == len(matched) > 1
    for name in ("view", "findings", "synthetic"):
        expected = Counter(v for d in matched for v in keyword_values(d, name))
        assert result.facets[name] == dict(expected), name


def test_default_facets_are_returned(live):
    result = live.search("")
    assert result.facets["view"] == {"frontal": 7, "lateral": 3}
    assert result.facets["laterality"]["right"] == 3


def test_bad_requests_raise_invalid_query(live):
    with pytest.raises(InvalidQuery, match="unknown filter field 'colour'"):
        live.search("x", filters={"colour": "red"})
    with pytest.raises(InvalidQuery, match="unknown facet field"):
        live.search("x", facets=["colour"])
    with pytest.raises(InvalidQuery, match="k must be"):
        live.search("x", k=0)


# --- update and delete -----------------------------------------------------------------------------


def test_update_changes_what_is_found(live):
    live.update("IMG-D", {"report_impression": "Interval pneumothorax."})
    assert ids(live.search("pneumothorax")) == {"IMG-D"}
    assert live.get("IMG-D")["sections"]["findings"] == "The lungs are clear. No effusion."  # untouched
    assert live.count() == 10


def test_update_of_a_missing_document_raises(live):
    with pytest.raises(DocumentNotFound, match="NOPE"):
        live.update("NOPE", {"report_impression": "x"})


def test_delete(live):
    assert live.delete(["IMG-A", "NOPE"]) == 1
    assert live.count() == 9
    assert live.search("granuloma").total == 0
    assert live.get("IMG-A") is None


# --- versions and the alias -------------------------------------------------------------------------


def test_search_without_any_index_raises_index_not_found(text_backend):
    assert text_backend.live_version() is None
    with pytest.raises(IndexNotFound, match="reindex"):
        text_backend.search("granuloma")


def test_first_write_without_a_version_creates_a_live_one(text_backend, documents):
    text_backend.index(documents[:2])
    assert text_backend.live_version() is not None
    assert text_backend.count() == 2


def test_new_version_is_invisible_until_the_alias_switches(text_backend, documents):
    v1 = text_backend.create()
    text_backend.index(documents[:5], version=v1)
    assert text_backend.switch(v1) is None
    v2 = text_backend.create()
    text_backend.index(documents[5:], version=v2)

    assert text_backend.live_version() == v1
    assert ids(text_backend.search("", k=10)) == {d["image_id"] for d in documents[:5]}
    assert text_backend.count(version=v2) == 5
    assert sorted(text_backend.versions()) == sorted([v1, v2])  # the previous version is kept until the switch

    assert text_backend.switch(v2) == v1
    assert text_backend.live_version() == v2
    assert ids(text_backend.search("", k=10)) == {d["image_id"] for d in documents[5:]}
    assert text_backend.versions() == [v2]  # then dropped


def test_switch_can_keep_the_previous_version(text_backend, documents):
    v1 = text_backend.create("a1")
    text_backend.index(documents[:1], version=v1)
    text_backend.switch(v1)
    v2 = text_backend.create("a2")
    text_backend.switch(v2, keep_previous=True)
    assert text_backend.versions() == ["a1", "a2"]
    assert text_backend.count() == 0 and text_backend.count(version="a1") == 1
    with pytest.raises(IndexerError, match="live"):
        text_backend.drop("a2")
    text_backend.drop("a1")
    assert text_backend.versions() == ["a2"]


def test_bad_version_names_are_refused(text_backend):
    with pytest.raises(InvalidQuery, match="version name"):
        text_backend.create("Bad Name")
    text_backend.create("v1")
    with pytest.raises(IndexerError):
        text_backend.create("v1")


def test_build_parts_accumulate(text_backend):
    version = text_backend.create()
    assert set(text_backend.record_part(version, "1/2", {"indexed": 3})) == {"1/2"}
    parts = text_backend.record_part(version, "2/2", {"indexed": 4})
    assert parts == {"1/2": {"indexed": 3}, "2/2": {"indexed": 4}}
    assert len(text_backend.record_part(version, "2/2", {"indexed": 4})) == 2  # recording again is harmless


# --- Elasticsearch specifics ---------------------------------------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_elasticsearch_unreachable_names_the_url():
    from indexer.text.elasticsearch import ElasticsearchTextBackend, ESSettings

    url = f"http://127.0.0.1:{_closed_port()}"
    backend = ElasticsearchTextBackend(ESSettings(url=url, request_timeout=5))
    for call in (backend.check, lambda: backend.search("granuloma"), lambda: backend.index([{"image_id": "x"}])):
        with pytest.raises(IndexUnavailable, match=f"Elasticsearch at {url}"):
            call()


def test_elasticsearch_settings_from_environment():
    from indexer.text.elasticsearch import ESSettings

    s = ESSettings.from_env({"CXRSEARCH_ES_URL": "https://user:secret@es.example:9243", "CXRSEARCH_ES_API_KEY": "k",
                             "CXRSEARCH_ES_CA": "/etc/ca.pem", "CXRSEARCH_ES_INDEX": "cxr"}, index=None)
    assert (s.url, s.api_key, s.ca_certs, s.index) == ("https://user:secret@es.example:9243", "k", "/etc/ca.pem", "cxr")
    assert "secret" not in s.safe_url and "secret" not in repr(s) and "es.example:9243" in s.safe_url
    assert ESSettings.from_env({}, url="http://h:1").url == "http://h:1"
    s = ESSettings.from_env({"CXRSEARCH_ES_USER": "u", "CXRSEARCH_ES_PASSWORD": "p"})
    assert (s.user, s.password, s.url) == ("u", "p", "http://127.0.0.1:9200")


@pytest.mark.es
def test_elasticsearch_mapping_is_explicit_and_strict(es_backend):
    version = es_backend.create()
    name = es_backend.index_name(version)
    mapping = es_backend.client.indices.get_mapping(index=name)[name]["mappings"]
    assert mapping["dynamic"] == "strict"
    assert mapping["properties"]["report_findings"] == {"type": "text", "analyzer": "report_text"}
    assert mapping["properties"]["laterality"] == {"type": "keyword"}
    tokens = es_backend.client.indices.analyze(index=name, analyzer="report_text", text="The lungs are clear")
    assert [t["token"] for t in tokens["tokens"]] == ["lungs", "clear"]
