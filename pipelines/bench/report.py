"""The benchmark's results: figures with their peers, section results, the machine, and the JSON/markdown report.

The rule every figure obeys (checked by `check_peers`, and by the test suite): a *speed* figure
(latency, throughput, build time) is either a ratio against a peer measured in the same run
(`peer` names the other figure's id; `ratio = value / peer value`) or a *baseline*: an absolute
number stated with the machine it was taken on (the report's `machine`, and the load average
around its section). Quality figures (recall, BLEU, accuracy), sizes and counts need no peer.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SPEED, QUALITY, SIZE, COUNT = "speed", "quality", "size", "count"
KINDS = (SPEED, QUALITY, SIZE, COUNT)
SYNTHETIC_NOTE = ("All figures are measured on the SYNTHETIC stand-in corpus (rendered radiographs): they measure "
                  "the software on this machine, never clinical accuracy.")


@dataclass
class Figure:
    """One measured number.

    Attributes:
        id: unique in the run, e.g. 'scale.real.10000.hnsw.p50_ms'.
        label: what it is, for people.
        value: the number (None when it could not be measured; `note` says why).
        unit: 'ms', 'images/s', 'requests/s', 'MiB', 'recall@10', ...
        kind: speed, quality, size or count.
        peer: id of the figure this one is compared with (same run), or None.
        ratio: value / peer's value (filled by `Report.add_section`).
        baseline: an absolute speed figure stated with the machine (the peer of others).
        higher_is_better: for reading ratios.
    """

    id: str
    label: str
    value: float | None
    unit: str
    kind: str = SPEED
    peer: str | None = None
    ratio: float | None = None
    baseline: bool = False
    higher_is_better: bool = False
    note: str = ""


@dataclass
class SectionResult:
    """What one section produced: figures, tables (markdown-ready rows), plots and notes."""

    name: str
    title: str
    status: str = "ok"  # ok | skipped | failed
    reason: str = ""
    figures: list[Figure] = field(default_factory=list)
    tables: list[dict[str, Any]] = field(default_factory=list)  # {"title", "columns", "rows"}
    plots: list[str] = field(default_factory=list)  # file names in the run folder
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    load_before: tuple[float, float, float] | None = None
    load_after: tuple[float, float, float] | None = None

    def add(self, figure: Figure) -> Figure:
        if figure.kind not in KINDS:
            raise ValueError(f"figure {figure.id}: kind {figure.kind!r} is unknown; valid: {', '.join(KINDS)}")
        self.figures.append(figure)
        return figure

    def table(self, title: str, columns: list[str], rows: list[list[Any]]) -> None:
        self.tables.append({"title": title, "columns": columns, "rows": rows})


def machine_info() -> dict[str, Any]:
    """The machine the figures were taken on: CPU, cores, memory, OS, Python and library versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    from importlib import metadata

    versions = {}
    for name, dist in (("numpy", "numpy"), ("faiss", "faiss-cpu"), ("torch", "torch"),
                       ("elasticsearch", "elasticsearch"), ("flask", "flask")):
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": memory_gib, "os": platform.platform(),
            "python": platform.python_version(), "gpu": None, **versions}


def git_commit(root: Path) -> str:
    """The short commit of the checkout (with '-dirty' when it has uncommitted changes), or 'unknown'."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_average() -> tuple[float, float, float]:
    return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]


@dataclass
class Report:
    """The whole run: header (when, what commit, which machine, under what load) and the sections."""

    commit: str
    quick: bool
    backends: list[str]
    machine: dict[str, Any] = field(default_factory=machine_info)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    synthetic: bool = True
    corpus: str = ""
    sections: list[SectionResult] = field(default_factory=list)
    seconds: float = 0.0
    load_before: tuple[float, float, float] = field(default_factory=load_average)
    load_after: tuple[float, float, float] | None = None
    threads: int | None = None

    def figures(self) -> dict[str, Figure]:
        return {f.id: f for s in self.sections for f in s.figures}

    def add_section(self, result: SectionResult) -> None:
        """Add a section's result and compute its figures' ratios against their peers."""
        self.sections.append(result)
        known = self.figures()
        for f in result.figures:
            peer = known.get(f.peer) if f.peer else None
            if peer is not None and f.value is not None and peer.value:
                f.ratio = round(f.value / peer.value, 3)

    def to_dict(self) -> dict[str, Any]:
        return {"cxrsearch_bench": 1, "note": SYNTHETIC_NOTE if self.synthetic else "", **asdict(self)}

    def write(self, folder: Path) -> tuple[Path, Path]:
        """Write report.json and report.md into `folder`; returns both paths."""
        folder.mkdir(parents=True, exist_ok=True)
        json_path, md_path = folder / "report.json", folder / "report.md"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, default=str), encoding="utf-8")
        md_path.write_text(self.markdown(), encoding="utf-8")
        return json_path, md_path

    def markdown(self) -> str:
        m = self.machine
        machine = (f"{m.get('cpu')}, {m.get('cores')} cores, {m.get('memory_gib')} GiB, no GPU; Python "
                   f"{m.get('python')}, faiss {m.get('faiss')}, torch {m.get('torch')}")
        lines = [f"# cxrsearch benchmark {self.created} ({self.commit})", "",
                 f"**{SYNTHETIC_NOTE}**" if self.synthetic else "", "",
                 f"- machine: {machine}",
                 f"- mode: {'--quick' if self.quick else 'full'}; backends: {', '.join(self.backends)}; "
                 f"{self.seconds:.0f} s in all",
                 f"- load average (1/5/15 min) before: {self.load_before}, after: {self.load_after}; "
                 f"{self.threads} torch/FAISS thread(s) in the benchmark process",
                 f"- corpus: {self.corpus}", "",
                 "Speed figures are ratios against a peer measured in the same run (`vs peer`), or baselines: "
                 "absolute numbers on the machine above, under the load stated with their section.", ""]
        figures = self.figures()
        for s in self.sections:
            lines += [f"## {s.title}", ""]
            if s.status != "ok":
                lines += [f"*{s.status}*: {s.reason}", ""]
                continue
            lines.append(f"{s.seconds:.1f} s; load average before {s.load_before}, after {s.load_after}.")
            lines.append("")
            for note in s.notes:
                lines += [note, ""]
            if s.figures:
                lines += ["| figure | value | vs peer | peer |", "|---|---|---|---|"]
                for f in s.figures:
                    value = "n/a" if f.value is None else f"{f.value:,.4g} {f.unit}"
                    if f.ratio is not None:
                        vs = f"{f.ratio:.3g}x"
                    elif f.baseline:
                        vs = "baseline (this machine)"
                    else:
                        vs = "" if f.kind != SPEED else "?"
                    peer = figures[f.peer].label if f.peer in figures else ""
                    lines.append(f"| {f.label} | {value}{' (' + f.note + ')' if f.note else ''} | {vs} | {peer} |")
                lines.append("")
            for t in s.tables:
                lines += [f"**{t['title']}**", "", "| " + " | ".join(t["columns"]) + " |",
                          "|" + "---|" * len(t["columns"])]
                lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t["rows"]]
                lines.append("")
            for plot in s.plots:
                lines += [f"![{plot}]({plot})", ""]
        return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.4g}"
    return str(value)


def check_peers(report: dict[str, Any]) -> list[str]:
    """Problems with the peer rule in a written report (report.json as a dict); empty when every figure obeys."""
    figures = {f["id"]: f for s in report["sections"] for f in s["figures"]}
    problems = []
    if len(figures) != sum(len(s["figures"]) for s in report["sections"]):
        problems.append("figure ids repeat")
    for f in figures.values():
        if f["kind"] != SPEED or f["value"] is None:
            continue
        if f["peer"]:
            if f["peer"] not in figures:
                problems.append(f"{f['id']}: peer {f['peer']} is not in this run")
            elif f["ratio"] is None:
                problems.append(f"{f['id']}: no ratio to its peer {f['peer']}")
        elif not (f["baseline"] and report.get("machine", {}).get("cpu")):
            problems.append(f"{f['id']}: a speed figure with neither a peer nor the machine")
    return problems
