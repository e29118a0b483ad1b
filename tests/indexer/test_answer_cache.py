"""The answer cache: bounded, isolated copies, and only ever an answer of the index state it was computed on."""
from __future__ import annotations

import pytest

from indexer.documents import build_document
from indexer.query import AnswerCache, QueryService, SearchRequest
from indexer.text.embedded import EmbeddedTextBackend
from tests.indexer.conftest import make_inputs


def test_least_recently_used_answers_go_first_and_both_bounds_hold():
    cache = AnswerCache(max_entries=2, second_miss=False)
    cache.put("a", {"n": 1})
    cache.put("b", {"n": 2})
    assert cache.get("a") == {"n": 1}          # a is now the most recently used
    cache.put("c", {"n": 3})                   # so b goes
    assert cache.get("b") is None and cache.get("a") == {"n": 1} and cache.get("c") == {"n": 3}
    assert cache.stats() | {"bytes": 0} == {"entries": 2, "bytes": 0, "max_entries": 2, "hits": 3, "misses": 1,
                                            "second_miss": False}
    small = AnswerCache(max_entries=10, max_bytes=40, second_miss=False)
    small.put("x", {"text": "a" * 20})
    small.put("y", {"text": "b" * 20})         # two of ~31 bytes exceed 40: x is evicted
    assert small.get("x") is None and small.get("y") is not None and small.stats()["bytes"] <= 40
    small.put("z", {"text": "c" * 100})        # larger than the whole cache: not kept
    assert small.get("z") is None
    off = AnswerCache(max_entries=0)
    off.put("a", {"n": 1})
    assert not off.enabled and off.get("a") is None and len(off) == 0
    with pytest.raises(ValueError):
        AnswerCache(max_entries=-1)


def test_answers_with_numbers_for_keys_or_numpy_values_are_kept_and_others_served_uncached():
    import numpy as np

    cache = AnswerCache(second_miss=False)
    cache.put("ints", {"counts": {3: np.int64(2)}, "score": np.float32(0.5)})  # the slower encoding's case
    assert cache.get("ints") == {"counts": {"3": 2}, "score": 0.5}
    cache.put("object", {"x": object()})                                     # JSON cannot hold it
    assert cache.get("object") is None and len(cache) == 1


def test_a_caller_changing_its_answer_cannot_change_the_next_callers():
    cache = AnswerCache(second_miss=False)
    cache.put("k", {"results": [{"image_id": "A"}]})
    first = cache.get("k")
    first["results"][0]["links"] = {"page": "/images/A"}
    first["results"].append({"image_id": "B"})
    assert cache.get("k") == {"results": [{"image_id": "A"}]}


def test_an_answer_is_kept_the_second_time_its_request_misses():
    cache = AnswerCache(max_entries=3)
    assert cache.get("a") is None
    cache.put("a", {"n": 1})                   # asked once: neither encoded nor kept
    assert len(cache) == 0 and cache.get("a") is None
    cache.put("a", {"n": 1})                   # the second miss: kept
    assert cache.get("a") == {"n": 1} and cache.stats()["hits"] == 1
    assert cache.stats()["second_miss"] is True
    cache.put("b", {"n": 2})                   # never looked up: not kept
    assert len(cache) == 1
    assert cache.get("old") is None            # a miss remembered ...
    for key in ("c", "d", "e"):                # ... until as many other keys as the cache holds missed since
        assert cache.get(key) is None
    assert cache.get("old") is None
    cache.put("old", {"n": 3})
    assert len(cache) == 1 and cache.get("old") is None
    cache.put("old", {"n": 3})                 # now it missed twice in the window
    assert cache.get("old") == {"n": 3} and len(cache._missed) <= cache.max_entries


@pytest.fixture
def backend(tmp_path, vocabulary):
    backend = EmbeddedTextBackend(tmp_path / "index" / "text")
    backend.index([build_document(i, vocabulary) for i in make_inputs()])
    yield backend
    backend.close()


def _without_timing(body: dict) -> dict:
    return {k: v for k, v in body.items() if k not in ("took_ms", "cached")}


def test_a_repeated_search_is_answered_from_the_cache_with_the_same_answer(backend):
    service = QueryService(backend, cache=AnswerCache(16))
    request = SearchRequest("calcified granuloma right upper lobe", k=5, filters={"view": ["frontal"]})
    first = service.search(request)
    second = service.search(request)  # an answer is kept the second time it is asked
    again = service.search(SearchRequest("calcified granuloma right upper lobe", k=5, filters={"view": "frontal"}))
    assert (first["cached"], second["cached"], again["cached"]) == (False, False, True)
    assert _without_timing(again) == _without_timing(first)
    assert again["results"] and again["total"] == first["total"]
    # any other field of the request is another answer
    for other in (SearchRequest("calcified granuloma right upper lobe", k=4, filters={"view": ["frontal"]}),
                  SearchRequest("calcified granuloma right upper lobe", k=5, source="report",
                                filters={"view": ["frontal"]}),
                  SearchRequest("calcified granuloma right upper lobe", k=5),
                  SearchRequest("calcified granuloma right upper lobe", k=5, filters={"view": ["frontal"]},
                                negation=False)):
        assert [service.search(other)["cached"] for _ in range(2)] == [False, False]
    assert service.cache.stats()["hits"] == 1


def test_bad_requests_are_refused_even_when_a_similar_answer_is_cached(backend):
    service = QueryService(backend, cache=AnswerCache(16))
    service.search(SearchRequest("granuloma", k=5))
    from indexer.errors import InvalidQuery

    with pytest.raises(InvalidQuery):
        service.search(SearchRequest("granuloma", k=0))
    with pytest.raises(InvalidQuery):
        service.search(SearchRequest("granuloma", k=5, filters={"synthetic": ["True"]}))


def test_any_write_to_the_index_makes_older_answers_unreachable(backend):
    service = QueryService(backend, cache=AnswerCache(16))
    request = SearchRequest("granuloma", k=10)
    before = service.search(request)
    assert [service.search(request)["cached"] for _ in range(2)] == [False, True]
    hit = before["results"][0]["image_id"]
    backend.delete([hit])
    after = service.search(request)
    assert after["cached"] is False and hit not in [r["image_id"] for r in after["results"]]
    assert after["total"] == before["total"] - 1
    assert [service.search(request)["cached"] for _ in range(2)] == [False, True]
    other = next(i.image_id for i in make_inputs() if i.image_id != hit)
    backend.update(other, {"split": "test"})
    assert service.search(request)["cached"] is False


def test_a_write_by_another_connection_makes_older_answers_unreachable(backend, vocabulary):
    """As a reindex job in another process writes: this backend's state token (kept between writes of its own
    connection) must change, and so must what the search answers."""
    service = QueryService(backend, cache=AnswerCache(16))
    request = SearchRequest("granuloma", k=10)
    before = service.search(request)
    token = backend.state_token()
    assert [service.search(request)["cached"] for _ in range(2)] == [False, True] and backend.state_token() == token
    writer = EmbeddedTextBackend(backend.root)
    try:
        writer.delete([before["results"][0]["image_id"]])
        assert backend.state_token() != token
        after = service.search(request)
        assert after["cached"] is False and after["total"] == before["total"] - 1
        token = backend.state_token()
        writer.index([build_document(make_inputs()[0], vocabulary)])  # a re-write of one document: same count
        assert backend.state_token() != token
        assert service.search(request)["cached"] is False
    finally:
        writer.close()


def test_the_catalogue_is_counted_again_only_after_a_write(backend, vocabulary, monkeypatch):
    """The state token's row count grows with the index (about 1 ms at 97,000 documents, and a search asks for
    the state three times): it is counted again only when SQLite says the catalogue changed."""
    from indexer.text import embedded

    counted = []
    real = embedded._stamp
    monkeypatch.setattr(embedded, "_stamp", lambda conn: counted.append(1) or real(conn))
    service = QueryService(backend, cache=AnswerCache(16))
    texts = ("cardiomegaly", "granuloma", "opacity right", "no such finding")
    for text in texts:  # a version's first searches also ask SQL questions that write a temp table (a change:
        service.search(SearchRequest(text, k=5))       # counted again, once)
    token = backend.state_token()
    counted.clear()
    for text in texts:
        assert service.search(SearchRequest(text, k=4))["cached"] is False
    assert backend.state_token() == token and counted == []
    backend.update(make_inputs()[1].image_id, {"split": "test"})            # this connection writes
    assert backend.state_token() != token and len(counted) == 1
    token = backend.state_token()
    writer = EmbeddedTextBackend(backend.root)
    try:
        writer.index([build_document(make_inputs()[0], vocabulary)])      # another connection writes
    finally:
        writer.close()
    assert backend.state_token() != token and len(counted) == 2
    assert backend.state_token() == backend.state_token() and len(counted) == 2


def test_a_backend_that_cannot_name_its_state_is_never_cached(backend):
    class Stateless(EmbeddedTextBackend):   # as the Elasticsearch backend: state_token() is None
        def state_token(self, version=None):
            return None

    stateless = Stateless(backend.root)
    service = QueryService(stateless, cache=AnswerCache(16))
    assert [service.search(SearchRequest("granuloma"))["cached"] for _ in range(3)] == [False, False, False]
    assert service.cache.stats()["entries"] == 0
    stateless.close()


def test_without_a_cache_every_answer_is_computed(backend):
    service = QueryService(backend)
    assert [service.search(SearchRequest("granuloma"))["cached"] for _ in range(2)] == [False, False]


def test_a_new_search_reads_the_index_state_once(backend, monkeypatch):
    """The cache key's state token is the state the search ranks on: the live version (a stat) and the write
    counter (a SQLite pragma) are read once per new search, not again by the ranking."""
    service = QueryService(backend, cache=AnswerCache(16))
    service.search(SearchRequest("opacity right", k=5))       # builds the ranker, keeps the page's documents
    reads = {"live": 0, "stamp": 0}
    live, stamp = backend.live_version, backend._current_stamp
    monkeypatch.setattr(backend, "live_version", lambda: reads.__setitem__("live", reads["live"] + 1) or live())
    monkeypatch.setattr(backend, "_current_stamp",
                        lambda v: reads.__setitem__("stamp", reads["stamp"] + 1) or stamp(v))
    body = service.search(SearchRequest("opacity right", k=4))  # another answer, on documents already read
    assert body["cached"] is False and body["results"] and reads == {"live": 1, "stamp": 1}
