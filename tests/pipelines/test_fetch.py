"""`data fetch`: local archives, the wheel read as a zip, checksums, and doing nothing twice."""
from __future__ import annotations

import zipfile

import pytest

from pipelines.errors import DataFetchError
from pipelines.sources import fetch as fetch_mod
from pipelines.sources.fetch import DICOM_METADATA, REPORTS, fetch, sha256_of


def test_local_tarball_with_wrong_checksum_is_refused_unless_no_verify(tmp_path, small_tgz):
    with pytest.raises(DataFetchError, match="does not match the published NLMCXR_reports.tgz"):
        fetch(tmp_path / "data", from_path=small_tgz)
    done = fetch(tmp_path / "data", from_path=small_tgz, verify=False)
    assert done["reports"].startswith("copied")
    assert len(list((tmp_path / "data" / "reports" / "ecgen-radiology").glob("*.xml"))) == 21


def test_folder_of_xml_is_copied(tmp_path, make_reports):
    done = fetch(tmp_path / "data", from_path=make_reports())
    assert done["reports"] == f"copied 21 files from {tmp_path / 'ecgen-radiology'}"
    assert "not available" in done["dicom_metadata"] or done["dicom_metadata"] in ("copied", "from wheel")


def test_missing_source_is_a_clear_error(tmp_path):
    with pytest.raises(DataFetchError, match="no such file or folder"):
        fetch(tmp_path / "data", from_path=tmp_path / "nope.tgz")


def test_real_archive_verified_extracted_once(tmp_path, real_reports_tgz, real_metadata):
    root = tmp_path / "data"
    done = fetch(root, from_path=real_reports_tgz, metadata_path=real_metadata)
    assert done == {"reports": "copied, 3955 report files", "dicom_metadata": "copied"}
    marker = root / "reports" / ".extracted"
    mtime = marker.stat().st_mtime_ns
    again = fetch(root)  # no source: the cached, verified copies are used
    assert again == {"reports": "cached, 3955 report files", "dicom_metadata": "cached"}
    assert marker.stat().st_mtime_ns == mtime


def test_default_source_reads_members_out_of_the_wheel_zip(tmp_path, real_reports_tgz, real_metadata, monkeypatch):
    """The PyPI wheel is opened as a zip; a wheel already in the cache is not downloaded again."""
    wheels = tmp_path / "data" / "cache" / "wheels"
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "torchxrayvision-1.5.7-py3-none-any.whl", "w") as zf:
        zf.write(real_reports_tgz, REPORTS.wheel_member)
        zf.write(real_metadata, DICOM_METADATA.wheel_member)

    def no_pip(*a, **k):
        raise AssertionError("pip must not run when the wheel is cached")
    monkeypatch.setattr(fetch_mod.subprocess, "run", no_pip)
    done = fetch(tmp_path / "data")
    assert done == {"reports": "from wheel, 3955 report files", "dicom_metadata": "from wheel"}
    assert sha256_of(tmp_path / "data" / "raw" / REPORTS.name) == REPORTS.sha256


def test_corrupt_wheel_member_fails_checksum(tmp_path):
    wheels = tmp_path / "data" / "cache" / "wheels"
    wheels.mkdir(parents=True)
    with zipfile.ZipFile(wheels / "torchxrayvision-1.5.7-py3-none-any.whl", "w") as zf:
        zf.writestr(REPORTS.wheel_member, b"not the archive")
    with pytest.raises(DataFetchError, match="failed its sha256 check"):
        fetch(tmp_path / "data")
    assert not (tmp_path / "data" / "raw" / REPORTS.name).exists()
