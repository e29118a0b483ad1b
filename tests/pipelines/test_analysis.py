"""Evaluation metrics on hand-made inputs: similar-image precision (other reports only) and the label prior."""
from __future__ import annotations

import numpy as np
import pytest

from pipelines.manifest import ManifestEntry
from pipelines.train.analysis import shares_finding, similar_precision
from pipelines.train.data import Corpus
from pipelines.train.reports import similar_markdown


def entry(i: int, report: str, split: str, label: str | None, view: str = "frontal") -> ManifestEntry:
    return ManifestEntry(f"CXR{i}", report, split, label, label or "opacity", (label or "opacity",), view,
                         ((label or "Opacity"),))


def test_similar_precision_counts_other_reports_only_and_reports_the_prior():
    entries = [entry(0, "r0", "test", "nodule"),        # the query
               entry(1, "r0", "train", "nodule"),       # same report: never a neighbour
               entry(2, "r1", "train", "nodule"),
               entry(3, "r2", "train", "normal"),
               entry(4, "r3", "train", None, "lateral"),  # no mined label: a miss in pool 'all', absent in 'labelled'
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
    assert everything["shares"] == pytest.approx(0.5)               # CXR4's report carries no nodule
    assert everything["same_view"] == pytest.approx(0.5)            # CXR4 is lateral, CXR2 frontal like the query
    assert labelled["same_view"] == pytest.approx(1.0)


def test_shares_finding_reads_every_part_of_the_label_in_one_term_case_insensitively():
    assert shares_finding("nodule", ("Cardiomegaly/mild", "Nodule/lung/base/left"))
    assert shares_finding("lung/hypoinflation", ("Lung/hypoinflation/mild",))
    assert not shares_finding("lung/hypoinflation", ("Lung/hyperdistention", "Hypoinflation"))  # parts split over terms
    assert not shares_finding("calcified granuloma", ("Granuloma/lung",))
    assert not shares_finding("nodule", ())


def test_similar_precision_credits_a_multi_finding_neighbour_only_under_shares_the_finding():
    def multi(i: int, report: str, mesh: tuple[str, ...]) -> ManifestEntry:
        return ManifestEntry(f"CXR{i}", report, "train", None, mesh[0].split("/")[0].lower(), ("x",), "frontal", mesh)

    entries = [entry(0, "r0", "test", "nodule"),                                # the query
               multi(1, "r1", ("Cardiomegaly", "Nodule/lung/base/left")),      # carries the nodule: shares it
               multi(2, "r2", ("Opacity/lung",)),                              # does not
               entry(3, "r3", "train", "nodule"),                              # same label: a hit by both rules
               entry(4, "r4", "train", "normal")]
    vectors = np.array([[1, 0], [0.99, 0.01], [0.98, 0.02], [0.5, 0.5], [0, 1]], dtype=np.float32)
    corpus = Corpus(entries, np.zeros((5, 4, 4), np.uint8), {})
    result = similar_precision(vectors, corpus, k=2, pool="all")               # neighbours CXR1, CXR2
    assert result["precision"] == pytest.approx(0.0)
    assert result["shares"] == pytest.approx(0.5)
    assert result["shares_prior"] == pytest.approx(2 / 4)                      # CXR1 and CXR3 of 4 candidates
    assert result["per_label"]["nodule"]["shares"] == pytest.approx(0.5)
    page = similar_markdown({"all": {"embedding": result}, "labelled": {"embedding": result}}, "header")
    assert "| all | embedding | 0.000 | 0.2500 | 0.500 | 0.5000 |" in page
    assert "| nodule | 1 | 0.000 | 0.2500 | 0.500 | 0.5000 |" in page


def test_similar_precision_ranks_by_given_scores_when_asked():
    entries = [entry(0, "r0", "test", "nodule"), entry(1, "r1", "train", "nodule"), entry(2, "r2", "train", "normal")]
    vectors = np.array([[1, 0], [0, 1], [1, 0.01]], dtype=np.float32)   # by cosine the normal image is nearest
    corpus = Corpus(entries, np.zeros((3, 4, 4), np.uint8), {})
    assert similar_precision(vectors, corpus, k=1)["precision"] == 0.0
    boosted = similar_precision(vectors, corpus, k=1, scores=lambda q: np.array([0.0, 1.0, 0.5]))
    assert boosted["precision"] == 1.0
