"""Fusion math: competition ranks, reciprocal rank fusion, concept-first (tiered) fusion."""
from __future__ import annotations

import pytest

from indexer.query.fusion import competition_ranks, fuse, rrf, tiered


def test_equal_scores_share_a_rank():
    assert competition_ranks([("a", 3.0), ("b", 2.0), ("c", 2.0), ("d", 1.0)]) == {"a": 1, "b": 2, "c": 2, "d": 4}


def test_rrf_sums_weighted_reciprocal_ranks():
    fused = dict(rrf({"concepts": [("a", 1.0), ("b", 0.5)], "lexical": [("b", 9.0), ("c", 1.0)]}, k=60,
                     weights={"concepts": 1.0, "lexical": 1.0}))
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 62)
    assert [i for i, _ in rrf({"x": [("b", 1.0), ("a", 1.0)]})] == ["a", "b"]  # a tie goes by image id


def test_tiered_never_lets_words_overturn_a_concept_level():
    rankings = {"concepts": [("exact", 1.0), ("side", 0.8), ("plain", 0.5)],
                "lexical": [("plain", 20.0), ("words-only", 15.0), ("side", 1.0)]}
    assert [i for i, _ in tiered(rankings)] == ["exact", "side", "plain", "words-only"]
    rankings = {"concepts": [("a", 0.5), ("b", 0.5)], "lexical": [("b", 3.0), ("a", 1.0)]}
    assert [i for i, _ in tiered(rankings)] == ["b", "a"]  # words break a tie
    with pytest.raises(ValueError):
        fuse("borda", rankings)
