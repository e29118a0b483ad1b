"""Data dropout (paper section 5.1): one balanced epoch of sample indices at a time."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.errors import ModelError


@dataclass(frozen=True)
class EpochPlan:
    """How one epoch was drawn: the per-label quota and the number of normals kept."""

    indices: np.ndarray        # (S,) shuffled sample indices into the label list
    quota: int                 # samples drawn for every disease label
    normals: int               # normal samples kept (a random subset, no repeats)


def data_dropout_epoch(labels: Sequence[str], rng: np.random.Generator, *, normal_label: str = "normal",
                       augment: int = 4, normal_ratio: float = 1.0, max_per_label: int = 0,
                       normal_share: float = 0.0) -> EpochPlan:
    """Draw one epoch: every disease label gets the same quota, normals are dropped.

    The quota is `augment` x the size of the largest disease label (optionally capped by
    `max_per_label`), so every diseased image appears at least `augment` times (without
    a cap); each image of a label appears floor(quota / n) or one more times. Normal cases
    are a fresh random subset of round(normal_ratio x quota) images, no repeats.

    `normal_share` > 0 replaces normal_ratio: normals make up that fraction of the epoch
    whatever the number of disease labels (so relabelling into many labels does not starve
    the normal class); all normals are used once before any repeats.

    Args:
        labels: the label of every training image.
        rng: numpy random generator (seeded by the caller).
    Returns:
        EpochPlan with shuffled indices.
    """
    groups: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    normals = np.array(groups.pop(normal_label, []), dtype=np.int64)
    if not groups and normals.size == 0:
        raise ModelError("no training images to sample from")
    largest = max((len(v) for v in groups.values()), default=0)
    quota = augment * largest
    if max_per_label > 0:
        quota = min(quota, max_per_label)
    if not groups:
        quota = normals.size
    chosen: list[np.ndarray] = []
    for label in sorted(groups):
        members = np.array(groups[label], dtype=np.int64)
        repeats, rest = divmod(quota, members.size)
        chosen.append(np.repeat(members, repeats))
        if rest:
            chosen.append(rng.choice(members, size=rest, replace=False))
    diseased = quota * len(groups)
    if normal_share > 0 and groups:
        n_normal = int(round(normal_share / (1.0 - normal_share) * diseased)) if normals.size else 0
    else:
        n_normal = min(normals.size, int(round(normal_ratio * quota)))
    if n_normal:
        repeats, rest = divmod(n_normal, normals.size)
        chosen.append(np.repeat(normals, repeats))
        if rest:
            chosen.append(rng.choice(normals, size=rest, replace=False))
    indices = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
    rng.shuffle(indices)
    return EpochPlan(indices=indices, quota=quota, normals=n_normal)
