"""The embedded ranker's arithmetic against plain Python over the same documents: facet counts (one sparse
product for every field, or the few candidates' values gathered) and BM25F word scores (columns read directly),
on random documents with ties."""
from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from scipy import sparse

from indexer.documents import DEFAULT_FACETS, keyword_values
from indexer.query.memory import _BM25, MemoryIndex

WORDS = ("right", "left", "upper", "lobe", "opacity", "nodule", "granuloma", "calcified", "effusion", "normal")


def random_documents(seed: int, n: int = 300) -> list[dict]:
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        docs.append({
            "image_id": f"IMG-{i:04d}", "view": rng.choice(["frontal", "lateral"]),
            "split": rng.choice(["train", "test"]),
            "findings": rng.sample(["nodule", "opacity", "granuloma", "effusion", "cardiomegaly", "atelectasis",
                                    "scoliosis"], rng.randint(0, 3)),
            "laterality": rng.sample(["left", "right", "bilateral"], rng.randint(0, 2)),
            "report_id": f"R{i // 2}",  # not a default facet: asked for on purpose below
            "synthetic": rng.random() < 0.5,
            "report_findings": " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 12))),
            "report_impression": " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 5))),
        })
    return docs


def expected_facets(docs, mask, names, size):
    out = {}
    for name in names:
        counts = Counter(v for doc, keep in zip(docs, mask) if keep for v in dict.fromkeys(keyword_values(doc, name)))
        out[name] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:size])
    return out


@pytest.mark.parametrize("seed", range(6))
def test_facet_counts_equal_counting_the_documents(seed):
    docs = random_documents(seed)
    index = MemoryIndex(docs)
    rng = np.random.default_rng(seed)
    for share in (0.0, 0.02, 0.1, 0.5, 1.0):  # below 1/8 the candidates' values are gathered, above multiplied
        mask = rng.random(len(docs)) < share
        for names, size in ((DEFAULT_FACETS, 20), (DEFAULT_FACETS, 2), (("report_id", "synthetic", "view"), 5),
                            (("findings",), 1), (("laterality", "findings", "laterality"), 3)):
            assert index.facets(mask, names, size) == expected_facets(docs, mask, names, size), (share, names, size)


def test_both_facet_count_layouts_agree():
    docs = random_documents(11)
    index = MemoryIndex(docs)
    counter = index._facet_counter(DEFAULT_FACETS)
    rng = np.random.default_rng(11)
    for share in (0.01, 0.05, 0.12, 0.3, 0.9):
        mask = rng.random(len(docs)) < share
        product = (counter.matrix @ mask.astype(np.float32)).astype(np.int64)
        assert counter.counts(mask).tolist() == product.tolist(), share
    assert counter.counts(np.zeros(len(docs), dtype=bool)).tolist() == [0] * counter.size


def test_bm25_scores_equal_summing_the_words_columns():
    docs = random_documents(7)
    bm25 = _BM25(docs, {"report_findings": 2.0, "report_impression": 1.0})
    for query in ("nodule", "right upper lobe", "granuloma granuloma calcified", "unknownword", "unknownword left"):
        cols = [bm25.vocab[t] for t in dict.fromkeys(query.split()) if t in bm25.vocab]
        got = bm25.scores(query)
        if not cols:
            assert got is None
            continue
        expected = np.asarray(sparse.csc_matrix(bm25.matrix)[:, cols].sum(axis=1)).ravel()
        assert got.dtype == np.float32 and got.shape == (len(docs),)
        np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_top_is_the_best_positive_scores_ties_by_id(seed):
    """`_top` against a plain sort by (-score, id): with many ties, a depth that cuts through a tie, a candidate
    mask, and rows in id order (as stored) or not (the lexsort path)."""
    rng = np.random.default_rng(seed)
    docs = random_documents(seed, 200)
    shuffled = [docs[i] for i in rng.permutation(len(docs))]
    for stored in (docs, shuffled):
        index = MemoryIndex(stored)
        assert index.ids_in_order == (stored is docs)
        scores = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0], size=len(stored)).astype(np.float32)
        within = rng.random(len(stored)) < 0.7
        for depth in (1, 7, 50, 1000):
            for mask in (None, within):
                kept = [(image_id, float(s)) for row, (image_id, s) in enumerate(zip(index.ids, scores))
                        if s > 0 and (mask is None or mask[row])]
                assert index._top(scores, depth, mask) == sorted(kept, key=lambda p: (-p[1], p[0]))[:depth]


def test_lexical_ranking_with_filters_does_not_depend_on_the_stored_order():
    """The same documents stored in another order rank, count and facet the same (a filter, and lexical words
    that decide the candidates or only re-rank them: with no concept clause, then nothing is a candidate)."""
    from indexer.query.plan import RankPlan

    docs = random_documents(3, 250)
    shuffled = [docs[i] for i in np.random.default_rng(3).permutation(len(docs))]
    for lexical_matches in (True, False):
        plan = RankPlan(lexical="right upper opacity", source="report", retrievers=("lexical",),
                        lexical_matches=lexical_matches)
        a = MemoryIndex(docs).rank(plan, {"view": ["frontal"]}, DEFAULT_FACETS, depth=40)
        b = MemoryIndex(shuffled).rank(plan, {"view": ["frontal"]}, DEFAULT_FACETS, depth=40)
        assert (a.rankings, a.total, a.facets) == (b.rankings, b.total, b.facets)
        assert bool(a.rankings["lexical"]) == lexical_matches and all(s > 0 for _, s in a.rankings["lexical"])


def test_an_index_of_no_documents_builds_and_finds_nothing_without_warnings():
    """An empty index (every file of a reindex skipped) has no mean document length: no NaN, no RuntimeWarning."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _BM25([], {"report_findings": 1.0, "report_impression": 0.5}).scores("opacity") is None
        assert MemoryIndex([]).facets(np.zeros(0, dtype=bool), DEFAULT_FACETS) == {name: {} for name in DEFAULT_FACETS}
