"""The cascade bundle: inference outputs and an exact checkpoint round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cascade import Cascade
from models.config import apply_overrides, load_config
from models.errors import CheckpointError
from models.vocab import Vocabulary

from tests.models.conftest import ANNOTATIONS


@pytest.fixture
def cascade() -> Cascade:
    cfg = apply_overrides(load_config("tiny"), ["cnn.width=0.0625", "lstm.word_dim=8", "gru.word_dim=8"])
    labels = ["calcified granuloma", "cardiomegaly", "normal"]
    first = {"calcified granuloma": "calcified granuloma", "cardiomegaly": "cardiomegaly", "normal": "normal"}
    return Cascade.build(cfg, Vocabulary.build(ANNOTATIONS), labels, first, iteration=1).eval()


def test_annotate_outputs(cascade):
    images = np.random.default_rng(0).integers(0, 256, (3, 64, 64), dtype=np.uint8)
    out = cascade.annotate(images)
    assert len(out) == 3
    for a in out:
        assert a.probabilities.shape == (3,) and abs(a.probabilities.sum() - 1) < 1e-5
        assert a.label == cascade.label_names[int(a.probabilities.argmax())]
        assert a.words and a.words[0] == cascade.label_first_words[a.label]   # starts from the CNN's label
        assert 1 <= len(a.words) <= 5 and set(a.words_by_rnn) == {"lstm", "gru"}
        assert a.embedding.shape == (cascade.cnn.embedding_dim,)
        assert a.context_vector.shape == (cascade.decoders["gru"].hidden_size,)
    known = cascade.annotate(images[:1], known=[["cardiomegaly", "mild"]])[0]
    assert not np.allclose(known.context_vector, out[0].context_vector) or out[0].words == ["cardiomegaly", "mild"]


def test_checkpoint_round_trip_is_exact(cascade, tmp_path):
    cascade.metrics = {"bleu": [1.0, 2.0]}
    path = cascade.save(tmp_path / "c.pt")
    again = Cascade.load(path)
    assert again.config == cascade.config and again.vocab == cascade.vocab
    assert again.label_names == cascade.label_names and again.iteration == 1
    assert again.label_first_words == cascade.label_first_words and again.metrics == {"bleu": [1.0, 2.0]}
    images = np.random.default_rng(1).integers(0, 256, (2, 64, 64), dtype=np.uint8)
    for a, b in zip(cascade.annotate(images), again.annotate(images)):
        assert a.words_by_rnn == b.words_by_rnn
        np.testing.assert_allclose(a.probabilities, b.probabilities, rtol=1e-6)
        np.testing.assert_allclose(a.context_vector, b.context_vector, rtol=1e-6)


def test_bad_checkpoints(tmp_path, cascade):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        Cascade.load(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        Cascade.load(tmp_path / "junk.pt")
    state = cascade.state()
    state["format_version"] = 99
    torch.save(state, tmp_path / "future.pt")
    with pytest.raises(CheckpointError, match="format version 99"):
        Cascade.load(tmp_path / "future.pt")
    state = cascade.state()
    state["config"]["cnn"]["width"] = 0.125           # weights no longer fit the config
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        Cascade.load(tmp_path / "mismatch.pt")


def test_paper_preset_builds_googlenet_and_1024_state_rnns():
    cfg = load_config("paper")
    vocab = Vocabulary.build(ANNOTATIONS)
    model = Cascade.build(cfg, vocab, ["cardiomegaly", "normal"], {"cardiomegaly": "cardiomegaly", "normal": "normal"})
    assert type(model.cnn).__name__ == "GoogLeNetBN" and model.cnn.embedding_dim == 1024
    for cell in ("lstm", "gru"):
        assert model.decoders[cell].hidden_size == 1024 and model.decoders[cell].num_layers == 2
    (out,) = model.eval().annotate(np.random.default_rng(0).integers(0, 256, (1, 224, 224), dtype=np.uint8))
    assert out.embedding.shape == (1024,) and out.context_vector.shape == (1024,) and out.words
