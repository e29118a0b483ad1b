"""Cascade relabelling (paper section 7): split frequent labels by k-means on context vectors."""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans

from models.errors import ModelError

CLUSTER_SEP = "#"


@dataclass
class RelabelResult:
    """New label per image (same order as the input) and how each old label was split."""

    labels: list[str]
    threshold: float                                  # mean + std of the considered label counts
    splits: dict[str, int] = field(default_factory=dict)   # old label -> k (only labels split)
    parent: dict[str, str] = field(default_factory=dict)   # new label -> old label

    @property
    def label_names(self) -> list[str]:
        """Sorted distinct new labels."""
        return sorted(set(self.labels))


def base_label(label: str) -> str:
    """`calcified granuloma#2` -> `calcified granuloma`."""
    return label.split(CLUSTER_SEP, 1)[0]


def num_clusters(n: int, cases_per_cluster: int = 50) -> int:
    """k = Round(n / cases_per_cluster), rounding halves up (not Python's banker's rounding)."""
    return int(math.floor(n / cases_per_cluster + 0.5))


def split_threshold(counts: dict[str, int], exclude: Sequence[str] = ()) -> float:
    """mean + (population) standard deviation of the label counts, excluded labels left out."""
    values = np.array([n for label, n in counts.items() if label not in set(exclude)], dtype=float)
    if values.size == 0:
        return math.inf
    return float(values.mean() + values.std())


def relabel(labels: Sequence[str], context: np.ndarray, *, cases_per_cluster: int = 50,
            exclude: Sequence[str] = ("normal",), seed: int = 0, threshold: float | None = None) -> RelabelResult:
    """Split every label with n >= mean + std images into k = round(n/50) k-means clusters.

    Each image receives the cluster of *its own* context vector: cluster ids computed on
    the rows of one label are mapped back through that label's row indices into the
    global list (the released notebook indexed the global list with group-local
    positions, handing clusters to the wrong images).

    Args:
        labels: label of every image (N,).
        context: (N, H) joint image/text context vectors, row i belongs to labels[i].
        cases_per_cluster: the 50 of k = round(n / 50).
        exclude: labels never split and left out of the mean + std statistics (normal).
        seed: k-means seed.
        threshold: override the mean + std threshold.
    Returns:
        RelabelResult with new labels like `calcified granuloma#1`.
    """
    labels = list(labels)
    context = np.asarray(context, dtype=np.float64)
    if context.ndim != 2 or context.shape[0] != len(labels):
        raise ModelError(f"context must be (N, H) with N = {len(labels)} labels, got {context.shape}")
    counts = Counter(labels)
    limit = split_threshold(counts, exclude) if threshold is None else threshold
    result = RelabelResult(labels=list(labels), threshold=limit)
    for label in sorted(counts):
        n = counts[label]
        k = num_clusters(n, cases_per_cluster)
        if label in set(exclude) or n < limit or k < 2:
            result.parent[label] = label
            continue
        rows = np.flatnonzero(np.array([lab == label for lab in labels]))          # global indices
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(context[rows])
        order = _cluster_order(km.labels_, k)
        for local, global_index in enumerate(rows):                               # local -> global
            result.labels[global_index] = f"{label}{CLUSTER_SEP}{order[km.labels_[local]] + 1}"
        result.splits[label] = k
        for j in range(k):
            result.parent[f"{label}{CLUSTER_SEP}{j + 1}"] = label
    return result


def _cluster_order(assignment: np.ndarray, k: int) -> dict[int, int]:
    """Renumber clusters by size (largest first, ties by first appearance) for stable names."""
    sizes = np.bincount(assignment, minlength=k)
    first = {c: int(np.flatnonzero(assignment == c)[0]) if sizes[c] else len(assignment) for c in range(k)}
    ranked = sorted(range(k), key=lambda c: (-sizes[c], first[c]))
    return {c: rank for rank, c in enumerate(ranked)}
