"""Fusing the retrievers' rankings into one: reciprocal rank fusion, and a concept-first alternative.

- `rrf`: Cormack, Clarke and Buettcher, "Reciprocal rank fusion outperforms Condorcet and individual
  rank learning methods" (SIGIR 2009): score(d) = sum over retrievers of weight / (k + rank(d)),
  k = 60. Documents with equal scores in one ranking share its rank (competition ranking), so the
  other retrievers break the tie.
- `tiered` (the default): the concept score decides; lexical and vector ranks only order documents
  whose concept scores are equal (together they add less than the smallest gap between concept
  levels). It beat RRF on the val split (nDCG@10 0.953 vs 0.934, source report), so the concept
  levels a radiologist means are not reshuffled by shared words; `cxrsearch eval search` reports both.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

RRF_K = 60
FUSIONS = ("rrf", "tiered")
# Retriever weights in RRF; the concept retriever carries the radiologist's meaning, lexical and vectors help.
DEFAULT_WEIGHTS = {"concepts": 1.0, "lexical": 1.0, "vectors": 0.5, "browse": 1.0}


def competition_ranks(ranking: Sequence[tuple[str, float]]) -> dict[str, int]:
    """1-based ranks where equal scores share the rank of the first of them ('1224' ranking)."""
    ranks: dict[str, int] = {}
    previous, rank = None, 0
    for position, (image_id, score) in enumerate(ranking, 1):
        if previous is None or score != previous:
            rank, previous = position, score
        ranks[image_id] = rank
    return ranks


def rrf(rankings: Mapping[str, Sequence[tuple[str, float]]], k: int = RRF_K,
        weights: Mapping[str, float] | None = None) -> list[tuple[str, float]]:
    """Reciprocal rank fusion of several rankings -> [(image id, fused score)], best first (ties by image id)."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    fused: dict[str, float] = {}
    for name, ranking in rankings.items():
        for image_id, rank in competition_ranks(ranking).items():
            fused[image_id] = fused.get(image_id, 0.0) + w.get(name, 1.0) / (k + rank)
    return sorted(fused.items(), key=lambda kv: (-kv[1], kv[0]))


def tiered(rankings: Mapping[str, Sequence[tuple[str, float]]], k: int = RRF_K,
           weights: Mapping[str, float] | None = None) -> list[tuple[str, float]]:
    """Concept score first; lexical/vector RRF only within equal concept scores -> [(image id, score)]."""
    concept = dict(rankings.get("concepts", ()))
    others = {name: r for name, r in rankings.items() if name != "concepts"}
    secondary = dict(rrf(others, k, weights)) if others else {}
    top = max(secondary.values(), default=0.0)
    ids = set(concept) | set(secondary)
    # secondary scores are scaled below 0.01, smaller than any gap between concept levels
    scored = {i: concept.get(i, 0.0) + (0.009 * secondary.get(i, 0.0) / top if top else 0.0) for i in ids}
    return sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))


def fuse(method: str, rankings: Mapping[str, Sequence[tuple[str, float]]],
         weights: Mapping[str, float] | None = None) -> list[tuple[str, float]]:
    if method == "rrf":
        return rrf(rankings, weights=weights)
    if method == "tiered":
        return tiered(rankings, weights=weights)
    raise ValueError(f"fusion {method!r} is unknown; valid: {', '.join(FUSIONS)}")
