"""The CLI end to end: `cxrsearch data fetch`, `data prepare`, `stats`, and errors for bad use."""
from __future__ import annotations

import json
import subprocess
import sys

from pipelines.cli import main
from pipelines.manifest import read_manifest


def run(*argv):
    return main(list(argv))


def test_fetch_prepare_stats_on_small_corpus(tmp_path, make_reports, capsys, monkeypatch):
    monkeypatch.setenv("CXRSEARCH_DATA", str(tmp_path / "data"))
    assert run("data", "fetch", "--from", str(make_reports())) == 0
    assert run("data", "prepare", "--min-cases", "4") == 0
    out = capsys.readouterr().out
    assert "loaded 21 reports, skipped 0" in out
    entries = read_manifest(tmp_path / "data" / "manifest.jsonl")
    assert len(entries) == 42
    by_report = {}
    for e in entries:
        by_report.setdefault(e.report_id, set()).add(e.split)
    assert all(len(s) == 1 for s in by_report.values())
    labels = {e.label for e in entries}
    assert labels == {"normal", "calcified granuloma", "lung/hypoinflation", None}
    assert {e.view for e in entries if e.report_id == "1"} == {"frontal", "lateral"}

    assert run("stats", "--json", "--top", "3") == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["table1"][0] == {"term": "normal", "total": 20, "overlap": 0, "overlap_percent": 0.0}
    assert stats["table1"][1]["term"] == "calcified granuloma" and stats["table1"][1]["total"] == 8
    assert stats["corpus"]["images"] == 42
    assert {row["label"]: row["images"] for row in stats["labels"]}["lung/hypoinflation"] == 6
    assert stats["vocabulary"]["heads"] == 24 and stats["vocabulary"]["heads_percent"] == 100.0

    assert run("stats") == 0
    assert "Table 1" in capsys.readouterr().out


def test_stats_before_fetch_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CXRSEARCH_DATA", str(tmp_path / "empty"))
    assert run("stats") == 1
    assert "run `cxrsearch data fetch` first" in capsys.readouterr().err


def test_prepare_strict_names_the_bad_file(tmp_path, make_reports, capsys, monkeypatch):
    folder = make_reports()
    (folder / "99.xml").write_text("<eCitation><MeSH>")
    monkeypatch.setenv("CXRSEARCH_DATA", str(tmp_path / "data"))
    assert run("data", "fetch", "--from", str(folder)) == 0
    assert run("data", "prepare", "--strict") == 1
    assert "99.xml: malformed or truncated XML" in capsys.readouterr().err
    assert run("data", "prepare") == 0
    assert "skipped 1" in capsys.readouterr().out


def test_unknown_command_and_help(capsys):
    assert run("frobnicate") == 2
    assert "unknown command 'frobnicate'" in capsys.readouterr().err
    assert run("--help") == 0
    out = capsys.readouterr().out
    assert "data" in out and "stats" in out


def test_console_script_is_installed():
    exe = sys.executable.replace("python", "cxrsearch")
    proc = subprocess.run([exe, "data", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "fetch" in proc.stdout and "prepare" in proc.stdout


def test_prepare_with_an_image_folder_drops_ids_without_a_file(tmp_path, make_reports, capsys, monkeypatch):
    monkeypatch.setenv("CXRSEARCH_DATA", str(tmp_path / "data"))
    assert run("data", "fetch", "--from", str(make_reports())) == 0
    images = tmp_path / "NLMCXR_png"
    images.mkdir()
    for rid in range(1, 22):
        (images / f"CXR{rid}_IM-0001-1001.png").write_bytes(b"")  # the second image of each report is missing
    assert run("data", "prepare", "--min-cases", "2", "--images", str(images)) == 0
    out = capsys.readouterr().out
    assert "warning    21  image id without a file" in out
    assert len(read_manifest(tmp_path / "data" / "manifest.jsonl")) == 21
    assert run("data", "prepare", "--strict", "--images", str(images)) == 1
    assert "1.xml: image CXR1_IM-0001-2001 has no file" in capsys.readouterr().err


def test_version_and_one_spelling_of_the_data_directory_option(capsys):
    import importlib

    from pipelines.cli import COMMANDS

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("cxrsearch ")
    spellings = {}
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"pipelines.cli.{module}")
        if not hasattr(mod, "parser"):
            continue
        p = mod.parser()
        subs = [a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"]
        parsers = [p] + [sp for a in subs for sp in a.choices.values()]
        options = {o for q in parsers for a in q._actions for o in a.option_strings}
        spellings[name] = {o for o in options if o.startswith("--data")}
    assert not any("--data" in s for s in spellings.values()), spellings
    assert all(s <= {"--data-dir"} for s in spellings.values()), spellings
