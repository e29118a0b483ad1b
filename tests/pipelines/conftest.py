"""Fixtures for pipelines tests: small Open-i XML reports and Kaggle CSVs written into tmp_path."""
from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.pipelines.xml_fixtures import report_xml

# A small corpus with enough repetition for label mining at min_cases=4 (images).
SMALL_CORPUS = {
    **{i: ["normal"] for i in range(1, 11)},
    **{i: ["Calcified Granuloma/lung/upper lobe/right"] for i in range(11, 14)},
    14: ["Calcified Granuloma/lung/base/left", "Calcified Granuloma/lung/hilum/right"],
    **{i: ["Lung/hypoinflation/mild"] for i in range(15, 18)},
    18: ["Lung/hypoinflation", "Opacity/lung/base/left"],
    19: ["Cardiomegaly/mild", "Pulmonary Atelectasis/base/left"],
    20: ["No Indexing"],
    21: ["No Indexing"],
}


@pytest.fixture
def make_reports(tmp_path):
    """Write report XML files into a folder; returns a function(mapping, folder_name) -> folder."""
    def write(corpus: dict = SMALL_CORPUS, name: str = "ecgen-radiology") -> Path:
        folder = tmp_path / name
        folder.mkdir(parents=True, exist_ok=True)
        for rid, major in corpus.items():
            (folder / f"{rid}.xml").write_text(report_xml(rid, major), encoding="utf-8")
        return folder
    return write


@pytest.fixture
def small_tgz(tmp_path, make_reports) -> Path:
    """SMALL_CORPUS as an Open-i style tarball (ecgen-radiology/N.xml)."""
    folder = make_reports()
    path = tmp_path / "NLMCXR_reports.tgz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname="ecgen-radiology")
    return path
