"""`cxrsearch reindex` then `cxrsearch search`, end to end through the console entry point."""
from __future__ import annotations

import json
import socket

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


def test_search_prints_how_the_query_was_read_and_why_each_hit_matched(indexed, capsys):
    capsys.readouterr()
    assert main(["search", "calcified", "granuloma", "right", "upper", "lobe", "--index-dir", str(indexed),
                 "--k", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("4 match(es) for 'calcified granuloma right upper lobe' (embedded, source all")
    assert "calcified granuloma [finding: Calcified Granuloma]" in lines[1] and "upper lobe [location" in lines[1]
    ranked = [line for line in lines if line.lstrip()[:3] in ("1. ", "2. ", "3. ", "4. ")]
    assert len(ranked) == 3  # k=3
    assert ranked[0].lstrip().startswith("1. CXR1_IM-0001-1001")
    assert "calcified granuloma lung upper lobe right [synthetic]" in ranked[0]
    why = next(line for line in lines if line.strip().startswith("why:"))
    assert "calcified granuloma <- report (exact)" in why and "concepts #1" in why


def test_search_json_with_filters_has_the_documented_shape(indexed, capsys):
    capsys.readouterr()
    assert main(["search", "granuloma", "--index-dir", str(indexed), "--filter", "view=lateral", "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert {"query", "parsed", "total", "page", "results", "facets"} <= set(body)
    assert body["total"] == 2 and body["filters"] == {"view": ["lateral"]}
    assert {h["image_id"] for h in body["results"]} == {"CXR1_IM-0001-2001", "CXR7_IM-0007-2001"}
    for hit in body["results"]:
        assert {"image_id", "report_id", "score", "annotation", "generated_annotation", "report_annotation",
                "concepts", "label", "predicted_labels", "explanation", "synthetic"} <= set(hit)
        assert hit["view"] == "lateral" and hit["score"] > 0 and hit["synthetic"] is True
        assert hit["explanation"]["matched"][0]["source"] == "report"
    assert body["facets"]["view"] == {"lateral": 2}
    assert body["parsed"]["concepts"][0]["kind"] == "finding"


def test_empty_query_lists_every_image_of_a_split(indexed, capsys):
    capsys.readouterr()
    assert main(["search", "", "--filter", "split=test", "--k", "10000", "--index-dir", str(indexed), "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["total"] == 4 and len(body["results"]) == 4  # reports 5 and 10, two images each
    assert all(r["split"] == "test" and r["label"] for r in body["results"])
    assert [r["image_id"] for r in body["results"]] == sorted(r["image_id"] for r in body["results"])


def test_search_errors_are_one_line_messages(indexed, tmp_path, capsys):
    assert main(["search", "x", "--index-dir", str(indexed), "--filter", "colour=red"]) == 1
    assert "unknown filter field 'colour'" in capsys.readouterr().err
    assert main(["search", "x", "--index-dir", str(indexed), "--filter", "view"]) == 1
    assert "use FIELD:VALUE (or FIELD=VALUE)" in capsys.readouterr().err
    assert main(["search", "x", "--index-dir", str(indexed), "--filter", "synthetic=True"]) == 1
    assert "synthetic='True' is invalid: use true or false" in capsys.readouterr().err
    assert main(["search", "x", "--index-dir", str(indexed), "--page", "0"]) == 1
    assert "page=0 is invalid" in capsys.readouterr().err
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
def test_reindex_and_search_on_elasticsearch(tmp_path, es_url, es_alias, capsys):
    corpus = SmallCorpus(tmp_path / "corpus")
    es = ["--backend", "es", "--es-url", es_url, "--es-index", es_alias]
    assert main(["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
                 str(corpus.reports), "--index-dir", str(tmp_path / "index"), "--no-progress", *es]) == 0
    capsys.readouterr()
    assert main(["search", "nodule", "left", "--json", *es]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["backend"] == "es" and result["total"] >= 4
    assert result["results"][0]["annotation"] == "nodule lung upper lobe left"


def test_hit_shows_the_radiologists_annotation_when_the_cascade_wrote_another():
    from pipelines.cli.search import format_answer

    body = {"query": "nodule", "total": 2, "backend": "embedded", "source": "all", "page": 1, "k": 10,
            "retrievers": ["concepts"], "facets": {}, "synthetic": True,
            "parsed": {"concepts": [], "unrecognised": [], "corrections": []},
            "results": [{"image_id": "CXR9_IM-1", "score": 0.9, "annotation": "normal", "synthetic": True,
                         "report_annotation": "nodule lung upper lobe left"},
                        {"image_id": "CXR8_IM-1", "score": 0.5, "annotation": "nodule lung", "synthetic": False,
                         "report_annotation": "nodule lung"}]}
    lines = format_answer(body).splitlines()
    assert "normal [synthetic]" in lines[1]
    assert lines[2] == "     report (radiologist): nodule lung upper lobe left"
    assert lines[3].lstrip().startswith("2. CXR8_IM-1")
    assert lines[-1].startswith("  (synthetic stand-in corpus")


def test_a_hit_matched_by_its_report_leads_with_the_reports_annotation():
    """'pleural effusion right' matched by the report must not lead with a cascade line that says left."""
    from pipelines.cli.search import format_answer

    matched_by = {"report": {"matched": [{"concept": "pleural effusion", "source": "report", "match": "exact"}]},
                  "pixels": {"matched": [{"concept": "pleural effusion", "source": "generated",
                                          "match": "probability"}]}}
    body = {"query": "pleural effusion right", "total": 2, "backend": "embedded", "source": "all", "page": 1, "k": 10,
            "retrievers": ["concepts"], "facets": {}, "synthetic": False,
            "parsed": {"concepts": [], "unrecognised": [], "corrections": []},
            "results": [{"image_id": "CXR1_IM-1", "score": 1.0, "annotation": "pleural effusion left",
                         "synthetic": False,
                         "report_annotation": "pleural effusion right", "explanation": matched_by["report"]},
                        {"image_id": "CXR2_IM-1", "score": 0.5, "annotation": "pleural effusion right",
                         "synthetic": False, "report_annotation": "normal", "explanation": matched_by["pixels"]}]}
    lines = format_answer(body).splitlines()
    assert lines[1].endswith("1.0000  pleural effusion right")
    assert lines[2] == "     model (from pixels): pleural effusion left"
    assert lines[4].endswith("0.5000  pleural effusion right")  # matched from the pixels: the cascade's line leads
    assert lines[5] == "     report (radiologist): normal"
