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


@pytest.fixture
def es_alias(es_url):
    """A fresh alias name on the real server; every index whose name starts with it is deleted afterwards."""
    import uuid

    from elasticsearch import Elasticsearch

    alias = f"cxrsearch-test-{uuid.uuid4().hex[:10]}"
    yield alias
    client = Elasticsearch(es_url)
    try:
        names = list(client.indices.get(index=f"{alias}*", allow_no_indices=True, ignore_unavailable=True))
        if names:
            client.indices.delete(index=",".join(names), ignore_unavailable=True)
    finally:
        client.close()


@pytest.fixture(scope="session")
def real_data() -> tuple[Path, Path]:
    """(reports tgz, DICOM metadata) of the real corpus.

    The shared copies beside the checkout make this fast; without them the project's own fetch
    obtains the files (into ./data, as `cxrsearch data fetch` does), so no test requires shared/.
    """
    if REPORTS_TGZ.is_file() and DICOM_METADATA.is_file():
        return REPORTS_TGZ, DICOM_METADATA
    from pipelines.settings import data_dir
    from pipelines.sources.fetch import DICOM_METADATA as META
    from pipelines.sources.fetch import REPORTS, fetch

    root = data_dir()
    fetch(root)
    return root / "raw" / REPORTS.name, root / "raw" / META.name


@pytest.fixture(scope="session")
def real_reports_tgz(real_data) -> Path:
    return real_data[0]


@pytest.fixture(scope="session")
def real_metadata(real_data) -> Path:
    return real_data[1]
