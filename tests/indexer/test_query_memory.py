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
