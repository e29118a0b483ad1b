"""Parse Open-i (NLM) radiology report XML into `Report` records, strictly or in bulk."""
from __future__ import annotations

import tarfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator
from pathlib import Path

from indexer.records import SECTIONS, MeshTerm, Report
from pipelines.errors import ReportParseError
from pipelines.records import LoadSummary

KNOWN_MESH_TAGS = {"major", "automatic"}


def _text(element: ET.Element | None) -> str | None:
    if element is None or element.text is None:
        return None
    text = " ".join(element.text.split())
    return text or None


def _decode_problem(data: bytes) -> str | None:
    """Name an encoding problem if the bytes are not valid for the declared (or default) UTF-8."""
    head = data[:200].lower()
    if b"encoding=" in head and b"utf-8" not in head:
        return None  # a declared non-UTF-8 encoding: the XML parser handles it
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"wrong encoding: not valid UTF-8 at byte {e.start}"
    return None


def parse_report(data: bytes, source: str, image_exists=None) -> tuple[Report, list[str]]:
    """Parse one Open-i report.

    Args:
        data: the file's bytes.
        source: the file name, used in messages.
        image_exists: optional callable image_id -> bool; ids without a file are dropped (a warning).

    Returns:
        The report and a list of warnings (problems that leave the record usable).

    Raises:
        ReportParseError: the record is unusable (malformed/truncated XML, wrong encoding,
            no MeSH block or an empty one, no report id).
    """
    problem = _decode_problem(data)
    if problem:
        raise ReportParseError(source, problem)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as e:
        raise ReportParseError(source, f"malformed or truncated XML ({e})") from e

    warnings: list[str] = []
    report_id = root.find("IUXRId")
    rid = report_id.get("id") if report_id is not None else None
    if not rid:
        stem = Path(source).stem
        if not stem.isdigit():
            raise ReportParseError(source, "no report id (<IUXRId id=...>) and the file name is not a number")
        rid = stem
        warnings.append("no <IUXRId>: report id taken from the file name")

    sections: dict[str, str | None] = {}
    found = set()
    for node in root.iter("AbstractText"):
        label = (node.get("Label") or "").strip().lower()
        if label not in SECTIONS:
            warnings.append(f"unknown section label {node.get('Label')!r} ignored")
            continue
        found.add(label)
        sections[label] = _text(node)
    for name in SECTIONS:
        if name not in found:
            warnings.append(f"missing section {name.upper()}")

    mesh = root.find("MeSH")
    if mesh is None:
        raise ReportParseError(source, "no <MeSH> block")
    major: list[MeshTerm] = []
    automatic: list[MeshTerm] = []
    for child in mesh:
        if child.tag not in KNOWN_MESH_TAGS:
            warnings.append(f"unknown tag <{child.tag}> in <MeSH> ignored")
            continue
        text = _text(child)
        if text is None:
            warnings.append(f"empty <{child.tag}> term ignored")
            continue
        (major if child.tag == "major" else automatic).append(MeshTerm.parse(text))
    if not major:
        raise ReportParseError(source, "empty <MeSH> block: no <major> term")

    image_ids: list[str] = []
    for node in root.findall("parentImage"):
        image_id = (node.get("id") or "").strip()
        if not image_id:
            warnings.append("<parentImage> without id ignored")
            continue
        if image_exists is not None and not image_exists(image_id):
            warnings.append(f"image {image_id} has no file")
            continue
        image_ids.append(image_id)

    licence = _text(root.find("licenseURL")) or _text(root.find("ccLicense"))
    report = Report(
        report_id=str(rid),
        mesh_major=tuple(major),
        mesh_automatic=tuple(automatic),
        image_ids=tuple(image_ids),
        licence=licence,
        source=source,
        **sections,
    )
    return report, warnings


def iter_report_files(path: str | Path) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) of every `.xml` in a folder (recursively) or in a .tgz/.tar.gz archive."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.rglob("*.xml"), key=_natural_key)
        for f in files:
            yield str(f), f.read_bytes()
    elif tarfile.is_tarfile(path):
        with tarfile.open(path) as tar:
            members = sorted((m for m in tar.getmembers() if m.isfile() and m.name.endswith(".xml")),
                             key=lambda m: _natural_key(Path(m.name)))
            for m in members:
                fh = tar.extractfile(m)
                if fh is not None:
                    yield f"{path.name}:{m.name}", fh.read()
    else:
        raise FileNotFoundError(f"{path}: not a folder of report XML files nor a .tgz archive")


def _natural_key(p: Path) -> tuple:
    stem = p.stem
    return (str(p.parent), int(stem) if stem.isdigit() else 10**12, stem)


def load_reports(files: Iterable[tuple[str, bytes]] | str | Path, strict: bool = False,
                 image_exists=None, progress: bool = False) -> tuple[list[Report], LoadSummary]:
    """Load many reports.

    In strict mode the first problem (an unusable record or a warning) raises ReportParseError
    naming the file. In bulk mode (the default) unusable records are skipped and counted, warnings
    are counted, and loading goes on.
    """
    if isinstance(files, (str, Path)):
        files = iter_report_files(files)
    summary = LoadSummary()
    reports: list[Report] = []
    seen: dict[str, str] = {}
    iterator = files
    if progress:
        from tqdm import tqdm

        iterator = tqdm(files, desc="reports", unit="file")
    for name, data in iterator:
        try:
            report, warnings = parse_report(data, name, image_exists=image_exists)
        except ReportParseError as e:
            if strict:
                raise
            summary.skip(_reason(e.problem), name)
            continue
        if strict and warnings:
            raise ReportParseError(name, warnings[0], kind="warning")
        if report.report_id in seen:
            if strict:
                raise ReportParseError(name, f"duplicate report id {report.report_id} (also {seen[report.report_id]})")
            summary.skip("duplicate report id", name)
            continue
        seen[report.report_id] = name
        for w in warnings:
            summary.warn(_reason(w), name)
        reports.append(report)
        summary.loaded += 1
    return reports, summary


def _reason(problem: str) -> str:
    """Group messages into reasons for the summary (drop per-file details)."""
    if problem.startswith("malformed"):
        return "malformed or truncated XML"
    if problem.startswith("wrong encoding"):
        return "wrong encoding"
    if problem.startswith("image ") and problem.endswith("has no file"):
        return "image id without a file"
    if problem.startswith("unknown section label"):
        return "unknown section label"
    if problem.startswith("unknown tag"):
        return "unknown tag in <MeSH>"
    return problem
