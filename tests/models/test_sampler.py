"""Data dropout: balanced disease labels, >= 4x augmentation, normals dropped."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from models.errors import ModelError
from models.sampler import data_dropout_epoch

LABELS = ["normal"] * 500 + ["a"] * 40 + ["b"] * 13 + ["c"] * 7


def test_disease_labels_are_balanced_and_augmented_at_least_four_times():
    plan = data_dropout_epoch(LABELS, np.random.default_rng(0), augment=4, normal_ratio=1.0)
    counts = Counter(LABELS[i] for i in plan.indices)
    assert plan.quota == 4 * 40
    assert counts["a"] == counts["b"] == counts["c"] == 160
    per_image = Counter(plan.indices.tolist())
    diseased = [i for i, lab in enumerate(LABELS) if lab != "normal"]
    assert min(per_image[i] for i in diseased) >= 4
    # within a label, repeats differ by at most one
    for label in "abc":
        reps = [per_image[i] for i, lab in enumerate(LABELS) if lab == label]
        assert max(reps) - min(reps) <= 1


def test_normals_are_dropped_to_a_ratio_of_the_quota_without_repeats():
    rng = np.random.default_rng(1)
    plan = data_dropout_epoch(LABELS, rng, augment=4, normal_ratio=0.5)
    normals = [i for i in plan.indices if LABELS[i] == "normal"]
    assert len(normals) == plan.normals == 80
    assert len(set(normals)) == len(normals)
    other = data_dropout_epoch(LABELS, rng, augment=4, normal_ratio=0.5)
    assert set(normals) != {i for i in other.indices if LABELS[i] == "normal"}   # a fresh subset each epoch


def test_normal_share_holds_whatever_the_number_of_labels():
    many = ["normal"] * 30 + [f"d{i}" for i in range(20) for _ in range(10)]
    plan = data_dropout_epoch(many, np.random.default_rng(0), augment=4, normal_share=0.25)
    normals = [i for i in plan.indices if many[i] == "normal"]
    assert len(normals) == round(0.25 / 0.75 * 20 * 40) == 267
    per = Counter(normals)
    assert len(per) == 30 and max(per.values()) - min(per.values()) <= 1     # every normal before repeats


def test_cap_and_shuffle_and_seed():
    a = data_dropout_epoch(LABELS, np.random.default_rng(3), max_per_label=50)
    b = data_dropout_epoch(LABELS, np.random.default_rng(3), max_per_label=50)
    assert a.quota == 50 and np.array_equal(a.indices, b.indices)
    assert Counter(LABELS[i] for i in a.indices)["c"] == 50
    assert not np.array_equal(np.sort(a.indices), a.indices)       # shuffled


def test_only_normals_and_nothing():
    plan = data_dropout_epoch(["normal"] * 10, np.random.default_rng(0))
    assert len(plan.indices) == 10
    with pytest.raises(ModelError):
        data_dropout_epoch([], np.random.default_rng(0))
