"""The findings head's fit (pipelines.train.findings) and the asymmetric 'findings' search it feeds."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from indexer.vectors.base import findings_query
from models.findings import OTHER
from models.findings import vector as findings_vector
from pipelines.train.findings import class_names, fit_findings_head, head_accuracy


def _corpus(n: int = 60, seed: int = 0):
    """Three clusters of 8-d 'embeddings': 'nodule', 'normal' and unlabelled (several findings), in 3 splits."""
    rng = np.random.default_rng(seed)
    centres = {"nodule": np.eye(8)[0] * 4, "normal": np.eye(8)[1] * 4, "": np.eye(8)[2] * 4}
    entries, rows = [], []
    for i in range(n):
        label = ["nodule", "normal", ""][i % 3]
        split = ["train", "train", "val", "test"][i % 4]
        entries.append(SimpleNamespace(label=label, split=split, image_id=f"i{i}"))
        rows.append(centres[label] + rng.normal(0, 0.3, 8))
    concepts = np.array([[1.0 if e.label == "nodule" else 0.0] for e in entries])   # (N, 1)
    return entries, np.array(rows), concepts


def test_head_learns_labels_and_other_from_train_and_val_only():
    entries, search, concepts = _corpus()
    head = fit_findings_head(search, concepts, entries)
    assert head.classes == ["nodule", "normal", OTHER] and head.weight.shape == (3, 9)
    assert class_names(entries[:3]) == ["nodule", "normal", OTHER]
    assert head_accuracy(head, search, concepts, entries, "test")["accuracy"] == 100.0
    probs = head.probabilities(torch.tensor(search, dtype=torch.float32), torch.tensor(concepts, dtype=torch.float32))
    assert torch.allclose(probs.sum(1), torch.ones(len(entries)), atol=1e-5)
    # a test image's label never reaches the fit: relabelling every test image changes nothing
    swapped = [SimpleNamespace(**{**vars(e), "label": "normal"}) if e.split == "test" else e for e in entries]
    again = fit_findings_head(search, concepts, swapped)
    assert torch.allclose(again.weight, head.weight) and torch.allclose(again.bias, head.bias)


def test_head_without_concepts_and_a_class_missing_from_the_fit():
    entries, search, _ = _corpus()
    labelled = [e for e in entries if e.label]
    rows = [i for i, e in enumerate(entries) if e.label]
    head = fit_findings_head(search[rows], None, labelled)      # no unlabelled image: OTHER never fitted
    assert head.classes == ["nodule", "normal", OTHER] and head.concept_mean.numel() == 0
    probs = head.probabilities(torch.tensor(search[rows], dtype=torch.float32), None)
    assert float(probs[:, -1].max()) < 1e-6                      # OTHER gets ~0
    with pytest.raises(ValueError, match="at least two classes"):
        fit_findings_head(search[:1], None, entries[:1])


def test_findings_query_ranks_by_the_probability_of_the_same_single_finding():
    # stored vectors of 4 images over 2 findings: confident A, confident B, 'several findings', unsure A
    p = np.array([[0.9, 0.05], [0.05, 0.9], [0.1, 0.1], [0.5, 0.1]], dtype=np.float32)
    stored = findings_vector(p)                                              # (4, 3) unit rows
    np.testing.assert_allclose(np.linalg.norm(stored, axis=1), 1, rtol=1e-6)
    q = findings_query(stored[3:4])                                          # ask with the unsure A
    assert q[0, -1] == 0 and abs(np.linalg.norm(q) - 1) < 1e-6
    cosine = stored @ q[0]
    np.testing.assert_allclose(cosine, p @ p[3] / np.linalg.norm(p[3]), rtol=1e-5)   # p_q . p_n / |p_q|
    assert list(np.argsort(-cosine)[:2]) == [0, 3]      # the confident A before the unsure A itself
    symmetric = stored @ stored[3]
    assert np.argsort(-symmetric)[1] == 2               # a plain cosine would put 'several findings' next
    only_other = findings_vector(np.zeros((1, 2)))       # nothing but 'several findings': kept as stored
    np.testing.assert_allclose(findings_query(only_other), only_other)


def test_findings_query_takes_one_vector_or_rows_and_refuses_other_shapes():
    from indexer.errors import InvalidVectors
    from indexer.vectors.base import findings_probability

    one = findings_vector(np.array([[0.6, 0.2]]))[0]                         # (3,)
    np.testing.assert_allclose(findings_query(one), findings_query(one[None]))   # (1, 3) either way
    assert findings_query(one).shape == (1, 3)
    np.testing.assert_allclose(findings_probability(one), [np.hypot(0.6, 0.2)], rtol=1e-6)
    for bad in (np.zeros((2, 2, 3)), np.ones((2, 1))):
        with pytest.raises(InvalidVectors):
            findings_query(bad)
