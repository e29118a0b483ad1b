"""`cxrsearch reindex` then `cxrsearch search`, end to end through the console entry point."""
from __future__ import annotations

import json
import socket
import uuid

import pytest

from pipelines.cli import main
from tests.pipelines.test_reindex import SmallCorpus


@pytest.fixture
def indexed(tmp_path):
    """A small corpus indexed with `cxrsearch reindex` into tmp_path/index (embedded backend)."""
    corpus = SmallCorpus(tmp_path / "corpus")
    code = main(["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
                 str(corpus.reports), "--index-dir", str(tmp_path / "index"), "--batch-size", "5", "--no-progress"])
    assert code == 0
    return tmp_path / "index"


def test_reindex_prints_a_summary(tmp_path, capsys):
    corpus = SmallCorpus(tmp_path / "corpus")
    args = ["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--no-reports",
            "--index-dir", str(tmp_path / "index"), "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "indexed       24" in out and "corrupt or not an image" in out and "live:" in out
    assert main(args + ["--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["unchanged"] == 24 and summary["nothing_changed"] is True


def test_search_prints_ranked_hits_with_annotation_and_matched_fields(indexed, capsys):
    capsys.readouterr()
    assert main(["search", "calcified", "granuloma", "--index-dir", str(indexed), "--k", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("4 match(es) for 'calcified granuloma'")
    lines = out.splitlines()
    assert lines[1].lstrip().startswith("1. CXR1_IM-0001-1001")
    assert "calcified granuloma lung upper lobe right [synthetic]" in lines[1]
    assert "matched: report_annotation" in lines[2]
    assert sum(1 for line in lines if line.lstrip()[:2] in ("1.", "2.", "3.", "4.")) == 3  # k=3


def test_search_json_with_filters(indexed, capsys):
    capsys.readouterr()
    assert main(["search", "granuloma", "--index-dir", str(indexed), "--filter", "view=lateral", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["total"] == 2 and result["filters"] == {"view": ["lateral"]}
    assert {h["image_id"] for h in result["hits"]} == {"CXR1_IM-0001-2001", "CXR7_IM-0007-2001"}
    assert all(h["view"] == "lateral" and h["score"] > 0 and h["matched_fields"] for h in result["hits"])
    assert result["facets"]["view"] == {"lateral": 2}


def test_search_errors_are_one_line_messages(indexed, tmp_path, capsys):
    assert main(["search", "x", "--index-dir", str(indexed), "--filter", "colour=red"]) == 1
    assert "unknown filter field 'colour'" in capsys.readouterr().err
    assert main(["search", "x", "--index-dir", str(indexed), "--filter", "view"]) == 1
    assert "expected FIELD=VALUE" in capsys.readouterr().err
    assert main(["search", "x", "--index-dir", str(tmp_path / "empty")]) == 1
    assert "no text index" in capsys.readouterr().err


def test_search_with_elasticsearch_down_names_the_url(capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["search", "granuloma", "--backend", "es", "--es-url", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert f"Elasticsearch at http://127.0.0.1:{port} is unavailable" in err


@pytest.mark.es
def test_reindex_and_search_on_elasticsearch(tmp_path, es_url, capsys):
    corpus = SmallCorpus(tmp_path / "corpus")
    alias = f"cxrsearch-test-{uuid.uuid4().hex[:10]}"
    es = ["--backend", "es", "--es-url", es_url, "--es-index", alias]
    try:
        assert main(["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
                     str(corpus.reports), "--index-dir", str(tmp_path / "index"), "--no-progress", *es]) == 0
        capsys.readouterr()
        assert main(["search", "nodule", "left", "--json", *es]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["backend"] == "es" and result["total"] >= 4
        assert result["hits"][0]["annotation"] == "nodule lung upper lobe left"
    finally:
        from elasticsearch import Elasticsearch

        client = Elasticsearch(es_url)
        names = list(client.indices.get(index=f"{alias}*", allow_no_indices=True))
        if names:
            client.indices.delete(index=",".join(names))
        client.close()


def test_hit_shows_the_radiologists_annotation_when_the_cascade_wrote_another():
    from indexer.text.base import Hit, SearchResult
    from pipelines.cli.search import format_result

    hits = [Hit("CXR9_IM-1", 3.0, ("report_annotation",), {"generated_annotation": "normal", "synthetic": True,
                                                             "report_annotation": "nodule lung upper lobe left"}),
            Hit("CXR8_IM-1", 2.0, ("report_annotation",), {"generated_annotation": "nodule lung",
                                                             "report_annotation": "nodule lung"})]
    lines = format_result("nodule", SearchResult(hits, 2, {}, "embedded", "v1")).splitlines()
    assert "normal [synthetic]" in lines[1]
    assert lines[3] == "     report annotation (radiologist): nodule lung upper lobe left"
    assert lines[4].lstrip().startswith("2. CXR8_IM-1") and len(lines) == 6  # same annotation: no extra line
