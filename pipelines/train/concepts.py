"""Concept-head targets and evaluation.

The concept keys of every image (indexer.concepts), the kept list, per-concept AUC.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from pipelines.manifest import ManifestEntry


def image_concepts(entries: Sequence[ManifestEntry]) -> list[set[str]]:
    """The concept keys (`findings:opacity`, `laterality:right`, ...) of every entry, from its MeSH terms.

    Read through the same vocabulary and function that fill the index documents, so the head predicts
    exactly the keys search filters and ranks on.
    """
    from indexer.concepts import concepts_of_terms
    from indexer.vocabulary import Vocabulary as MeshVocabulary

    vocabulary = MeshVocabulary.load()
    return [concepts_of_terms(e.mesh, vocabulary) for e in entries]


def select_concepts(keys: Sequence[set[str]], rows: Sequence[int], min_positives: int) -> list[str]:
    """Concept keys with at least `min_positives` positive images among `rows` (the training split), sorted."""
    counts = Counter(k for r in rows for k in keys[r])
    return sorted(k for k, n in counts.items() if n >= min_positives)


def target_matrix(keys: Sequence[set[str]], names: Sequence[str]) -> torch.Tensor:
    """(N, K) float 0/1 targets: row i, column j is 1 when image i has concept names[j]."""
    index = {name: j for j, name in enumerate(names)}
    targets = torch.zeros(len(keys), len(names))
    for i, row in enumerate(keys):
        for k in row:
            if k in index:
                targets[i, index[k]] = 1.0
    return targets


def auc_table(probs: np.ndarray, targets: np.ndarray, names: Sequence[str]) -> list[dict]:
    """Per-concept ROC AUC, positives and prevalence of (N, K) probabilities vs (N, K) 0/1 targets.

    AUC is None for a concept without both positive and negative images.
    """
    from sklearn.metrics import roc_auc_score

    table = []
    for j, name in enumerate(names):
        y = targets[:, j]
        positives = int(y.sum())
        auc = (float(roc_auc_score(y, probs[:, j])) if 0 < positives < len(y) else None)
        table.append({"concept": name, "auc": None if auc is None else round(auc, 4), "positives": positives,
                      "images": int(len(y))})
    return table


def auc_summary(table: Sequence[dict]) -> dict:
    """Mean and median AUC over concepts that have one, and how many were scored."""
    values = [row["auc"] for row in table if row["auc"] is not None]
    if not values:
        return {"concepts": 0, "mean_auc": None, "median_auc": None}
    return {"concepts": len(values), "mean_auc": round(float(np.mean(values)), 4),
            "median_auc": round(float(np.median(values)), 4)}
