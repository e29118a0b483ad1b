"""Read the Kaggle re-packaging of IU X-ray (indiana_reports.csv, indiana_projections.csv) into records.

Kaggle names images `<uid>_IM-xxxx-yyyy.dcm.png` inside `images_normalized/`; the Open-i image id of
the same image is `CXR<uid>_IM-xxxx-yyyy` (the stem of `NLMCXR_png/<id>.png`), which is what the
records carry, so that every later stage sees the same ids whichever packaging was read.
"""
from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

from indexer.records import MeshTerm, Report
from pipelines.errors import ReportParseError
from pipelines.records import LoadSummary

KAGGLE_SUFFIX = ".dcm.png"


def kaggle_filename_to_image_id(filename: str) -> str:
    """`1_IM-0001-4001.dcm.png` -> `CXR1_IM-0001-4001`."""
    name = Path(filename).name
    stem = name[: -len(KAGGLE_SUFFIX)] if name.endswith(KAGGLE_SUFFIX) else Path(name).stem
    return stem if stem.startswith("CXR") else f"CXR{stem}"


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def load_kaggle(folder: str | Path, strict: bool = False,
                image_exists=None) -> tuple[list[Report], dict[str, str], LoadSummary]:
    """Load `indiana_reports.csv` and `indiana_projections.csv` from `folder`.

    Returns:
        reports, a map image id -> projection (`Frontal`/`Lateral`), and the load summary.
        With `image_exists` (or an `images_normalized/` folder present) ids without a file are dropped.
    """
    folder = Path(folder)
    reports_csv = folder / "indiana_reports.csv"
    projections_csv = folder / "indiana_projections.csv"
    for f in (reports_csv, projections_csv):
        if not f.is_file():
            raise FileNotFoundError(f"{f}: missing (a Kaggle IU X-ray folder has indiana_reports.csv "
                                    "and indiana_projections.csv)")
    images_dir = folder / "images_normalized"
    if image_exists is None and images_dir.is_dir():
        present = {kaggle_filename_to_image_id(p.name) for p in images_dir.iterdir()}
        image_exists = present.__contains__

    images_by_uid: dict[str, list[str]] = defaultdict(list)
    projections: dict[str, str] = {}
    summary = LoadSummary()
    with open(projections_csv, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            uid, filename = (row.get("uid") or "").strip(), (row.get("filename") or "").strip()
            if not uid or not filename:
                continue
            image_id = kaggle_filename_to_image_id(filename)
            if image_exists is not None and not image_exists(image_id):
                if strict:
                    raise ReportParseError(f"{projections_csv}:{filename}", f"image {image_id} has no file")
                summary.warn("image id without a file", filename)
                continue
            images_by_uid[uid].append(image_id)
            projections[image_id] = (row.get("projection") or "").strip()

    reports: list[Report] = []
    try:
        fh = open(reports_csv, newline="", encoding="utf-8")
        rows = list(csv.DictReader(fh))
    except UnicodeDecodeError as e:
        raise ReportParseError(str(reports_csv), f"wrong encoding: not valid UTF-8 at byte {e.start}") from e
    finally:
        fh.close()
    for line, row in enumerate(rows, start=2):
        where = f"{reports_csv.name}:{line}"
        uid = (row.get("uid") or "").strip()
        mesh_text = _clean(row.get("MeSH"))
        problem = None
        if not uid:
            problem = "no uid"
        elif not mesh_text:
            problem = "empty <MeSH> block: no <major> term"
        if problem:
            if strict:
                raise ReportParseError(where, problem)
            summary.skip(problem, where)
            continue
        terms = tuple(MeshTerm.parse(t) for t in mesh_text.split(";") if t.strip())
        reports.append(Report(
            report_id=uid,
            comparison=_clean(row.get("comparison")),
            indication=_clean(row.get("indication")),
            findings=_clean(row.get("findings")),
            impression=_clean(row.get("impression")),
            mesh_major=terms,
            image_ids=tuple(images_by_uid.get(uid, ())),
            source=where,
        ))
        summary.loaded += 1
    return reports, projections, summary
