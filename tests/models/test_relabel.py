"""Relabelling by k-means on context vectors, including the released notebook's index trap."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from sklearn.cluster import KMeans

from models.relabel import base_label, num_clusters, relabel, split_threshold


def interleaved_corpus(seed: int = 0):
    """Two labels interleaved in the global list (and normals); every 'granuloma' image has a
    hidden subtype placing its context vector near one of 4 far-apart centres."""
    rng = np.random.default_rng(seed)
    labels, subtype, vectors = [], [], []
    centres = rng.normal(size=(4, 8)) * 20
    for i in range(400):
        if i % 2 == 0:                      # 200 granuloma images, every other row
            s = int(rng.integers(4))
            labels.append("granuloma"), subtype.append(s), vectors.append(centres[s] + rng.normal(size=8))
        elif i % 4 == 1:                    # 100 nodule images
            labels.append("nodule"), subtype.append(-1), vectors.append(rng.normal(size=8))
        else:                               # 100 normals
            labels.append("normal"), subtype.append(-2), vectors.append(rng.normal(size=8))
    return labels, np.array(subtype), np.array(vectors)


def same_partition(a, b) -> bool:
    """True when the two assignments group the items identically (names may differ)."""
    pairs = defaultdict(set)
    back = defaultdict(set)
    for x, y in zip(a, b):
        pairs[x].add(y)
        back[y].add(x)
    return all(len(v) == 1 for v in pairs.values()) and all(len(v) == 1 for v in back.values())


def notebook_relabel(labels, vectors, label, k):
    """The released notebook's bug: cluster ids of a label's rows written at positions 0..n-1
    of the *global* list instead of at that label's own rows."""
    out = list(labels)
    rows = [i for i, lab in enumerate(labels) if lab == label]
    km = KMeans(n_clusters=k, n_init=10, random_state=0).fit(vectors[rows])
    for j, c in enumerate(km.labels_):
        out[j] = f"{label}#{c + 1}"                 # group-local index into the global list
    return out


def test_each_image_gets_the_cluster_of_its_own_context_vector():
    labels, subtype, vectors = interleaved_corpus()
    result = relabel(labels, vectors, threshold=150, exclude=("normal",))
    assert result.splits == {"granuloma": 4}
    rows = [i for i, lab in enumerate(labels) if lab == "granuloma"]
    new = [result.labels[i] for i in rows]
    assert same_partition(new, subtype[rows])            # clusters follow the hidden subtypes
    assert all(result.labels[i] == labels[i] for i in range(len(labels)) if labels[i] != "granuloma")
    assert all(base_label(result.labels[i]) == labels[i] for i in range(len(labels)))


def test_the_notebook_trap_would_fail_this_check():
    labels, subtype, vectors = interleaved_corpus()
    buggy = notebook_relabel(labels, vectors, "granuloma", 4)
    rows = [i for i, lab in enumerate(labels) if lab == "granuloma"]
    assert not same_partition([buggy[i] for i in rows], subtype[rows])
    assert any(buggy[i].startswith("granuloma#") for i in range(len(labels)) if labels[i] != "granuloma")


def test_threshold_is_mean_plus_std_of_non_excluded_labels():
    counts = {"normal": 2000, "a": 10, "b": 30, "c": 50}
    assert split_threshold(counts, exclude=("normal",)) == pytest.approx(30 + np.std([10, 30, 50]))
    labels, _, vectors = interleaved_corpus()
    result = relabel(labels, vectors)          # granuloma 200, nodule 100: mean 150 + std 50
    assert result.threshold == pytest.approx(200.0)
    assert set(result.splits) == {"granuloma"}  # n = 200 >= 200; nodule (100) and normal untouched
    assert len(result.label_names) == 4 + 1 + 1


def test_k_is_round_n_over_50_halves_up():
    assert [num_clusters(n) for n in (74, 75, 124, 125, 170, 414)] == [1, 2, 2, 3, 3, 8]


def test_cluster_names_are_stable_and_ordered_by_size():
    labels, _, vectors = interleaved_corpus()
    a = relabel(labels, vectors, threshold=150)
    b = relabel(labels, vectors, threshold=150)
    assert a.labels == b.labels
    sizes = [sum(1 for x in a.labels if x == f"granuloma#{j}") for j in range(1, 5)]
    assert sizes == sorted(sizes, reverse=True)
    assert a.parent["granuloma#3"] == "granuloma"


def test_shape_mismatch_is_an_error():
    from models.errors import ModelError
    with pytest.raises(ModelError, match="context must be"):
        relabel(["a", "b"], np.zeros((3, 4)))
