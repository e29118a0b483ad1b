"""The prepared report corpus: reports + views -> labels, splits and manifest entries."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from indexer.records import Report
from pipelines.errors import DataNotPreparedError
from pipelines.labels import annotation_words, mine_labels, single_label, term_of
from pipelines.manifest import ManifestEntry
from pipelines.records import LoadSummary
from pipelines.settings import reports_dir
from pipelines.sources.fetch import DICOM_METADATA
from pipelines.sources.openi import load_reports
from pipelines.sources.views import assign_views, load_view_positions
from pipelines.splits import split_reports


@dataclass
class Corpus:
    """Reports, per-image view positions, and how loading went."""

    reports: list[Report]
    positions: dict[str, str] = field(default_factory=dict)
    summary: LoadSummary = field(default_factory=LoadSummary)

    @property
    def n_images(self) -> int:
        return sum(len(r.image_ids) for r in self.reports)


def load_corpus(root: Path, strict: bool = False, progress: bool = False, images: Path | None = None) -> Corpus:
    """Load the fetched reports (and DICOM view positions when present) from data directory `root`.

    With `images` (a folder of `<image id>.png`, such as Open-i's NLMCXR_png), image ids without a
    file are dropped and counted (strict mode stops at the first).
    """
    folder = reports_dir(root)
    if not folder.is_dir():
        raise DataNotPreparedError(f"{folder}: no reports; run `cxrsearch data fetch` first")
    image_exists = None
    if images is not None:
        if not Path(images).is_dir():
            raise DataNotPreparedError(f"--images {images}: no such folder")
        present = {p.stem for p in Path(images).glob("*.png")}
        image_exists = present.__contains__
    reports, summary = load_reports(folder, strict=strict, progress=progress, image_exists=image_exists)
    meta = root / "raw" / DICOM_METADATA.name
    positions = load_view_positions(meta) if meta.is_file() else {}
    return Corpus(reports, positions, summary)


def build_manifest(corpus: Corpus, min_cases: int = 30, seed: int = 0) -> tuple[list[ManifestEntry], dict[str, int]]:
    """Mine labels, split by report and produce one manifest entry per image.

    Returns:
        The entries (sorted by report, then image order) and the mined labels with image counts.
    """
    labels = mine_labels(corpus.reports, min_cases=min_cases)
    report_label = {}
    for r in corpus.reports:
        label = single_label(r)
        report_label[r.report_id] = label if label in labels else None
    splits = split_reports(corpus.reports, report_label, seed=seed)
    entries = []
    for r in corpus.reports:
        if not r.image_ids:
            continue
        views = assign_views(r.image_ids, corpus.positions)
        words = annotation_words(r)
        first = term_of(r.mesh_major[0])
        for image_id in r.image_ids:
            entries.append(ManifestEntry(
                image_id=image_id, report_id=r.report_id, split=splits[r.report_id],
                label=report_label[r.report_id], first_term=first, words=words,
                view=views[image_id], mesh=tuple(m.raw for m in r.mesh_major)))
    return entries, labels
