"""The ranking contract of the query service, held by both text backends (embedded, real Elasticsearch).

A small corpus with reports (positive and negated findings) and cascade output (hard annotations and
concept probabilities) is indexed in each backend; the same queries must give the same rankings,
totals and facets, and the semantics a radiologist expects.
"""
from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import pytest

from indexer.documents import DocumentInput, GeneratedAnnotation, build_document, keyword_values
from indexer.query import QueryService, SearchRequest
from indexer.records import MeshTerm, Report
from indexer.text.embedded import EmbeddedTextBackend

# image id -> (MeSH major terms, FINDINGS text, split, view)
REPORTS = {
    "R-ARUL": (["Calcified Granuloma/lung/upper lobe/right"], "Calcified granuloma in the right upper lobe.",
               "test", "frontal"),
    "R-FLUL": (["Nodule/lung/upper lobe/left"], "A small nodule in the left upper lobe.", "test", "frontal"),
    "R-EFFR": (["Pleural Effusion/right/small"], "Small right pleural effusion.", "test", "frontal"),
    "R-EFFB": (["Pleural Effusion/bilateral"], "Bilateral pleural effusions.", "test", "lateral"),
    "R-NOEF": (["normal"], "The lungs are clear. No pleural effusion or pneumothorax.", "test", "frontal"),
    "R-CARD": (["Cardiomegaly/mild"], "The heart is mildly enlarged. No effusion.", "test", "lateral"),
    "R-CAEF": (["Cardiomegaly", "Pleural Effusion/left"], "Cardiomegaly with a left pleural effusion.",
               "test", "frontal"),
    "R-LING": (["Opacity/lung/lingula"], "Lingular opacity.", "val", "frontal"),
    "R-TEXT": (["normal"], "Small right apical pneumothorax.", "test", "frontal"),  # text says it, MeSH does not
    "R-TRAI": (["Pleural Effusion/right"], "Right pleural effusion.", "train", "frontal"),
}
# images without a report: only the cascade speaks for them (concept probabilities)
PIXELS = {
    "P-EFF9": {"findings:pleural effusion": 0.9, "laterality:right": 0.8, "findings:normal": 0.05},
    "P-EFF4": {"findings:pleural effusion": 0.4, "laterality:left": 0.7, "findings:cardiomegaly": 0.6},
    "P-NORM": {"findings:normal": 0.95, "findings:pleural effusion": 0.02},
}


def corpus_documents(vocabulary) -> list[dict]:
    docs = []
    for n, (image_id, (mesh, findings, split, view)) in enumerate(REPORTS.items(), 1):
        report = Report(str(n), findings=findings, impression=None, mesh_major=tuple(MeshTerm.parse(m) for m in mesh),
                        image_ids=(image_id,))
        entry = SimpleNamespace(image_id=image_id, report_id=str(n), split=split, label=None, words=(), view=view,
                                mesh=tuple(mesh))
        docs.append(build_document(DocumentInput(image_id, entry=entry, report=report, synthetic=True), vocabulary))
    for image_id, probs in PIXELS.items():
        top = max((k for k in probs if k.startswith("findings:")), key=probs.get).split(":", 1)[1]
        gen = GeneratedAnnotation((top,), "m-1", top, {top: probs[f"findings:{top}"]}, concept_probabilities=probs)
        docs.append(build_document(DocumentInput(image_id, generated=(gen,), synthetic=True), vocabulary))
    return docs


@pytest.fixture
def service(text_backend, vocabulary):
    docs = corpus_documents(vocabulary)
    version = text_backend.create()
    assert text_backend.index(docs, version=version).written == len(docs)
    text_backend.switch(version)
    return QueryService(text_backend)


def ranked(service, text, **kw) -> list[str]:
    return [r["image_id"] for r in service.search(SearchRequest(text, k=50, **kw))["results"]]


def test_a_negated_report_sentence_does_not_match(service):
    got = ranked(service, "pleural effusion", source="report")
    assert "R-NOEF" not in got and "R-CARD" not in got  # "No pleural effusion", "No effusion."
    assert set(got) == {"R-EFFR", "R-EFFB", "R-CAEF", "R-TRAI"}


def test_side_ranks_exact_then_bilateral_then_other_side(service):
    got = ranked(service, "right pleural effusion", source="report")
    assert set(got[:2]) == {"R-EFFR", "R-TRAI"} and got[2] == "R-EFFB" and got[3] == "R-CAEF"


def test_hierarchy_place_and_side(service):
    got = ranked(service, "pulmonary disease in upper right lobe", source="report")
    assert got[0] == "R-ARUL" and "R-FLUL" in got
    assert "R-EFFR" not in got  # a pleural effusion is not a lung disease


def test_lingula_is_left_and_text_mentions_count(service):
    assert ranked(service, "left lung opacity", source="report")[0] == "R-LING"
    assert ranked(service, "pneumothorax", source="report") == ["R-TEXT"]  # read from the report text


def test_query_negation_excludes(service):
    got = ranked(service, "cardiomegaly without pleural effusion", source="report")
    assert got == ["R-CARD"]  # R-CAEF has an effusion


def test_generated_ranks_by_probability_and_never_reads_reports(service):
    body = service.search(SearchRequest("pleural effusion", k=50, source="generated"))
    assert [r["image_id"] for r in body["results"]] == ["P-EFF9", "P-EFF4"]  # P-NORM 0.02: not a match
    assert all(r["image_id"].startswith("P-") for r in body["results"])
    ex = body["results"][0]["explanation"]["matched"][0]
    assert ex["source"] == "generated" and ex["probability"] == pytest.approx(0.9)
    assert ranked(service, "right pleural effusion", source="generated") == ["P-EFF9", "P-EFF4"]
    assert ranked(service, "pleural effusion without cardiomegaly", source="generated") == ["P-EFF9"]


def test_all_puts_report_matches_first_and_says_when_only_pixels_matched(service):
    body = service.search(SearchRequest("pleural effusion", k=50, source="all"))
    order = [r["image_id"] for r in body["results"]]
    assert order.index("P-EFF9") > order.index("R-EFFB")  # 0.9 from pixels < a report match of any side
    notes = {r["image_id"]: r["explanation"].get("note") for r in body["results"]}
    assert notes["P-EFF9"] and "pixels" in notes["P-EFF9"] and notes["R-EFFR"] is None


def test_filters_and_facets_agree_with_counts_from_the_documents(service, vocabulary):
    docs = {d["image_id"]: d for d in corpus_documents(vocabulary)}
    body = service.search(SearchRequest("pleural effusion", k=50, source="report", filters={"split": ["test"]},
                                        facets=("view", "laterality", "split")))
    hits = {r["image_id"] for r in body["results"]}
    assert hits == {"R-EFFR", "R-EFFB", "R-CAEF"} and body["total"] == 3
    for name in ("view", "laterality", "split"):
        expected = Counter(v for i in hits for v in keyword_values(docs[i], name))
        assert body["facets"][name] == dict(expected), name


def test_empty_query_lists_by_filters_in_image_id_order(service):
    got = ranked(service, "", filters={"split": ["test"], "view": ["lateral"]})
    assert got == ["R-CARD", "R-EFFB"]


def test_paging_and_total(service):
    first = service.search(SearchRequest("pleural effusion", k=2, page=1, source="report"))
    second = service.search(SearchRequest("pleural effusion", k=2, page=2, source="report"))
    assert first["total"] == second["total"] == 4
    assert len(first["results"]) == 2 and len(second["results"]) == 2
    assert not {r["image_id"] for r in first["results"]} & {r["image_id"] for r in second["results"]}


@pytest.mark.es
def test_both_backends_rank_identically(es_backend, vocabulary, tmp_path):
    docs = corpus_documents(vocabulary)
    embedded = EmbeddedTextBackend(tmp_path / "text")
    for backend in (embedded, es_backend):
        version = backend.create()
        backend.index(docs, version=version)
        backend.switch(version)
    queries = ["pleural effusion", "right pleural effusion", "pulmonary disease in upper right lobe",
               "cardiomegaly without pleural effusion", "left lung opacity", "pneumothorax", "mild cardiomegaly",
               "normal", "no pleural effusion", "effusion right small", "lung disease foo", ""]

    def answer(backend, text, source, retrievers):
        return QueryService(backend).search(SearchRequest(text, k=50, source=source, facets=("view", "split"),
                                                          retrievers=retrievers))

    for source in ("report", "generated", "all"):
        for text in queries:
            key = (source, text)
            # concepts alone: the same order and the same scores
            a, b = (answer(x, text, source, ("concepts",)) for x in (embedded, es_backend))
            assert [r["image_id"] for r in a["results"]] == [r["image_id"] for r in b["results"]], key
            assert [r["score"] for r in a["results"]] == pytest.approx([r["score"] for r in b["results"]], abs=1e-4)
            assert a["total"] == b["total"] and a["facets"] == b["facets"], key
            # with BM25 (whose scores differ between engines) the concept levels still decide, in the same order
            a, b = (answer(x, text, source, ("concepts", "lexical")) for x in (embedded, es_backend))
            assert a["total"] == b["total"] and a["facets"] == b["facets"], key

            def levels(body):
                return [(round(r["score"], 2), r["image_id"]) for r in body["results"]]

            assert sorted(levels(a)) == sorted(levels(b)), key
            assert [s for s, _ in levels(a)] == [s for s, _ in levels(b)], key
    embedded.close()


def _mapping_without_marker() -> dict:
    """The image mapping as it was before the GENERATED_MARKER copy_to (indices built by older code)."""
    from indexer.query.dsl import GENERATED_MARKER
    from indexer.text.elasticsearch import index_mappings

    mapping = index_mappings()
    del mapping["properties"][GENERATED_MARKER]
    for template in mapping["dynamic_templates"]:
        next(iter(template.values()))["mapping"].pop("copy_to", None)
    return mapping


@pytest.mark.es
def test_elasticsearch_index_without_the_probability_marker_ranks_the_same(es_backend, vocabulary, monkeypatch):
    """A version whose mapping has no GENERATED_MARKER (built before it existed) is searched with `exists` on the
    score object instead, and ranks exactly like a version that has it."""
    import indexer.text.elasticsearch as es_module

    docs = corpus_documents(vocabulary)
    with_marker = es_backend.create()
    es_backend.index(docs, version=with_marker)
    old_mapping = _mapping_without_marker()
    with monkeypatch.context() as m:
        m.setattr(es_module, "index_mappings", lambda: old_mapping)
        without_marker = es_backend.create()
    es_backend.index(docs, version=without_marker)
    assert es_backend._layout(with_marker)[2] is True and es_backend._layout(without_marker)[2] is False
    queries = ["pleural effusion", "right pleural effusion", "pulmonary disease in upper right lobe",
               "cardiomegaly without pleural effusion", "no pleural effusion", "normal", "effusion left", ""]
    answers = {}
    for version in (with_marker, without_marker):
        es_backend.switch(version, keep_previous=True)
        service = QueryService(es_backend)
        answers[version] = [service.search(SearchRequest(q, k=50, source=s, facets=("view", "findings")))
                            for s in ("all", "report", "generated") for q in queries]
    for a, b in zip(answers[with_marker], answers[without_marker]):
        key = (a["source"], a["query"])
        ranked_with = [(r["image_id"], r["score"]) for r in a["results"]]
        assert ranked_with == [(r["image_id"], r["score"]) for r in b["results"]], key
        assert (a["total"], a["facets"]) == (b["total"], b["facets"]), key
    assert any(r["explanation"]["matched"][0]["source"] == "generated"  # the cascade's probabilities took part
               for body in answers[without_marker] if body["source"] == "generated" for r in body["results"])


@pytest.mark.es
def test_elasticsearch_search_reads_the_live_version_again_when_a_reindex_dropped_it(es_backend, vocabulary):
    """The alias moved (and the old version was deleted) between reading it and searching: read it once more."""
    docs = corpus_documents(vocabulary)
    old = es_backend.create()
    es_backend.index(docs, version=old)
    es_backend.switch(old)
    new = es_backend.create()
    es_backend.index(docs[:4], version=new)
    es_backend.switch(new)  # drops `old`
    reads = iter([old])
    real = es_backend.live_version
    es_backend.live_version = lambda: next(reads, None) or real()  # the first read is stale
    body = QueryService(es_backend).search(SearchRequest("", k=50, source="all"))
    assert body["total"] == 4 and len(body["results"]) == 4


def test_a_deep_page_within_the_result_limit_is_answered(service):
    """k x page up to 10,000 is valid; ranking twice as deep must not exceed what Elasticsearch returns in one page."""
    body = service.search(SearchRequest("", k=20, page=408))
    assert body["results"] == [] and body["total"] == len(REPORTS) + len(PIXELS) and body["page"] == 408
    assert service.search(SearchRequest("pleural effusion", k=100, page=100, source="report"))["results"] == []


@pytest.mark.es
def test_elasticsearch_searches_reuse_the_alias_read_for_a_second_and_follow_a_switch(es_backend, vocabulary,
                                                                                     monkeypatch):
    """A query costs two round trips, not three: the live version read from the alias serves the searches of the
    next second. Another process's switch that dropped that version is followed at once (read again); this
    process's own switch is seen by its next search."""
    import indexer.text.elasticsearch as es_module
    from indexer.text.elasticsearch import ElasticsearchTextBackend

    docs = corpus_documents(vocabulary)
    first = es_backend.create()
    es_backend.index(docs, version=first)
    es_backend.switch(first)
    reads = []
    real = es_backend.live_version
    monkeypatch.setattr(es_backend, "live_version", lambda: reads.append(1) or real())
    clock = [1000.0]
    monkeypatch.setattr(es_module, "_clock", lambda: clock[0])
    service = QueryService(es_backend)
    for q in ("granuloma", "effusion", ""):
        assert service.search(SearchRequest(q, k=50, source="all"))["results"]
    assert len(reads) == 1
    clock[0] += es_module.LIVE_ALIAS_TTL_S + 0.1
    service.search(SearchRequest("granuloma", k=5))
    assert len(reads) == 2
    # another process (its own backend object) reindexes and drops the version this one read a moment ago
    other = ElasticsearchTextBackend(es_backend.settings)
    second = other.create()
    other.index(docs[:4], version=second)
    other.switch(second)
    other.close()
    body = service.search(SearchRequest("", k=50, source="all"))
    assert body["total"] == 4 and len(reads) == 3
    # this process's own switch: its next search reads the alias again, within the second
    third = es_backend.create()
    es_backend.index(docs[:2], version=third)
    es_backend.switch(third, keep_previous=True)
    assert service.search(SearchRequest("", k=50, source="all"))["total"] == 2
