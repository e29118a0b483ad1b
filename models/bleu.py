"""BLEU-1..4 of generated vs true annotations, the paper's protocol (section 6.4)."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from nltk.translate.bleu_score import sentence_bleu


@dataclass(frozen=True)
class BleuScore:
    """Mean sentence BLEU-N (0-100) over the `cases` whose reference has >= N words."""

    n: int
    score: float | None     # None when no case has >= n words
    cases: int


def bleu_n(reference: Sequence[str], hypothesis: Sequence[str], n: int) -> float:
    """Sentence BLEU-N (uniform 1..n-gram weights, NLTK, no smoothing) in [0, 1]."""
    if not hypothesis:
        return 0.0
    weights = tuple([1.0 / n] * n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # NLTK warns when a higher-order n-gram has no match
        score = float(sentence_bleu([list(reference)], list(hypothesis), weights=weights))
    return 0.0 if score < 1e-9 else score   # NLTK returns ~1e-150 instead of 0 for no match


def bleu_table(references: Sequence[Sequence[str]], hypotheses: Sequence[Sequence[str]],
               max_n: int = 4) -> dict[int, BleuScore]:
    """BLEU-1..max_n averaged over images; BLEU-N only over cases with >= N reference words.

    Args:
        references: true annotation words per image.
        hypotheses: generated annotation words per image (same order).
    Returns:
        {N: BleuScore} with scores in percent like the paper's tables.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    table: dict[int, BleuScore] = {}
    for n in range(1, max_n + 1):
        scores = [bleu_n(ref, hyp, n) for ref, hyp in zip(references, hypotheses) if len(ref) >= n]
        mean = 100.0 * sum(scores) / len(scores) if scores else None
        table[n] = BleuScore(n=n, score=mean, cases=len(scores))
    return table


def format_bleu(table: dict[int, BleuScore]) -> str:
    """`82.6 / 19.2 / 2.2 / 0.0` (a dash where no case qualified)."""
    return " / ".join("-" if s.score is None else f"{s.score:.1f}" for s in table.values())
