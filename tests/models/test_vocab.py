"""The annotation vocabulary."""
from __future__ import annotations

import pytest

from models.errors import VocabularyError
from models.vocab import EOS, PAD, UNK, WordVocabulary


def test_specials_first_and_frequency_order(vocab):
    assert vocab.words[:3] == (PAD, EOS, UNK)
    assert vocab.words[3] == "lung"          # the most frequent word of the fixture
    assert vocab.id("never seen") == vocab.unk_id


def test_encode_pads_with_eos_and_truncates(vocab):
    ids = vocab.encode(("cardiomegaly", "mild"), max_words=5)
    assert len(ids) == 6 and ids[2:] == [vocab.eos_id] * 4
    long = vocab.encode(("lung",) * 8, max_words=5)
    assert len(long) == 6 and long[:5] == [vocab.id("lung")] * 5 and long[5] == vocab.eos_id


def test_decode_stops_at_eos_and_round_trips(vocab):
    words = ["calcified granuloma", "lung", "upper lobe", "right"]
    assert vocab.decode(vocab.encode(words)) == words
    assert vocab.decode([vocab.id("opacity"), vocab.eos_id, vocab.id("lung")]) == ["opacity"]
    assert WordVocabulary.from_dict(vocab.to_dict()) == vocab


def test_malformed_vocabulary():
    with pytest.raises(VocabularyError):
        WordVocabulary(("a", "b", "c"))
    with pytest.raises(VocabularyError):
        WordVocabulary.from_dict({"nope": []})
