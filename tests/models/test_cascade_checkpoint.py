"""The cascade bundle: inference outputs and an exact checkpoint round trip."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.cascade import Cascade
from models.config import apply_overrides, load_config
from models.errors import CheckpointError
from models.findings import OTHER, FindingsHead
from models.findings import vector as findings_vector
from models.preprocess import to_input
from models.vocab import WordVocabulary
from tests.models.conftest import ANNOTATIONS


@pytest.fixture
def cascade() -> Cascade:
    cfg = apply_overrides(load_config("tiny"), ["cnn.width=0.0625", "lstm.word_dim=8", "gru.word_dim=8"])
    labels = ["calcified granuloma", "cardiomegaly", "normal"]
    first = {"calcified granuloma": "calcified granuloma", "cardiomegaly": "cardiomegaly", "normal": "normal"}
    return Cascade.build(cfg, WordVocabulary.build(ANNOTATIONS), labels, first, iteration=1).eval()


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
    vocab = WordVocabulary.build(ANNOTATIONS)
    model = Cascade.build(cfg, vocab, ["cardiomegaly", "normal"], {"cardiomegaly": "cardiomegaly", "normal": "normal"})
    assert type(model.cnn).__name__ == "GoogLeNetBN" and model.cnn.embedding_dim == 1024
    for cell in ("lstm", "gru"):
        assert model.decoders[cell].hidden_size == 1024 and model.decoders[cell].num_layers == 2
    (out,) = model.eval().annotate(np.random.default_rng(0).integers(0, 256, (1, 224, 224), dtype=np.uint8))
    assert out.embedding.shape == (1024,) and out.context_vector.shape == (1024,) and out.words


CONCEPTS = ["findings:calcified granuloma", "findings:cardiomegaly", "laterality:right"]


@pytest.fixture
def with_concepts() -> Cascade:
    cfg = apply_overrides(load_config("tiny"), ["cnn.arch=resnet", "cnn.width=0.125", "cnn.depth=1",
                                                "cnn.input_size=64", "cnn.resize=64", "lstm.word_dim=8",
                                                "gru.word_dim=8"])
    labels = ["calcified granuloma", "cardiomegaly", "normal"]
    model = Cascade.build(cfg, WordVocabulary.build(ANNOTATIONS), labels, {x: x for x in labels},
                          concept_names=CONCEPTS).eval()
    emb = torch.randn(6, model.cnn.embedding_dim)
    model.set_text_means(emb, [("calcified granuloma", "lung"), ("calcified granuloma",), ("cardiomegaly", "mild"),
                               ("normal",), ("normal",), ("opacity", "lung")])
    return model


def test_concept_probabilities_are_aligned_with_the_saved_concept_names(with_concepts, tmp_path):
    with torch.no_grad():     # make the head's rows distinguishable: row j has bias j - 1
        with_concepts.cnn.concept_head.weight.zero_()
        with_concepts.cnn.concept_head.bias.copy_(torch.tensor([-1.0, 0.0, 1.0]))
    again = Cascade.load(with_concepts.save(tmp_path / "c.pt"))
    assert again.concept_names == CONCEPTS
    images = np.random.default_rng(0).integers(0, 256, (2, 64, 64), dtype=np.uint8)
    (a, _), (b, _) = with_concepts.annotate(images), again.annotate(images)
    assert a.concept_probabilities.shape == (3,)
    np.testing.assert_allclose(a.concept_probabilities, b.concept_probabilities, rtol=1e-6)
    expected = 1 / (1 + np.exp(-np.array([-1.0, 0.0, 1.0])))
    np.testing.assert_allclose(b.concept_probabilities, expected, rtol=1e-5)   # key j <-> probability j


def test_text_context_starts_from_the_first_words_mean_embedding(with_concepts, tmp_path):
    model = Cascade.load(with_concepts.save(tmp_path / "c.pt"))
    out = model.text_context([["calcified granuloma", "lung"], ["normal"], ["pneumonia", "lung"]])
    assert out.shape == (3, model.decoders["gru"].hidden_size) and out.dtype == np.float32
    h0 = model.first_word_mean_embeddings["calcified granuloma"]
    assert set(model.first_word_mean_embeddings) == {"calcified granuloma", "cardiomegaly", "normal", "opacity"}
    expected = model.context(h0[None], [["calcified granuloma", "lung"]]).numpy()
    # a batch of 3 and a batch of 1 may sum in another order: equal up to float32 rounding (atol for values near 0)
    np.testing.assert_allclose(out[0], expected[0], rtol=1e-5, atol=1e-7)
    unseen = model.context(model.mean_embedding[None], [["pneumonia", "lung"]]).numpy()   # fallback: the mean
    np.testing.assert_allclose(out[2], unseen[0], rtol=1e-5, atol=1e-7)
    assert not np.allclose(out[0], out[1])
    assert model.text_context([]).shape == (0, model.decoders["gru"].hidden_size)


def test_old_checkpoint_without_concept_head_still_loads(with_concepts, tmp_path):
    """A format-1 checkpoint (before the concept head and first-word means) annotates with no concepts."""
    state = with_concepts.state()
    state["format_version"] = 1
    for key in ("concept_names", "first_word_mean_embeddings", "mean_embedding"):
        del state[key]
    state["cnn"] = {k: v for k, v in state["cnn"].items() if not k.startswith("concept_head.")}
    torch.save(state, tmp_path / "old.pt")
    old = Cascade.load(tmp_path / "old.pt")
    assert old.concept_names == [] and old.cnn.concept_head is None
    (a,) = old.annotate(np.zeros((1, 64, 64), np.uint8))
    assert a.concept_probabilities.shape == (0,) and a.words
    with pytest.raises(CheckpointError, match="no mean training embeddings"):
        old.text_context([["normal"]])


def test_committed_v1_style_config_without_new_keys_loads(tmp_path):
    """Configs saved before `depth`, `schedule`, ... existed (NIN-BN then) fill them with defaults."""
    cfg = apply_overrides(load_config("tiny"), ["cnn.arch=nin", "cnn.width=0.0625", "cnn.input_size=64",
                                                "cnn.resize=64", "cnn_train.concept_weight=0",
                                                "cnn_train.channels_last=false", "lstm.word_dim=8", "gru.word_dim=8"])
    cascade = Cascade.build(cfg, WordVocabulary.build(ANNOTATIONS), ["cardiomegaly", "normal"],
                            {"cardiomegaly": "cardiomegaly", "normal": "normal"})
    state = cascade.state()
    for key in ("depth", "stem"):
        state["config"]["cnn"].pop(key)
    for key in ("schedule", "shift", "intensity", "concept_weight", "channels_last", "finetune_max_per_label",
                "concept_extra"):
        state["config"]["cnn_train"].pop(key)
    state["config"].pop("concept_min_positives")
    torch.save(state, tmp_path / "older.pt")
    again = Cascade.load(tmp_path / "older.pt").config
    assert again.cnn.depth == 2 and again.cnn_train.schedule == "step" and again.cnn_train.concept_weight == 0
    assert again.cnn.arch == "nin" and again.lstm == cascade.config.lstm


def test_half_precision_checkpoint_is_smaller_and_loads_as_float32(with_concepts, tmp_path):
    full = with_concepts.save(tmp_path / "full.pt")
    half = with_concepts.save(tmp_path / "half.pt", half=True)
    assert half.stat().st_size < 0.7 * full.stat().st_size
    a, b = Cascade.load(full), Cascade.load(half)
    assert next(b.cnn.parameters()).dtype == torch.float32
    images = np.random.default_rng(2).integers(0, 256, (2, 64, 64), dtype=np.uint8)
    for x, y in zip(a.annotate(images), b.annotate(images)):
        np.testing.assert_allclose(x.probabilities, y.probabilities, atol=2e-2)
        np.testing.assert_allclose(x.concept_probabilities, y.concept_probabilities, atol=2e-2)


def test_search_embedding_is_the_cnn_embedding_minus_the_training_mean(with_concepts, tmp_path):
    """What the vector index stores: centred, so cosine is not dominated by the shared ReLU direction."""
    model = Cascade.load(with_concepts.save(tmp_path / "c.pt"))
    images = np.random.default_rng(2).integers(0, 256, (2, 64, 64), dtype=np.uint8)
    with torch.no_grad():
        _, raw = model.cnn(to_input(images, model.config.cnn))
    (a, b) = model.annotate(images)
    expected = (raw - model.mean_embedding).numpy()
    np.testing.assert_allclose(np.stack([a.embedding, b.embedding]), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(a.embedding, raw[0].numpy())
    model.mean_embedding = None                   # a format-1 checkpoint: the raw embedding
    np.testing.assert_allclose(model.annotate(images[:1])[0].embedding, raw[0].numpy(), rtol=1e-5, atol=1e-6)


def _findings_head(model: Cascade) -> FindingsHead:
    """A findings head over two mined labels + OTHER whose logits are known: class j has bias j."""
    dim = model.cnn.embedding_dim + len(model.concept_names)
    return FindingsHead(classes=["cardiomegaly", "normal", OTHER], weight=torch.zeros(3, dim),
                        bias=torch.tensor([0.0, 1.0, 2.0]), concept_mean=torch.zeros(len(model.concept_names)),
                        concept_scale=torch.ones(len(model.concept_names)), concept_weight=0.1)


def test_findings_head_round_trips_and_gives_the_stored_findings_vector(with_concepts, tmp_path):
    with_concepts.findings_head = _findings_head(with_concepts)
    again = Cascade.load(with_concepts.save(tmp_path / "c.pt"))
    assert again.findings_head.classes == ["cardiomegaly", "normal", OTHER]
    (a,) = again.annotate(np.zeros((1, 64, 64), np.uint8))
    p = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()      # softmax of the biases
    expected = np.array([p[0], p[1], np.sqrt(1 - p[0] ** 2 - p[1] ** 2)])   # OTHER left out, remainder last
    np.testing.assert_allclose(a.findings, expected, rtol=1e-5)
    assert abs(np.linalg.norm(a.findings) - 1) < 1e-5


def test_checkpoint_without_findings_head_falls_back_to_the_label_probabilities(with_concepts, tmp_path):
    state = with_concepts.state()
    del state["findings_head"]                    # a file written before the head existed
    torch.save(state, tmp_path / "old.pt")
    old = Cascade.load(tmp_path / "old.pt")
    assert old.findings_head is None
    (a,) = old.annotate(np.zeros((1, 64, 64), np.uint8))
    np.testing.assert_allclose(a.findings, findings_vector(a.probabilities[None])[0], rtol=1e-5)
    assert a.findings.shape == (len(old.label_names) + 1,)


def test_damaged_findings_head_is_a_clear_checkpoint_error(with_concepts, tmp_path):
    with_concepts.findings_head = _findings_head(with_concepts)
    state = with_concepts.state()
    state["findings_head"]["classes"] = ["cardiomegaly", "normal", "not other"]
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="findings head is damaged"):
        Cascade.load(tmp_path / "bad.pt")
    state = with_concepts.state()
    state["findings_head"]["weight"] = torch.zeros(3, 5)      # the wrong number of features for this CNN
    torch.save(state, tmp_path / "narrow.pt")
    with pytest.raises(CheckpointError, match="findings head is damaged.*features"):
        Cascade.load(tmp_path / "narrow.pt")
