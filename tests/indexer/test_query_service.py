"""The query service on the embedded backend: request checks, filters, explanations, similar images."""
from __future__ import annotations

import numpy as np
import pytest

from indexer.documents import build_document
from indexer.errors import IndexNotFound, InvalidQuery, UnknownImageId, VectorStoreNotFound
from indexer.query import QueryService, SearchRequest, parse_filters
from indexer.query.parse import parse_query
from indexer.query.service import MAX_DISTINCT_WORDS, query_annotation
from indexer.text.embedded import EmbeddedTextBackend
from tests.indexer.conftest import make_inputs


@pytest.fixture
def service(tmp_path, vocabulary):
    backend = EmbeddedTextBackend(tmp_path / "index" / "text")
    backend.index([build_document(i, vocabulary) for i in make_inputs()])
    yield QueryService(backend)
    backend.close()


def test_filter_syntax_and_its_errors():
    assert parse_filters(["view:frontal", "laterality=left", "laterality:right"]) == {
        "view": ["frontal"], "laterality": ["left", "right"]}
    for bad, message in (("view", "use FIELD:VALUE"), ("colour:red", "unknown filter field 'colour'"),
                         ("synthetic:True", "use true or false"), ("view:" + "x" * 40_000, "too long")):
        with pytest.raises(InvalidQuery, match=message):
            parse_filters([bad])


@pytest.mark.parametrize("request_kwargs, message", [
    ({"k": 0}, "k=0"), ({"page": 0}, "page=0"), ({"k": 100, "page": 101}, "reaches past"),
    ({"source": "pixels"}, "source='pixels'"), ({"fusion": "borda"}, "fusion='borda'"),
    ({"text": " ".join(f"w{i}" for i in range(MAX_DISTINCT_WORDS + 1))}, "distinct words"),
])
def test_bad_requests_are_refused_with_the_reason(service, request_kwargs, message):
    with pytest.raises(InvalidQuery, match=message):
        service.search(SearchRequest(**request_kwargs))


def test_answer_explains_each_hit(service):
    body = service.search(SearchRequest("calcified granuloma right upper lobe", k=3))
    first = body["results"][0]
    assert first["image_id"] == "IMG-A" and first["synthetic"] is True and body["synthetic"] is True
    assert first["explanation"]["matched"] == [{"concept": "calcified granuloma", "source": "report", "match": "exact",
                                                "atom": "f:calcified granuloma|l:upper lobe|s:right", "score": 1.0}]
    assert first["explanation"]["retrievers"]["concepts"]["rank"] == 1
    assert "report_annotation" in first["explanation"]["lexical_fields"]
    assert body["parsed"]["concepts"][0]["text"] == "calcified granuloma"
    assert body["retrievers"] == ["concepts", "lexical"] and body["skipped"] == {}  # vectors are opt-in
    asked = service.search(SearchRequest("calcified granuloma", retrievers=("concepts", "lexical", "vectors")))
    assert asked["skipped"] == {"vectors": "no vector stores"}


def test_generated_source_uses_only_what_the_cascade_wrote(service):
    # IMG-E: the report says normal, the cascade wrote 'opacity lung base right'
    assert [r["image_id"] for r in service.search(SearchRequest("opacity", source="generated"))["results"]] == ["IMG-E"]
    assert service.search(SearchRequest("opacity", source="report"))["results"] == []


def test_query_annotation_is_in_the_cascade_word_order():
    assert query_annotation(parse_query("right upper lobe calcified granuloma")) == [
        "calcified granuloma", "upper lobe", "right"]
    assert query_annotation(parse_query("no effusion")) == []


def test_image_and_similar_errors(service, tmp_path):
    assert service.image("IMG-A")["report_id"] == "1"
    with pytest.raises(UnknownImageId):
        service.image("NOPE")
    with pytest.raises(VectorStoreNotFound):  # no vector stores given to the service
        service.similar("IMG-A")
    with pytest.raises(IndexNotFound):
        QueryService(EmbeddedTextBackend(tmp_path / "empty")).search(SearchRequest("x"))


def test_similar_to_vectors_and_to_an_indexed_image(service, tmp_path):
    from indexer.vectors.faiss_store import VectorStore
    from indexer.vectors.live import LiveVectors, version_dir

    ids = [f"IMG-{c}" for c in "ABCDEFGHIJ"]
    vectors = np.eye(10, 8, dtype=np.float32) + 0.01  # (10, 8): IMG-A nearest to IMG-B, ...
    vectors[1] = vectors[0] + 0.2 * np.eye(8, dtype=np.float32)[1]
    root = tmp_path / "index"
    version = service.backend.live_version()
    for kind in ("context_vector", "cnn_embedding"):
        store = VectorStore.build(ids, vectors, kind=kind, model_version="m-1")
        store.save(version_dir(root, service.backend, version) / kind)
    service.vectors = LiveVectors(root, service.backend)
    with pytest.raises(Exception, match="has no findings vectors.*cxrsearch reindex --checkpoint"):
        service.similar("IMG-A", k=2)       # the default kind, absent from an index built before it existed
    body = service.similar("IMG-A", k=2, kind="embedding")
    assert body["hits"][0]["image_id"] == "IMG-B" and body["query"]["image_id"] == "IMG-A"
    assert body["model_version"] == "m-1" and body["synthetic"] is True
    upload = service.similar_to_vectors(vectors[0], vectors[0], k=1, kind="embedding")
    assert upload["hits"][0]["image_id"] == "IMG-A" and upload["query"]["image_id"] is None
    with pytest.raises(Exception, match="dimensions"):
        service.similar_to_vectors(np.ones(3), np.ones(3), kind="embedding")


def test_an_unusable_encoder_is_tried_once_and_named_without_paths(service, tmp_path):
    from indexer.query.encoder import EncoderUnavailable, QueryEncoder

    encoder = QueryEncoder(tmp_path / "missing.pt")
    with pytest.raises(EncoderUnavailable) as first:
        encoder.encode([["opacity"]])
    (tmp_path / "missing.pt").write_bytes(b"now a file, but the failure is remembered")
    with pytest.raises(EncoderUnavailable) as second:
        encoder.encode([["opacity"]])
    assert second.value is first.value and first.value.reason == "no cascade checkpoint found"
    service.vectors, service.encoder = object(), encoder  # vectors present, encoder broken

    class Vectors:
        def get(self, kind, version=None):
            raise AssertionError("not reached: the encoder fails first")

    service.vectors = Vectors()
    body = service.search(SearchRequest("opacity", retrievers=("concepts", "lexical", "vectors")))
    assert "vectors" not in body["retrievers"]
    assert str(tmp_path) not in str(body["skipped"])


def test_facet_size_counts_more_values(service):
    small = service.search(SearchRequest("", facets=("findings",), facet_size=2))
    large = service.search(SearchRequest("", facets=("findings",), facet_size=50))
    assert len(small["facets"]["findings"]) == 2 and len(large["facets"]["findings"]) > 2
    assert list(large["facets"]["findings"].items())[:2] == list(small["facets"]["findings"].items())


def test_an_index_of_an_older_document_schema_is_named(tmp_path, vocabulary):
    from indexer.documents import SCHEMA_VERSION

    backend = EmbeddedTextBackend(tmp_path / "old" / "text")
    old = [dict(build_document(i, vocabulary), schema_version=SCHEMA_VERSION - 1) for i in make_inputs()]
    backend.index(old)
    body = QueryService(backend).search(SearchRequest("granuloma"))
    assert body["warnings"] and "run `cxrsearch reindex`" in body["warnings"][0]
    backend.close()


def test_embedded_in_memory_ranker_survives_plain_searches_and_follows_writes(tmp_path, documents):
    """A plain search (its temp table) is not a write to the index: the in-memory ranker must not be rebuilt
    for it (that took seconds on the full corpus, e.g. after every /api/stats); a real write still rebuilds it."""
    with EmbeddedTextBackend(tmp_path / "text") as backend:
        backend.index(documents)
        ranker = backend.memory_index()
        backend.search("granuloma", k=5, facets=("view",))
        backend.search("", filters={"synthetic": True}, k=1, facets=())
        assert backend.memory_index() is ranker
        assert backend.get_many(["IMG-A"])["IMG-A"]["image_id"] == "IMG-A"
        backend.update("IMG-A", {"split": "test"})
        rebuilt = backend.memory_index()
        assert rebuilt is not ranker and backend.get_many(["IMG-A"])["IMG-A"]["split"] == "test"


def test_the_ranker_snapshot_is_reused_by_the_next_process_and_refused_after_a_write(tmp_path, vocabulary):
    from indexer.text.embedded import SNAPSHOT_NAME

    docs = [build_document(i, vocabulary) for i in make_inputs()]
    first = EmbeddedTextBackend(tmp_path / "text")
    first.index(docs[:8])
    built = first.memory_index()
    snapshot = tmp_path / "text" / "versions" / first.live_version() / SNAPSHOT_NAME
    assert snapshot.is_file() and built.documents(["IMG-A"]) is not None
    query = SearchRequest("right upper lobe granuloma", facets=("findings", "view"))
    expected = QueryService(first).search(query)

    second = EmbeddedTextBackend(tmp_path / "text")  # another process: loads the arrays, decodes no document
    loaded = second.memory_index()
    assert loaded.documents(["IMG-A"]) is None
    again = QueryService(second).search(query)
    assert [r["image_id"] for r in again["results"]] == [r["image_id"] for r in expected["results"]]
    assert again["facets"] == expected["facets"] and again["results"][0]["report_annotation"]

    second.index(docs[8:])  # a write: the snapshot no longer describes the catalogue
    assert second.memory_index() is not loaded and second.memory_index().n == 10
    assert EmbeddedTextBackend(tmp_path / "text").memory_index().n == 10
    first.close()
    second.close()


def test_embedded_get_many_decodes_a_document_once_per_state(tmp_path, documents, monkeypatch):
    """A server whose ranker came from its snapshot holds no documents: get_many keeps the decoded ones (until
    the next write) instead of decoding every page's documents on every request."""
    import indexer.text.embedded as embedded

    backend = EmbeddedTextBackend(tmp_path / "text")
    backend.index(documents)
    decoded = []
    real = embedded._unpack
    monkeypatch.setattr(embedded, "_unpack", lambda blob: decoded.append(1) or real(blob))
    first = backend.get_many(["IMG-A", "IMG-B"])
    first["IMG-A"]["split"] = "changed by the caller"  # a copy: the kept document is not touched
    again = backend.get_many(["IMG-B", "IMG-A", "IMG-C"])
    assert len(decoded) == 3 and again["IMG-A"]["split"] == "train" and set(again) == {"IMG-A", "IMG-B", "IMG-C"}
    backend.update("IMG-A", {"split": "test"})  # a write: what was kept is stale
    assert backend.get_many(["IMG-A"])["IMG-A"]["split"] == "test"
    backend.close()


def test_lexical_fields_check_answers_as_the_whole_word_regex():
    """explain's lexical_fields run one small regex per word and skip it when the word is not a substring; the
    answer must stay that of one whole-word regex over all the query's words."""
    import re

    from indexer.query.service import _has_word, _word_pattern, document_words, lexical_fields
    from indexer.text.base import tokenize

    texts = ["Calcified granuloma in the RIGHT upper lobe.", "no granulomas", "right-sided effusion", "upright",
             "left_lobe", "", None, "Épanchement pleural droit", "the lungs are clear", "Kelvin \u212a", "ſtraße",
             "mid-lung opacity", "lung", "lungs", "x-ray of the right lung"]
    for query in ("granuloma right", "lobe", "effusion", "épanchement", "k", "strasse", "s", "upright", "left",
                  "lung lungs", "mid-lung", "right lung opacity", "ray"):
        words = _word_pattern(query)
        unique = sorted(set(tokenize(query)), key=len, reverse=True)
        reference = re.compile(r"(?<![^\W_])(?:" + "|".join(re.escape(w) for w in unique) + r")(?![^\W_])",
                               re.IGNORECASE)
        for text in texts:
            expected = bool(text) and reference.search(text) is not None
            assert _has_word(text, words) == expected, (query, text)
            # the per-document word masks (kept per index state by the service) give the same answer
            doc = {"report_findings": text, "generated_annotation": "calcified granuloma 3.5 cm", "other": text}
            fields = lexical_fields(doc, ["report_findings", "other"], words, document_words(doc))
            assert fields == (["report_findings", "other"] if expected else []), (query, text)
    assert _word_pattern("   ") is None
    doc = {"report_findings": "a 3.5 cm nodule", "report_impression": "Nodule, 3,5"}
    both = ["report_findings", "report_impression"]
    for query, expected in (("3.5", ["report_findings"]), ("nodule", both), ("5", both), ("3,5 cm", both)):
        assert lexical_fields(doc, ["report_findings", "report_impression"], _word_pattern(query),
                              document_words(doc)) == expected, query


def test_explained_lexical_fields_follow_a_write_to_the_document(service):
    """The service keeps each page document's facts (shown fields, atoms, words) per index state: after a write the
    explanation reads the new text, not the kept words."""
    def fields_of(image_id: str) -> list[str]:
        body = service.search(SearchRequest("zebra", k=10, source="report"))
        return next((r["explanation"].get("lexical_fields", []) for r in body["results"]
                     if r["image_id"] == image_id), [])

    backend = service.backend
    image_id = backend.search("", k=1, facets=()).hits[0].image_id
    assert fields_of(image_id) == []
    backend.update(image_id, {"report_findings": "a zebra stripe artefact"})
    assert fields_of(image_id) == ["report_findings"]
    assert len(service._facts) >= 1
    backend.update(image_id, {"report_findings": "clear lungs", "report_impression": "Zebra."})
    assert fields_of(image_id) == ["report_impression"]


def test_a_page_of_kept_documents_is_not_read_again(service, monkeypatch):
    """A second query landing on the same documents answers from the kept facts (no document read), and answers
    exactly as a service that reads every document."""
    from indexer.query.service import QueryService

    first = service.search(SearchRequest("granuloma", k=10))
    reads = []
    original = service.backend.get_many
    monkeypatch.setattr(service.backend, "get_many", lambda ids, **kw: reads.append(list(ids)) or original(ids, **kw))
    again = service.search(SearchRequest("calcified granuloma", k=10))
    kept = {r["image_id"] for r in first["results"]}
    assert kept & {r["image_id"] for r in again["results"]}  # the second page shows documents of the first
    assert all(i not in kept for batch in reads for i in batch)  # only documents not shown before are read
    fresh = QueryService(service.backend).search(SearchRequest("calcified granuloma", k=10))
    for a, b in zip(again["results"], fresh["results"], strict=True):
        assert a == b


def test_the_explanation_names_the_strongest_level_the_ranking_used():
    """A clause's levels are not listed by weight (side 0.8, both sides 0.6, place 0.7): a report holding the
    finding on both sides and at the place asked for ranks at 0.7, and the explanation must say the same."""
    from indexer.concepts import atom
    from indexer.query.memory import MemoryIndex
    from indexer.query.parse import parse_query
    from indexer.query.plan import build_plan
    from indexer.query.service import explain_hit

    plan = build_plan(parse_query("calcified granuloma right upper lobe"), "report")
    group = plan.clauses[0].groups[0]
    doc = {"image_id": "IMG-1", "report_atoms": [atom(group, side="bilateral"), atom(group, location="upper lobe")]}
    ranked = float(MemoryIndex([doc]).report_clause(plan.clauses[0])[0])
    evidence = explain_hit(doc, plan, {}, "IMG-1")["matched"][0]
    assert ranked == pytest.approx(0.7) and evidence["score"] == pytest.approx(ranked)
    assert evidence["match"] == "location" and evidence["atom"] == atom(group, location="upper lobe")


@pytest.mark.parametrize("source", ["report", "generated", "all"])
def test_explanations_agree_with_the_ranker_and_a_walk_over_the_levels(source):
    """On random documents holding atoms of every level of a clause (MeSH, text mentions, a cascade without a
    concept head): the explanation's evidence scores what the ranker scored, names the strongest level the
    document reaches and its first listed atom there (a plain walk over the levels, strongest first), MeSH
    winning a tie with the text."""
    import random

    from indexer.query.memory import MemoryIndex
    from indexer.query.plan import GENERATED_IN_ALL, TEXT_WEIGHT, build_plan
    from indexer.query.service import LEVEL_NAMES, explain_hit

    plan = build_plan(parse_query("calcified granuloma right upper lobe"), source)
    clause = plan.clauses[0]
    levels = sorted(clause.levels, key=lambda level: -level.weight)
    pool = [a for level in clause.levels for a in level.atoms] + ["d:Cardiomegaly", "d:Nodule|s:left"]
    rng = random.Random(7)
    docs = [{"image_id": f"IMG-{i:03d}", **{name: rng.sample(pool, rng.randint(0, 3))
                                            for name in ("report_atoms", "text_atoms", "generated_atoms")}}
            for i in range(300)]
    index = MemoryIndex(docs)
    report = index.report_clause(clause) if plan.uses_report else np.zeros(len(docs))
    generated = index.generated_clause(clause) if plan.uses_generated else np.zeros(len(docs))
    seen = set()
    for row, doc in enumerate(docs):
        walked = []  # (score, source, level, atom) of each field: its strongest level, first atom listed there
        fields = ((("report_atoms", "report", 1.0), ("text_atoms", "text", TEXT_WEIGHT)) if plan.uses_report else ())
        if plan.uses_generated:
            fields += (("generated_atoms", "generated", GENERATED_IN_ALL if source == "all" else 1.0),)
        for name, kind, factor in fields:
            level = next((lv for lv in levels if any(a in doc[name] for a in lv.atoms)), None)
            if level is not None:
                walked.append((round(level.weight * factor, 4), kind, level,
                               next(a for a in level.atoms if a in doc[name])))
        matched = explain_hit(doc, plan, {}, doc["image_id"])["matched"]
        if not walked:
            assert matched == [] and report[row] == 0 and generated[row] == 0
            continue
        best = max(walked, key=lambda w: w[0])  # the first of equal scores: MeSH before text before cascade
        assert len(matched) == 1
        evidence = matched[0]
        assert (evidence["score"], evidence["source"], evidence["atom"]) == (best[0], best[1], best[3])
        assert evidence["match"] == LEVEL_NAMES[best[2].weight]
        ranked = max(float(report[row]), float(generated[row]) * (GENERATED_IN_ALL if source == "all" else 1.0))
        assert evidence["score"] == pytest.approx(ranked, abs=1e-4)
        seen.add((evidence["source"], evidence["match"]))
    assert len(seen) >= 4  # several sources and levels were exercised


@pytest.mark.parametrize("cpu_bound", [True, False])
def test_searches_of_a_cpu_bound_backend_run_one_at_a_time(service, cpu_bound):
    """Threads searching the in-memory ranking take turns (its short numpy steps each release the GIL, and
    threads trading it at every step spent twice the CPU); a backend that waits on a server is not serialised."""
    import threading
    import time

    backend = service.backend
    backend.cpu_bound = cpu_bound            # an instance attribute over the class's
    service = QueryService(backend)
    inside, most, count = [0], [0], threading.Lock()
    retrieve = backend.retrieve

    def slow_retrieve(*args, **kwargs):
        with count:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.2)
        try:
            return retrieve(*args, **kwargs)
        finally:
            with count:
                inside[0] -= 1

    backend.retrieve = slow_retrieve
    start, totals = threading.Barrier(4), []

    def ask(q):
        start.wait(timeout=10)
        totals.append(service.search(SearchRequest(q, k=3))["total"])

    threads = [threading.Thread(target=ask, args=(q,)) for q in ("granuloma", "opacity", "calcified", "lobe")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(totals) == 4 and all(totals) and most[0] == (1 if cpu_bound else 4)
