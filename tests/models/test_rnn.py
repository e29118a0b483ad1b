"""Annotation decoders: shapes, initial state = CNN(I), loss, greedy sampling."""
from __future__ import annotations

import pytest
import torch

from models.errors import ModelError
from models.rnn import AnnotationDecoder, build_decoder, encode_annotations
from models.vocab import WordVocabulary


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_forward_shapes_and_two_layers(cell, vocab):
    dec = AnnotationDecoder(cell, len(vocab), embedding_dim=32)
    assert dec.hidden_size == 32 and dec.rnn.num_layers == 2
    tokens, lengths = encode_annotations(vocab, [("cardiomegaly", "mild"), ("normal",)])
    assert tokens.shape == (2, 6) and lengths.tolist() == [2, 1]
    logits = dec(torch.randn(2, 32), tokens[:, :-1])
    assert logits.shape == (2, 5, len(vocab))
    assert torch.isfinite(dec.loss(torch.randn(2, 32), tokens))


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_initial_state_is_the_cnn_embedding(cell, vocab):
    dec = AnnotationDecoder(cell, len(vocab), embedding_dim=16)
    emb = torch.randn(3, 16)
    state = dec.init_state(emb)
    h = state[0] if cell == "lstm" else state
    assert h.shape == (2, 3, 16)
    assert torch.equal(h[0], emb) and torch.equal(h[1], emb)
    if cell == "lstm":
        assert torch.equal(state[1][1], emb)


def test_projection_when_sizes_differ(vocab, small_rnn_config):
    dec = build_decoder(small_rnn_config, len(vocab), embedding_dim=40)
    assert isinstance(dec.init_proj, torch.nn.Linear) and dec.init_proj.in_features == 40
    assert dec.init_state(torch.randn(2, 40)).shape == (2, 2, 16)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_learns_image_dependent_annotations(cell, vocab):
    """Same first word, different continuation decided by the image embedding alone."""
    torch.manual_seed(0)
    dec = AnnotationDecoder(cell, len(vocab), embedding_dim=8, hidden_size=16)
    emb = torch.zeros(2, 8)
    emb[0, 0], emb[1, 1] = 3.0, 3.0
    tokens, _ = encode_annotations(vocab, [("lung", "hypoinflation"), ("lung", "base", "left")])
    opt = torch.optim.Adam(dec.parameters(), lr=0.02)
    first = dec.loss(emb, tokens).item()
    for _ in range(150):
        opt.zero_grad()
        loss = dec.loss(emb, tokens)
        loss.backward()
        opt.step()
    assert loss.item() < first / 10
    out = dec.eval().greedy(emb, tokens[:, 0])
    assert vocab.decode(out[0].tolist()) == ["lung", "hypoinflation"]
    assert vocab.decode(out[1].tolist()) == ["lung", "base", "left"]


def test_greedy_starts_with_given_word_and_pads_with_eos(vocab):
    dec = AnnotationDecoder("gru", len(vocab), embedding_dim=8).eval()
    first = torch.tensor([vocab.id("opacity"), vocab.eos_id])
    out = dec.greedy(torch.randn(2, 8), first, max_words=5)
    assert out.shape == (2, 5)
    assert out[0, 0] == vocab.id("opacity")
    assert (out[1] == vocab.eos_id).all()                      # finished rows stay finished
    assert not ((out == WordVocabulary.pad_id) | (out == WordVocabulary.unk_id)).any()


def test_empty_annotation_is_an_error(vocab):
    with pytest.raises(ModelError):
        encode_annotations(vocab, [()])
