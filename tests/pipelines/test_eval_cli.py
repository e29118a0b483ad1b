"""`cxrsearch eval search` and `eval assertion` end to end on a small indexed corpus."""
from __future__ import annotations

import json

import pytest

from pipelines.cli import main
from pipelines.evaluation.search import EvalQuery, Rule, average_precision, load_queries, ndcg_at, precision_at
from tests.pipelines.test_reindex import SmallCorpus


def test_rules_grade_mesh_terms():
    q = EvalQuery("q", "c", "right effusion", (Rule(frozenset({"pleural effusion"}), frozenset({"right"})),),
                  (Rule(frozenset({"pleural effusion"})),), (Rule(frozenset({"cardiomegaly"})),))
    assert q.grade(["Pleural Effusion/right/small"]) == 2
    assert q.grade(["Pleural Effusion/left"]) == 1
    assert q.grade(["Pleural Effusion/right", "Cardiomegaly"]) == 0  # excluded
    assert q.grade(["normal"]) == 0


def test_metrics_on_a_hand_ranking():
    grades = {"a": 2, "b": 1, "c": 2}
    assert precision_at(["a", "x", "c"], grades, k=10) == pytest.approx(0.2)
    assert average_precision(["a", "x", "c"], grades) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert ndcg_at(["a", "c", "b"], grades) == pytest.approx(1.0)
    assert ndcg_at(["b", "a", "c"], grades) < 1.0


def test_the_committed_query_set_loads_and_covers_every_category():
    queries = load_queries()
    assert len(queries) >= 60
    assert {q.category for q in queries} >= {"plain", "synonym", "lay", "abbreviation", "hierarchy",
                                              "location+laterality", "severity", "negation", "normal", "device"}


def test_eval_search_writes_results(tmp_path, capsys):
    corpus = SmallCorpus(tmp_path / "corpus")
    index = tmp_path / "data" / "index"
    assert main(["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
                 str(corpus.reports), "--index-dir", str(index), "--no-progress"]) == 0
    (tmp_path / "data" / "manifest.jsonl").write_text(corpus.manifest.read_text())
    queries = tmp_path / "queries.json"
    queries.write_text(json.dumps({"queries": [
        {"id": "n", "category": "plain", "text": "nodule", "relevant": [{"head": ["nodule"]}]},
        {"id": "o", "category": "location+laterality", "text": "opacity right base",
         "relevant": [{"head": ["opacity"], "all": ["base", "right"]}]},
        {"id": "none", "category": "plain", "text": "pneumothorax", "relevant": [{"head": ["pneumothorax"]}]}]}))
    capsys.readouterr()
    assert main(["eval", "search", "--queries", str(queries), "--data-dir", str(tmp_path / "data"),
                 "--configs", "report", "ablation: BM25 only", "--out", str(tmp_path / "out"), "--no-vectors"]) == 0
    out = capsys.readouterr().out
    assert "| report | 0.200 | 1.000 | 1.000 |" in out  # two relevant images per query, both ranked first
    summary = json.loads((tmp_path / "out" / "embedded-test.json").read_text())
    assert summary["queries_evaluated"] == 2  # no test image has a pneumothorax
    assert set(summary["per_query"]["report"]) == {"n", "o"}
    assert (tmp_path / "out" / "embedded-test.md").read_text().startswith("# Search evaluation: test split")
    assert main(["eval", "search", "--configs", "nope", "--data-dir", str(tmp_path / "data")]) == 1
    assert "unknown configuration" in capsys.readouterr().err


@pytest.mark.es
def test_eval_search_on_elasticsearch_runs_every_configuration_it_can(tmp_path, es_url, es_alias, capsys):
    corpus = SmallCorpus(tmp_path / "corpus")
    es = ["--backend", "es", "--es-url", es_url, "--es-index", es_alias]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "manifest.jsonl").write_text(corpus.manifest.read_text())
    queries = tmp_path / "queries.json"
    queries.write_text(json.dumps({"queries": [
        {"id": "n", "category": "plain", "text": "nodule", "relevant": [{"head": ["nodule"]}]}]}))
    assert main(["reindex", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
                 str(corpus.reports), "--index-dir", str(tmp_path / "index"), "--no-progress", *es]) == 0
    capsys.readouterr()
    # no --configs: the two ablations that read raw report text (embedded only) are skipped and named
    assert main(["eval", "search", "--queries", str(queries), "--data-dir", str(tmp_path / "data"),
                 "--index-dir", str(tmp_path / "index"), "--out", str(tmp_path / "out"), "--no-vectors", *es]) == 0
    out = capsys.readouterr().out
    assert "| report | 0.200 | 1.000 | 1.000 |" in out
    assert "Configurations not run on this backend: ablation: BM25 only" in out
    summary = json.loads((tmp_path / "out" / "es-test.json").read_text())
    assert set(summary["configs_skipped"]) == {"ablation: BM25 only", "ablation: + concepts"}
    assert "all" in summary["configs"] and "fusion: RRF, all" in summary["configs"]
    # asked for by name, the ablation says why it cannot run
    assert main(["eval", "search", "--queries", str(queries), "--data-dir", str(tmp_path / "data"),
                 "--configs", "ablation: BM25 only", "--no-vectors", "--out", str(tmp_path / "out"), *es]) == 1
    assert "only the embedded backend" in capsys.readouterr().err
