"""The benchmark's results: figures with their peers, section results, the machine, and the JSON/markdown report.

The rule every figure obeys (checked by `check_peers`, and by the test suite): a *speed* figure
(latency, throughput, build time) is either a ratio against a peer measured in the same run
(`peer` names the other figure's id; `ratio = value / peer value`) or a *baseline*: an absolute
number stated with the machine it was taken on (the report's `machine`, and the load average
around its section). Quality figures (recall, BLEU, accuracy), sizes and counts need no peer.

A figure may carry a target from an issue (`Target`: on its value, e.g. p50 <= 2 ms, or on its
ratio to its peer, e.g. requests/s >= 1x bare Elasticsearch); the report says whether it was met.
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
class Target:
    """What a figure should reach: `limit` on its value or on its ratio to its peer (`on`), and who asks.

    The direction is the figure's: at least `limit` when higher is better, else at most.
    """

    limit: float
    on: str = "value"  # value | ratio
    source: str = ""  # e.g. "issue 8"

    def __post_init__(self) -> None:
        if self.on not in ("value", "ratio"):
            raise ValueError(f"target on {self.on!r} is unknown; valid: value, ratio")


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
        higher_is_better: for reading ratios (and targets).
        target: what an issue asks of this figure, or None; `met` says whether it was reached (None: not measured).
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
    target: Target | None = None
    met: bool | None = None

    def target_text(self) -> str:
        """'<= 2 ms', '>= 1x peer', ... ('' without a target)."""
        if self.target is None:
            return ""
        sign = ">=" if self.higher_is_better else "<="
        if self.target.on == "ratio":
            return f"{sign} {self.target.limit:g}x peer"
        return f"{sign} {self.target.limit:g} {self.unit}"

    def check_target(self) -> None:
        """Set `met` from the value (or ratio) and the target."""
        if self.target is None:
            return
        x = self.ratio if self.target.on == "ratio" else self.value
        if x is None:
            self.met = None
        else:
            self.met = bool(x >= self.target.limit if self.higher_is_better else x <= self.target.limit)


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
            f.check_target()

    def targets(self) -> list[Figure]:
        """The figures that carry a target, in report order."""
        return [f for s in self.sections for f in s.figures if f.target is not None]

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
        targets = self.targets()
        if targets:
            lines += ["## Targets", "", "| figure | value | vs peer | target | met | asked by |",
                      "|---|---|---|---|---|---|"]
            for f in targets:
                lines.append(f"| {f.label} | {_value(f)} | {'' if f.ratio is None else f'{f.ratio:.3g}x'} | "
                             f"{f.target_text()} | {_met(f)} | {f.target.source} |")
            lines.append("")
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
                with_targets = any(f.target is not None for f in s.figures)
                lines += ["| figure | value | vs peer | peer |" + (" target |" if with_targets else ""),
                          "|---|---|---|---|" + ("---|" if with_targets else "")]
                for f in s.figures:
                    if f.ratio is not None:
                        vs = f"{f.ratio:.3g}x"
                    elif f.baseline:
                        vs = "baseline (this machine)"
                    else:
                        vs = "" if f.kind != SPEED else "?"
                    peer = figures[f.peer].label if f.peer in figures else ""
                    if f.target is not None:
                        target = f" {f.target_text()}: {_met(f)} |"
                    else:
                        target = " |" if with_targets else ""
                    lines.append(f"| {f.label} | {_value(f)}{' (' + f.note + ')' if f.note else ''} | {vs} | {peer} |"
                                 + target)
                lines.append("")
            for t in s.tables:
                lines += [f"**{t['title']}**", "", "| " + " | ".join(t["columns"]) + " |",
                          "|" + "---|" * len(t["columns"])]
                lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in t["rows"]]
                lines.append("")
            for plot in s.plots:
                lines += [f"![{plot}]({plot})", ""]
        return "\n".join(lines)


def _value(f: Figure) -> str:
    if f.value is None:
        return "n/a"
    if f.kind == COUNT and float(f.value).is_integer():
        return f"{int(f.value):,} {f.unit}"
    return f"{f.value:,.4g} {f.unit}"


def _met(f: Figure) -> str:
    return {True: "met", False: "**not met**", None: "not measured"}[f.met]


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
