"""Open-i report XML parsing: good records, and every kind of bad input in strict and bulk mode."""
from __future__ import annotations

import pytest

from indexer.records import MeshTerm
from pipelines.errors import ReportParseError
from pipelines.sources.openi import load_reports, parse_report
from tests.pipelines.xml_fixtures import report_xml


def test_parses_sections_terms_images_and_licence():
    xml = report_xml(7, ["Calcified Granuloma/lung/upper lobe/right", "Cardiomegaly/mild"],
                     images=["CXR7_IM-0001-1001"], automatic=["calcified granuloma"]).encode()
    report, warnings = parse_report(xml, "7.xml")
    assert warnings == []
    assert report.report_id == "7"
    assert report.indication == "Cough" and report.impression == "No acute disease."
    assert report.mesh_major[0] == MeshTerm("Calcified Granuloma/lung/upper lobe/right", "Calcified Granuloma",
                                            ("lung", "upper lobe", "right"))
    assert report.mesh_major[1].key == "cardiomegaly/mild"
    assert [t.head for t in report.mesh_automatic] == ["calcified granuloma"]
    assert report.image_ids == ("CXR7_IM-0001-1001",)
    assert report.licence == "http://creativecommons.org/licenses/by-nc-nd/4.0/"


def test_empty_section_is_none_not_an_error():
    xml = report_xml(3, ["normal"], sections={"COMPARISON": "", "INDICATION": "x", "FINDINGS": "", "IMPRESSION": "ok"})
    report, warnings = parse_report(xml.encode(), "3.xml")
    assert report.comparison is None and report.findings is None and warnings == []


@pytest.mark.parametrize("data, problem", [
    (report_xml(1, ["normal"])[:-40].encode(), "malformed or truncated XML"),
    (b"<eCitation><MeSH><major>normal</major></MeSH>", "malformed or truncated XML"),
    (report_xml(1, []).encode(), "empty <MeSH> block"),
    (report_xml(1, ["normal"]).replace("<MeSH><major>normal</major></MeSH>", "").encode(), "no <MeSH> block"),
    (report_xml(1, ["Opacity"]).replace("Cough", "Cough \xe9").encode("latin-1"), "wrong encoding"),
])
def test_unusable_records_raise_naming_file_and_problem(data, problem):
    with pytest.raises(ReportParseError) as info:
        parse_report(data, "reports/1.xml")
    assert "reports/1.xml" in str(info.value) and problem in str(info.value)


def test_warnings_for_missing_section_unknown_tag_and_missing_image_file():
    xml = report_xml(5, ["Nodule/lung/right"], images=["CXR5_A", "CXR5_B"], drop_sections=("FINDINGS",),
                     extra_mesh="<minor>nodule</minor>").encode()
    report, warnings = parse_report(xml, "5.xml", image_exists=lambda i: i == "CXR5_A")
    assert report.findings is None
    assert report.image_ids == ("CXR5_A",)
    assert "missing section FINDINGS" in warnings
    assert "unknown tag <minor> in <MeSH> ignored" in warnings
    assert "image CXR5_B has no file" in warnings


def test_bulk_mode_skips_bad_files_counts_them_and_keeps_going(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "1.xml").write_text(report_xml(1, ["normal"]))
    (folder / "2.xml").write_text(report_xml(2, ["Opacity"])[:100])           # truncated
    (folder / "3.xml").write_text(report_xml(3, []))                          # empty MeSH
    (folder / "4.xml").write_bytes(report_xml(4, ["Mass"]).replace("Cough", "\xff\xfe").encode("latin-1"))
    (folder / "5.xml").write_text(report_xml(5, ["Nodule"], drop_sections=("IMPRESSION",)))
    (folder / "6.xml").write_text(report_xml(5, ["Nodule"]))                  # duplicate id 5
    reports, summary = load_reports(folder)
    assert [r.report_id for r in reports] == ["1", "5"]
    assert summary.loaded == 2
    assert summary.skipped == {"malformed or truncated XML": 1, "empty <MeSH> block: no <major> term": 1,
                               "wrong encoding": 1, "duplicate report id": 1}
    assert summary.warnings["missing section IMPRESSION"] == 1
    text = summary.format()
    assert "skipped 4" in text and "2.xml" in text


def test_strict_mode_stops_at_first_problem_naming_the_file(tmp_path):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "1.xml").write_text(report_xml(1, ["normal"]))
    (folder / "2.xml").write_text(report_xml(2, ["normal"], drop_sections=("COMPARISON",)))
    with pytest.raises(ReportParseError, match=r"2\.xml: missing section COMPARISON"):
        load_reports(folder, strict=True)


def test_reads_tarball_like_folder(small_tgz, make_reports):
    from_tar, _ = load_reports(small_tgz)
    from_dir, _ = load_reports(make_reports())
    assert [r.report_id for r in from_tar] == [r.report_id for r in from_dir]
    assert [r.report_id for r in from_tar][:3] == ["1", "2", "3"]  # natural order, not 1, 10, 11


def test_mesh_term_parse_rejects_empty_and_normalises_space():
    assert MeshTerm.parse("  Aorta,  Thoracic/tortuous/ ").key == "aorta, thoracic/tortuous"
    with pytest.raises(ValueError):
        MeshTerm.parse(" / ")
