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


def _reference_rrf(rankings, k=60, weights=None):
    """The fusion as first written (a dict of competition ranks per ranking, one lambda sort): the fast one must
    give the same order and scores."""
    from indexer.query.fusion import DEFAULT_WEIGHTS

    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    fused: dict[str, float] = {}
    for name, ranking in rankings.items():
        for image_id, rank in competition_ranks(ranking).items():
            fused[image_id] = fused.get(image_id, 0.0) + w.get(name, 1.0) / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def _reference_tiered(rankings, k=60):
    concept = dict(rankings.get("concepts", ()))
    others = {name: r for name, r in rankings.items() if name != "concepts"}
    secondary = dict(_reference_rrf(others, k)) if others else {}
    top = max(secondary.values(), default=0.0)
    scored = {i: concept.get(i, 0.0) + (0.009 * secondary.get(i, 0.0) / top if top else 0.0)
              for i in set(concept) | set(secondary)}
    return sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))


@pytest.mark.parametrize("seed", range(25))
def test_fusion_matches_the_reference_on_random_rankings_with_ties(seed):
    import random

    rng = random.Random(seed)
    ids = [f"IMG-{i:03d}" for i in range(60)]
    rankings = {}
    for name in ("concepts", "lexical", "vectors")[: rng.randint(1, 3)]:
        chosen = rng.sample(ids, rng.randint(0, 40))
        scores = sorted((rng.choice([1.0, 0.9, 0.8, 0.5, rng.random()]) for _ in chosen), reverse=True)
        rankings[name] = list(zip(chosen, scores))
    for fast, reference in ((rrf(rankings), _reference_rrf(rankings)), (tiered(rankings), _reference_tiered(rankings))):
        assert [i for i, _ in fast] == [i for i, _ in reference]
        assert [s for _, s in fast] == pytest.approx([s for _, s in reference], rel=1e-12, abs=1e-15)
