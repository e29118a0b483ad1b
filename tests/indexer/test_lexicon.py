"""The lexicon: token normalisation, the phrase matcher, and the data file's consistency with the vocabulary."""
from __future__ import annotations

import pytest

from indexer.errors import VocabularyError
from indexer.lexicon import Lexicon, PhraseMatcher, normalise, tokens
from indexer.records import MeshTerm
from indexer.vocabulary import Vocabulary


@pytest.mark.parametrize("word, expected", [
    ("Effusions", "effusion"), ("opacities", "opacity"), ("masses", "mass"), ("apices", "apex"), ("hila", "hilum"),
    ("granulomas", "granuloma"), ("atelectasis", "atelectasis"), ("emphysematous", "emphysematous"),
    ("has", "has"), ("lungs", "lung"), ("pneumothoraces", "pneumothorax"), ("bases", "base"),
])
def test_normalise_folds_plurals_only(word, expected):
    assert normalise(word) == expected


def test_tokens_keep_spans_and_hyphenated_words():
    text = "T-spine osteophytes, left base."
    toks = tokens(text)
    assert [t.norm for t in toks] == ["t-spine", "osteophyte", "left", "base"]
    assert all(text[t.start:t.end] == t.text for t in toks)


def test_matcher_prefers_the_longest_phrase_and_allows_gaps():
    m = PhraseMatcher([("pleural effusion", "PE"), ("effusion", "E"), ("heart * enlarged", "CM")])
    found = m.find(tokens("small pleural effusions and the heart is mildly enlarged"))
    assert [(f.payload, f.start, f.end) for f in found] == [("PE", 1, 3), ("CM", 5, 9)]
    assert found[1].gap == (6, 7)  # 'is mildly'
    assert m.find(tokens("heart is not at all really enlarged")) == []  # a gap is at most three words


def test_gap_phrases_match_only_where_all_their_words_are():
    m = PhraseMatcher([("heart * enlarged", "CM"), ("heart size * increased", "CM2")])
    assert m.all_matches(tokens("heart is mildly large")) == []  # 'enlarged' missing: skipped before matching
    assert m.all_matches(tokens("enlarged heart")) == []  # every word there, but not in order
    found = m.all_matches(tokens("heart size is increased, heart enlarged"))
    assert [(f.payload, f.start, f.end, f.gap) for f in found] == [("CM2", 0, 4, (2,)), ("CM", 4, 6, ())]
    assert m.all_matches(tokens("heart is mildly enlarged"), blocked={2}) == []  # a gap never skips a blocked word


def test_matches_at_one_word_keep_the_order_phrases_were_added():
    """With and without a gap, at every length: find's ties go to the phrase added first."""
    m = PhraseMatcher([("heart * enlarged", "gap"), ("heart", "short"), ("heart enlarged", "exact"),
                       ("heart enlarged", "again")])
    found = m.all_matches(tokens("heart enlarged"))
    assert [f.payload for f in found] == ["gap", "short", "exact", "again"]
    assert [f.payload for f in m.find(tokens("heart enlarged"))] == ["gap"]
    m = PhraseMatcher([("heart enlarged", "exact"), ("heart * enlarged", "gap")])
    assert [f.payload for f in m.find(tokens("heart enlarged"))] == ["exact"]


def test_matcher_rejects_a_phrase_that_starts_with_a_gap():
    with pytest.raises(VocabularyError):
        PhraseMatcher([("* enlarged", "x")])


def test_every_lexicon_term_is_understood_by_the_vocabulary():
    vocab, lex = Vocabulary.load(), Lexicon.load()
    bad = [t for t in lex.finding_terms if vocab.concept(MeshTerm.parse(t)).category in ("unknown", "none")]
    assert bad == [], f"lexicon terms the vocabulary does not know: {bad}"
    assert len(lex.finding_terms) >= 100


def test_every_group_descriptor_exists():
    vocab, lex = Vocabulary.load(), Lexicon.load()
    for _, group in lex.groups.entries():
        for name in group.descriptors:
            assert name in vocab, f"group {group.name!r}: no MeSH descriptor {name!r}"
