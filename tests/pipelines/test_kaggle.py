"""The Kaggle re-packaging (indiana_reports.csv + indiana_projections.csv) reads into the same records."""
from __future__ import annotations

import csv

import pytest

from pipelines.errors import ReportParseError
from pipelines.sources.kaggle import kaggle_filename_to_image_id, load_kaggle


def write_kaggle(folder, reports, projections, images=None):
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "indiana_reports.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"])
        w.writerows(reports)
    with open(folder / "indiana_projections.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["uid", "filename", "projection"])
        w.writerows(projections)
    if images is not None:
        (folder / "images_normalized").mkdir()
        for name in images:
            (folder / "images_normalized" / name).write_bytes(b"png")
    return folder


def test_filename_maps_to_open_i_image_id():
    assert kaggle_filename_to_image_id("10_IM-0002-1001.dcm.png") == "CXR10_IM-0002-1001"
    assert kaggle_filename_to_image_id("images_normalized/CXR3_IM-1.png") == "CXR3_IM-1"


def test_reads_reports_terms_and_projections(tmp_path):
    folder = write_kaggle(tmp_path / "k", [
        ["1", "normal", "normal", "Xray Chest PA and Lateral", "Positive TB test", "None.", "Clear lungs.",
         "Normal chest x-XXXX."],
        ["2", "Cardiomegaly/borderline;Pulmonary Artery/enlarged", "Cardiomegaly", "", "", "", "",
         "Borderline cardiomegaly."],
    ], [["1", "1_IM-0001-4001.dcm.png", "Frontal"], ["1", "1_IM-0001-3001.dcm.png", "Lateral"],
        ["2", "2_IM-0652-1001.dcm.png", "Frontal"]])
    reports, projections, summary = load_kaggle(folder)
    assert summary.loaded == 2
    assert reports[0].image_ids == ("CXR1_IM-0001-4001", "CXR1_IM-0001-3001")
    assert reports[0].indication == "Positive TB test" and reports[1].findings is None
    assert [t.key for t in reports[1].mesh_major] == ["cardiomegaly/borderline", "pulmonary artery/enlarged"]
    assert projections["CXR1_IM-0001-3001"] == "Lateral"


def test_rows_without_mesh_are_skipped_or_raise_in_strict_mode(tmp_path):
    folder = write_kaggle(tmp_path / "k", [["1", "", "", "", "", "", "", ""], ["2", "normal", "", "", "", "", "", ""]],
                          [["2", "2_IM-1.dcm.png", "Frontal"]])
    reports, _, summary = load_kaggle(folder)
    assert [r.report_id for r in reports] == ["2"]
    assert summary.skipped == {"empty <MeSH> block: no <major> term": 1}
    with pytest.raises(ReportParseError, match="indiana_reports.csv:2"):
        load_kaggle(folder, strict=True)


def test_image_ids_without_a_file_are_dropped_when_images_folder_exists(tmp_path):
    folder = write_kaggle(tmp_path / "k", [["1", "normal", "", "", "", "", "", ""]],
                          [["1", "1_IM-A.dcm.png", "Frontal"], ["1", "1_IM-B.dcm.png", "Lateral"]],
                          images=["1_IM-A.dcm.png"])
    reports, _, summary = load_kaggle(folder)
    assert reports[0].image_ids == ("CXR1_IM-A",)
    assert summary.warnings == {"image id without a file": 1}


def test_missing_csv_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="indiana_reports.csv"):
        load_kaggle(tmp_path)
