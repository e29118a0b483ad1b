"""`cxrsearch bench --quick` on a tiny corpus: the report's shape, and every speed figure has its peer or machine."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from pipelines.bench import check_peers, section_names
from pipelines.bench.report import SPEED, Figure, Report, SectionResult
from pipelines.cli import main
from tests.pipelines.test_reindex import SmallCorpus
from tests.pipelines.test_reindex_vectors import make_checkpoint

EXPECTED = ["indexing", "similar", "service", "scale", "http", "sustained", "fuzz", "cascade", "search_quality"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 24-image corpus and an untrained tiny cascade, with the results.json a training run leaves."""
    root = tmp_path_factory.mktemp("bench")
    corpus = SmallCorpus(root / "corpus")
    checkpoint = make_checkpoint(root / "model" / "cascade.pt")
    (checkpoint.parent / "results.json").write_text(json.dumps({
        "preset": "tiny", "device": "cpu", "machine": {"cpus": 2, "torch_threads": 1},
        "timings_s": {"total": 340.5},
        "iterations": {"0": {"labels": 17, "cnn_accuracy": {s: {"accuracy": a} for s, a in
                                                             (("train", 75.2), ("val", 46.9), ("test", 46.5))},
                             "bleu": {"labelled": {"gru": {"test": {"bleu": [46.9, 12.0, 1.0, 0.0]}}}}}},
        "iteration1_vs_0": {"labelled/gru/test": {"delta": [2.5, -2.8, 0.0, 1.5], "mean_delta": 0.3}}}))
    return corpus, checkpoint


def run_quick(tiny, out: Path, *extra: str, sections: list[str] = EXPECTED) -> dict:
    corpus, checkpoint = tiny
    argv = ["bench", "--quick", "--images", str(corpus.images), "--manifest", str(corpus.manifest), "--reports",
            str(corpus.reports), "--checkpoint", str(checkpoint), "--out", str(out), "--scale-sizes", "1500",
            "--http-seconds", "1", "--http-connections", "1,2", "--sustained-seconds", "1", "--no-progress",
            "--service-rounds", "3", "--uploads", "3",
            "--threads", "1", "--data-dir", str(out.parent / "no-data"), *extra]
    assert main(argv) == 0
    [folder] = list(out.iterdir())
    assert folder.name.startswith("bench-")
    report = json.loads((folder / "report.json").read_text())
    markdown = (folder / "report.md").read_text()
    assert "SYNTHETIC" in markdown and report["synthetic"] is True and report["quick"] is True
    assert [s["name"] for s in report["sections"]] == sections
    assert EXPECTED == section_names()
    for s in report["sections"]:
        for plot in s["plots"]:
            assert (folder / plot).stat().st_size > 1000 and f"]({plot})" in markdown
    assert check_peers(report) == []  # every speed figure: a ratio to a peer of this run, or a baseline
    assert report["machine"]["cores"] and report["load_after"] and report["threads"] == 1
    return report


def figures(report: dict) -> dict[str, dict]:
    return {f["id"]: f for s in report["sections"] for f in s["figures"]}


@pytest.mark.slow
def test_quick_bench_embedded(tiny, tmp_path):
    if shutil.which("wrk") is None and os.geteuid() != 0:
        pytest.skip("wrk is not installed and this is not root (the bench installs it with apt-get as root)")
    report = run_quick(tiny, tmp_path)
    status = {s["name"]: s["status"] for s in report["sections"]}
    assert status == {"indexing": "ok", "similar": "ok", "service": "ok", "scale": "ok", "http": "ok",
                      "sustained": "ok", "fuzz": "skipped", "cascade": "ok",
                      "search_quality": "skipped"}  # no live index in this test's data dir; no fuzzing in --quick
    f = figures(report)
    # the query service in process: over the bench's own build here (no live index), a baseline without ES
    assert f["service.documents"]["value"] == 24
    p50 = f["service.service_embedded.p50_ms"]
    assert p50["baseline"] and p50["value"] > 0 and p50["target"] == {"limit": 2.0, "on": "value", "source": "issue 8"}
    assert p50["met"] == (p50["value"] <= 2.0) and f["service.service_embedded.p99_ms"]["target"]["limit"] == 10.0
    assert f["service.parse.p50_ms"]["peer"] == "service.service_embedded.p50_ms"
    distinct = f["service.distinct.service_embedded.p50_ms"]  # never-seen queries; no ES here: a baseline
    assert distinct["baseline"] and distinct["value"] > 0 and "200 distinct queries" in distinct["label"]
    again = f["service.distinct_again.service_embedded.p50_ms"]  # the same queries again, documents' facts kept
    assert again["baseline"] and again["value"] > 0 and "again" in again["label"]
    # upload over HTTP, beside the in-process upload path
    upload = f["http.upload_embedded.p50_ms"]
    assert upload["peer"] == "similar.upload.p50_ms" and upload["ratio"] > 0 and upload["target"]["limit"] == 100.0
    markdown = next(tmp_path.iterdir()).joinpath("report.md").read_text()
    assert "## Targets" in markdown and "issue 8" in markdown and "issue 9" in markdown
    rate = f["indexing.embedded_faiss.images_per_s"]
    assert rate["baseline"] and rate["value"] > 0
    assert f["indexing.embedded_faiss.rerun_images_per_s"]["peer"] == "indexing.embedded_faiss.images_per_s"
    assert f["similar.embedded_faiss.recall10"]["value"] == 1.0  # flat FAISS is exact
    assert f["scale.real.1500.flat.recall10"]["value"] == 1.0 and f["scale.random.1500.hnsw.recall10"]["value"] > 0.5
    assert f["scale.real.1500.hnsw.p50_ms"]["peer"] == "scale.real.1500.flat.p50_ms"
    assert f["http.api_search_embedded.c2.rps"]["value"] > 0 and f["sustained.errors"]["value"] == 0
    assert all(v["value"] == 0 for k, v in f.items() if k.startswith("http.") and k.endswith(".errors"))
    # every target is loaded once, discarded, before its measured runs (none is measured cold)
    http = next(s for s in report["sections"] if s["name"] == "http")
    runs = next(t for t in http["tables"] if t["title"] == "wrk runs")["rows"]
    targets = list(dict.fromkeys(r[0] for r in runs))
    assert len(targets) >= 3
    for target in targets:
        assert [r[1] for r in runs if r[0] == target] == ["warm-up 2 (discarded)", 1, 2]
    assert f["cascade.it0.test_accuracy"]["value"] == 46.5


@pytest.mark.es
@pytest.mark.slow
def test_quick_bench_both_backends_has_elasticsearch_peers(tiny, tmp_path, es_url):
    if shutil.which("wrk") is None and os.geteuid() != 0:
        pytest.skip("wrk is not installed and this is not root (the bench installs it with apt-get as root)")
    report = run_quick(tiny, tmp_path, "--backend", "both", "--es-url", es_url, "--sections",
                       "indexing,similar,service,scale,http", "--http-rounds", "3", "--http-server", "granian",
                       sections=["indexing", "similar", "service", "scale", "http"])
    assert {s["status"] for s in report["sections"]} == {"ok"}
    f = figures(report)
    # three rounds over every target, one warm-up each; each figure from the run of median requests/s
    http = next(s for s in report["sections"] if s["name"] == "http")
    runs = next(t for t in http["tables"] if t["title"] == "wrk runs")["rows"]
    for target in ("Elasticsearch bare _search (BM25)", "API /api/search, embedded (SQLite FTS5)"):
        assert [r[1] for r in runs if r[0] == target] == [
            "warm-up 2 (discarded)", "1 (round 1)", "2 (round 1)", "1 (round 2)", "2 (round 2)", "1 (round 3)",
            "2 (round 3)"]
        rounds = [r for r in runs if r[0] == target and r[1].startswith("2 (")]
        middle = sorted(rounds, key=lambda r: r[2])[1]
        figure = next(v for v in f.values() if v["label"] == f"{target}, 2 conn: rps")
        assert round(figure["value"], 1) == middle[2]
        p50 = next(v for v in f.values() if v["id"] == figure["id"].replace(".rps", ".p50_ms"))
        assert round(p50["value"], 2) == middle[3]  # the same run's p50, not the median of the p50s
    assert "3 rounds over every target in turn" in " ".join(http["notes"])
    notes = " ".join(http["notes"])  # --http-server: every app under granian, its threads said per backend
    assert "`cxrsearch serve` (granian; embedded: 2 workers x 4 threads; es: 2 workers x 4 threads)" in notes
    # the service on both backends beside Elasticsearch's bare _search for the same queries, same run
    assert f["service.es_bare.p50_ms"]["baseline"]
    assert f["service.service_es.p99_ms"]["peer"] == "service.es_bare.p99_ms"
    assert f["service.service_embedded.p50_ms"]["peer"] == "service.es_bare.p50_ms"
    assert f["service.service_embedded.p50_ms"]["target"]["source"] == "issue 8"
    assert f["service.distinct.service_embedded.mean_ms"]["peer"] == "service.distinct.es_bare.mean_ms"
    assert f["service.distinct.es_bare.p99_ms"]["baseline"]
    assert f["service.distinct_again.service_embedded.p50_ms"]["peer"] == "service.distinct_again.es_bare.p50_ms"
    # bare _search with the API's facets, and issue 9's p50 target on the embedded API at one connection
    assert f["http.es_search_facets.c2.rps"]["peer"] == "http.es_search.c2.rps"
    assert f["http.api_search_embedded.c1.p50_ms"]["target"] == {"limit": 1.0, "on": "ratio", "source": "issue 9"}
    assert f["http.upload_es.p50_ms"]["value"] > 0
    assert f["http.api_search_es.c1.rps"]["peer"] == "http.es_search.c1.rps" and f["http.es_search.c1.rps"]["baseline"]
    assert f["http.api_similar_es.c2.p99_ms"]["peer"] == "http.es_knn.c2.p99_ms"
    assert all(v["value"] == 0 for k, v in f.items() if k.startswith("http.") and k.endswith(".errors"))
    assert f["similar.es_es.recall10"]["value"] >= 0.9  # ES kNN against exact search over the same vectors
    assert f["scale.random.1500.es_knn.p50_ms"]["peer"] == "scale.random.1500.flat.p50_ms"
    assert f["indexing.es_es.images_per_s"]["peer"] == "indexing.embedded_faiss.images_per_s"


def test_the_median_run_is_one_run():
    from pipelines.bench.sections.http import median_run
    from pipelines.bench.wrk import WrkResult

    runs = [WrkResult(16, n, 1.0, 0, p50, p50, p50) for n, p50 in ((900, 3.0), (700, 2.0), (800, 9.0))]
    assert median_run(runs) is runs[2] and median_run(runs[:2]) is runs[1] and median_run(runs[:1]) is runs[0]


@pytest.mark.slow
def test_fuzz_section_counts_requests_and_5xx_from_the_server(tiny, tmp_path):
    """The fuzz section on the tiny corpus: schemathesis until the app has answered the requests asked for, none 5xx."""
    pytest.importorskip("schemathesis")
    report = run_quick(tiny, tmp_path, "--sections", "fuzz", "--fuzz-requests", "300", sections=["fuzz"])
    [section] = report["sections"]
    assert section["status"] == "ok", section["reason"]
    f = figures(report)
    assert f["fuzz.embedded.requests"]["value"] >= 300 and f["fuzz.embedded.test_cases"]["value"] > 0
    assert f["fuzz.embedded.server_errors"]["value"] == 0 and f["fuzz.embedded.failures"]["value"] == 0
    statuses = {row[2] for row in section["tables"][0]["rows"]}
    assert 200 in statuses and 400 in statuses and 404 in statuses  # it reached real answers and rejections


def test_a_target_is_met_or_not_by_value_or_by_ratio():
    from pipelines.bench.report import Target

    report = Report(commit="abc", quick=True, backends=["embedded"])
    section = SectionResult("s", "S")
    section.add(Figure("s.peer_rps", "peer", 100.0, "requests/s", SPEED, baseline=True, higher_is_better=True))
    section.add(Figure("s.rps", "rps", 90.0, "requests/s", SPEED, peer="s.peer_rps", higher_is_better=True,
                       target=Target(1.0, "ratio", "issue 9")))
    section.add(Figure("s.p50", "p50", 1.5, "ms", SPEED, baseline=True, target=Target(2.0, "value", "issue 8")))
    report.add_section(section)
    got = report.figures()
    assert got["s.rps"].met is False and got["s.p50"].met is True
    assert got["s.rps"].target_text() == ">= 1x peer" and got["s.p50"].target_text() == "<= 2 ms"
    assert "| rps | 90 requests/s | 0.9x | >= 1x peer | **not met** | issue 9 |" in report.markdown()
    with pytest.raises(ValueError, match="target on 'speed' is unknown"):
        Target(1.0, "speed")


def test_check_peers_catches_a_speed_figure_without_peer_or_machine():
    report = Report(commit="abc", quick=True, backends=["embedded"])
    section = SectionResult("s", "S")
    section.add(Figure("s.base", "base", 10.0, "ms", SPEED, baseline=True))
    section.add(Figure("s.vs", "vs", 5.0, "ms", SPEED, peer="s.base"))
    section.add(Figure("s.lonely", "lonely", 3.0, "ms", SPEED))
    section.add(Figure("s.ghost", "ghost", 3.0, "ms", SPEED, peer="s.nowhere"))
    report.add_section(section)
    assert report.figures()["s.vs"].ratio == 0.5
    problems = check_peers(report.to_dict())
    assert problems == ["s.lonely: a speed figure with neither a peer nor the machine",
                        "s.ghost: peer s.nowhere is not in this run"]


def test_unknown_section_is_refused(tiny, tmp_path, capsys):
    corpus, checkpoint = tiny
    assert main(["bench", "--quick", "--sections", "indexing,warp", "--images", str(corpus.images), "--out",
                 str(tmp_path), "--checkpoint", str(checkpoint)]) == 2
    assert "unknown bench sections ['warp']" in capsys.readouterr().err


def test_sections_run_in_the_explicit_order_whatever_the_import_order():
    from pipelines.bench import section_names
    from pipelines.bench.section import RUN_ORDER, Section, register

    names = section_names()
    assert names == list(RUN_ORDER)  # every place filled, in order
    assert names.index("indexing") < names.index("http") < names.index("sustained")  # what each needs runs first

    class Unplaced(Section):
        name, title = "unplaced", "A section with no place in RUN_ORDER"

    with pytest.raises(ValueError, match="RUN_ORDER"):
        register(Unplaced)
