"""Evaluation metrics on hand-made inputs: similar-image precision (other reports only) and the label prior."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.manifest import ManifestEntry
from pipelines.train.analysis import similar_precision
from pipelines.train.data import Corpus


def entry(i: int, report: str, split: str, label: str | None) -> ManifestEntry:
    return ManifestEntry(f"CXR{i}", report, split, label, label or "opacity", (label or "opacity",), "frontal",
                         ((label or "Opacity"),))


def test_similar_precision_counts_other_reports_only_and_reports_the_prior():
    entries = [entry(0, "r0", "test", "nodule"),        # the query
               entry(1, "r0", "train", "nodule"),       # same report: never a neighbour
               entry(2, "r1", "train", "nodule"),
               entry(3, "r2", "train", "normal"),
               entry(4, "r3", "train", None),           # no mined label: a miss in pool 'all', absent in 'labelled'
               entry(5, "r4", "test", "normal")]        # normal test images are not queries
    vectors = np.array([[1, 0], [1, 0], [0.9, 0.1], [0, 1], [0.95, 0.05], [0, 1]], dtype=np.float32)
    corpus = Corpus(entries, np.zeros((6, 4, 4), np.uint8), {})
    everything = similar_precision(vectors, corpus, k=2, pool="all")
    assert everything["queries"] == 1
    assert everything["precision"] == pytest.approx(0.5)            # neighbours CXR4 (miss), CXR2 (hit)
    assert everything["prior"] == pytest.approx(1 / 4)              # 1 nodule among 4 other-report images
    labelled = similar_precision(vectors, corpus, k=2, pool="labelled")
    assert labelled["precision"] == pytest.approx(0.5)              # CXR2 (hit), then CXR3 or CXR5 (miss)
    assert labelled["prior"] == pytest.approx(1 / 3, abs=1e-4)             # rounded to 4 decimals
    assert set(everything["per_label"]) == {"nodule"}
