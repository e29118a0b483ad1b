"""Shared test fixtures: the real Elasticsearch URL and the shared data copies."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
REPORTS_TGZ = SHARED_DATA / "iu-xray" / "NLMCXR_reports.tgz"
DICOM_METADATA = SHARED_DATA / "iu-xray" / "nlmcxr_dicom_metadata.csv.gz"


@pytest.fixture(scope="session")
def es_url() -> str:
    """URL of the real Elasticsearch server that `make test` starts (scripts/es.sh run)."""
    url = os.environ.get("CXRSEARCH_ES_URL")
    if not url:
        pytest.fail("CXRSEARCH_ES_URL is not set: run the Elasticsearch tests through `make test` "
                    "(or `make es` and export CXRSEARCH_ES_URL=http://127.0.0.1:9200)")
    return url


@pytest.fixture(scope="session")
def real_reports_tgz() -> Path:
    """The real Open-i reports archive: the shared copy, else the one `cxrsearch data fetch` cached."""
    candidates = [REPORTS_TGZ, Path(__file__).resolve().parents[1] / "data" / "raw" / "NLMCXR_reports.tgz"]
    for path in candidates:
        if path.is_file():
            return path
    pytest.fail("the real NLMCXR_reports.tgz is neither in ../shared/data nor in ./data/raw: "
                "run `cxrsearch data fetch` first")
