"""Disease label mining (paper section 4) and the annotation word sequences the RNN consumes.

A *term* is what the paper's Table 1 counts: the lower-cased head of a MeSH major annotation
(`calcinosis`, `calcified granuloma`, `catheters, indwelling`), except where the head names an organ
and the finding sits in the first subheading (`Lung/hypoinflation` -> `lung/hypoinflation`,
`Thoracic Vertebrae/degenerative/mild` -> `thoracic vertebrae/degenerative`).

A *label* is a single-term pattern: the images whose annotation reduces to exactly one term, kept
when that pattern covers at least `min_cases` images (30 in the paper, which found 17 labels).
Terms that describe the record rather than a finding (`no indexing`, `technical quality of image
unsatisfactory`) never become labels.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from indexer.records import MeshTerm, Report

# Heads that name an anatomical structure, not a finding: the finding is the first subheading.
ORGAN_HEADS = frozenset({
    "lung", "lungs", "spine", "thoracic vertebrae", "lumbar vertebrae", "cervical vertebrae",
    "aorta", "aorta, thoracic", "diaphragm", "costophrenic angle", "cardiac shadow", "heart",
    "mediastinum", "pleura", "pulmonary artery", "shoulder", "ribs", "sternum", "clavicle", "hilum",
    "trachea", "bronchi", "thorax", "abdomen", "humerus", "heart ventricles", "heart atria",
    "bone and bones", "breast", "neck", "nipple shadow",
})


# Open-i annotations that describe the record, not a finding: never a disease label.
NON_FINDING_TERMS = frozenset({"no indexing", "technical quality of image unsatisfactory"})


def term_of(mesh: MeshTerm) -> str:
    """The Table 1 term of one MeSH annotation (see module docstring)."""
    head = mesh.head_key
    if head in ORGAN_HEADS and mesh.subheadings:
        return f"{head}/{mesh.subheadings[0].lower()}"
    return head


def terms_of(report: Report) -> tuple[str, ...]:
    """Distinct terms of a report's MeSH major annotations, in order of first mention."""
    return tuple(dict.fromkeys(term_of(m) for m in report.mesh_major))


def annotation_words(report: Report) -> tuple[str, ...]:
    """The annotation word sequence of a report: the components of its first MeSH major term.

    `Calcified Granuloma/lung/upper lobe/right` -> ('calcified granuloma', 'lung', 'upper lobe',
    'right'): one word per MeSH component, as the paper's RNN consumes them (the first word is the
    disease label the CNN predicts). Later terms are kept in the manifest's `mesh` field.
    """
    if not report.mesh_major:
        return ()
    first = report.mesh_major[0]
    return tuple(p.lower() for p in (first.head, *first.subheadings))


@dataclass(frozen=True)
class TermCount:
    """Images in which a term appears in total, and together with other terms (overlap)."""

    term: str
    total: int
    overlap: int

    @property
    def overlap_percent(self) -> float:
        return 100.0 * self.overlap / self.total if self.total else 0.0


def term_table(reports: Iterable[Report]) -> list[TermCount]:
    """Table 1: for every term, images in total and images where it appears with other terms.

    Counted per image (each image carries its report's annotation), most frequent first.
    """
    total: Counter = Counter()
    overlap: Counter = Counter()
    for report in reports:
        n = len(report.image_ids)
        if n == 0:
            continue
        terms = terms_of(report)
        for t in terms:
            total[t] += n
            if len(terms) > 1:
                overlap[t] += n
    return [TermCount(t, c, overlap[t]) for t, c in sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))]


def single_label(report: Report) -> str | None:
    """The report's term when its annotation reduces to exactly one term, else None."""
    terms = terms_of(report)
    return terms[0] if len(terms) == 1 else None


def mine_labels(reports: Iterable[Report], min_cases: int = 30) -> dict[str, int]:
    """Single-term patterns covering at least `min_cases` images: label -> image count."""
    counts: Counter = Counter()
    for report in reports:
        label = single_label(report)
        if label is not None and label not in NON_FINDING_TERMS and report.image_ids:
            counts[label] += len(report.image_ids)
    return {label: n for label, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_cases}
