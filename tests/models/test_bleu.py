"""BLEU protocol of section 6.4 on hand-made cases."""
from __future__ import annotations

import math

import pytest

from models.bleu import bleu_n, bleu_table, format_bleu


def test_perfect_match_and_case_counts():
    refs = [["calcified granuloma", "lung", "upper lobe"], ["normal"]]
    table = bleu_table(refs, refs)
    assert [table[n].score for n in (1, 2, 3)] == [100.0, 100.0, 100.0]
    assert [table[n].cases for n in (1, 2, 3, 4)] == [2, 1, 1, 0]
    assert table[4].score is None                          # no case with >= 4 words
    assert format_bleu(table) == "100.0 / 100.0 / 100.0 / -"


def test_bleu_n_only_over_cases_with_at_least_n_words():
    refs = [["opacity", "lung", "base"], ["normal"]]
    hyps = [["opacity", "lung", "base"], ["cardiomegaly"]]
    table = bleu_table(refs, hyps)
    assert table[1].score == pytest.approx(50.0)          # mean of 100 and 0
    assert table[2].score == pytest.approx(100.0)         # the 1-word case does not count for BLEU-2


def test_hand_computed_partial_match():
    # 3 of 4 unigrams, 1 of 3 bigrams match; equal lengths -> no brevity penalty
    ref, hyp = ["a", "b", "c", "d"], ["a", "b", "x", "d"]
    assert bleu_n(ref, hyp, 1) == pytest.approx(0.75)
    assert bleu_n(ref, hyp, 2) == pytest.approx(math.sqrt(0.75 * (1 / 3)))
    assert bleu_n(ref, hyp, 3) == 0.0                      # no trigram matches: exactly zero


def test_brevity_penalty_and_empty_hypothesis():
    assert bleu_n(["calcified granuloma", "lung", "right"], ["calcified granuloma"], 1) == pytest.approx(
        math.exp(1 - 3))
    assert bleu_n(["normal"], [], 1) == 0.0
    with pytest.raises(ValueError):
        bleu_table([["a"]], [])
