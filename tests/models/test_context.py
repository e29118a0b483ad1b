"""Joint image/text context vectors (eq. 12) against a hand computation in numpy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.context import context_vectors
from models.rnn import AnnotationDecoder, encode_annotations


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def p(dec, name):
    return getattr(dec.rnn, name).detach().double().numpy()


def hand_context(dec: AnnotationDecoder, emb: np.ndarray, word_ids: list[int]) -> np.ndarray:
    """Unroll the 2-layer cell by its textbook equations; mean of the top state over the words."""
    H = dec.hidden_size
    h = [emb.copy(), emb.copy()]                 # h0 = CNN(I) in every layer
    c = [emb.copy(), emb.copy()]
    tops = []
    for w in word_ids:
        x = dec.words.weight[w].detach().double().numpy()
        for layer in range(2):
            W, U = p(dec, f"weight_ih_l{layer}"), p(dec, f"weight_hh_l{layer}")
            b, d = p(dec, f"bias_ih_l{layer}"), p(dec, f"bias_hh_l{layer}")
            gi, gh = W @ x + b, U @ h[layer] + d
            if dec.cell == "gru":               # PyTorch gate order r, z, n
                r = sigmoid(gi[:H] + gh[:H])
                z = sigmoid(gi[H:2 * H] + gh[H:2 * H])
                n = np.tanh(gi[2 * H:] + r * gh[2 * H:])
                h[layer] = (1 - z) * n + z * h[layer]
            else:                                # PyTorch gate order i, f, g, o
                g = gi + gh
                i, f, o = sigmoid(g[:H]), sigmoid(g[H:2 * H]), sigmoid(g[3 * H:])
                c[layer] = f * c[layer] + i * np.tanh(g[2 * H:3 * H])
                h[layer] = o * np.tanh(c[layer])
            x = h[layer]
        tops.append(h[1] if dec.cell == "gru" else c[1])   # the paper's state h (LSTM: memory)
    return np.mean(tops, axis=0)


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_context_vector_matches_hand_computation(cell, vocab):
    torch.manual_seed(1)
    dec = AnnotationDecoder(cell, len(vocab), embedding_dim=6).eval()
    annotations = [("calcified granuloma", "lung", "upper lobe", "right"), ("cardiomegaly", "mild"), ("normal",)]
    tokens, lengths = encode_annotations(vocab, annotations)
    emb = torch.randn(3, 6)
    with torch.no_grad():
        got = context_vectors(dec, emb, tokens, lengths).double().numpy()
    assert got.shape == (3, 6)
    for row, words in enumerate(annotations):
        want = hand_context(dec, emb[row].double().numpy(), [vocab.id(w) for w in words])
        np.testing.assert_allclose(got[row], want, rtol=1e-5, atol=1e-6)


def test_context_ignores_padding_and_depends_on_image_and_text(vocab):
    dec = AnnotationDecoder("gru", len(vocab), embedding_dim=6).eval()
    tokens, lengths = encode_annotations(vocab, [("cardiomegaly", "mild")])
    emb = torch.randn(1, 6)
    with torch.no_grad():
        base = context_vectors(dec, emb, tokens, lengths)
        garbage = tokens.clone()
        garbage[0, 2:] = vocab.id("lung")                    # words past the length must not count
        assert torch.allclose(base, context_vectors(dec, emb, garbage, lengths))
        assert not torch.allclose(base, context_vectors(dec, emb + 1.0, tokens, lengths))
        other, other_len = encode_annotations(vocab, [("cardiomegaly", "lung")])
        assert not torch.allclose(base, context_vectors(dec, emb, other, other_len))
