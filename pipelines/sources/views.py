"""View position (PA / AP / LL) per image id from Open-i's DICOM metadata, with a fallback by image order."""
from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

FRONTAL = ("PA", "AP")
LATERAL = ("LL", "RL", "LATERAL")


def load_view_positions(path: str | Path) -> dict[str, str]:
    """Read `nlmcxr_dicom_metadata.csv.gz` (or .csv): image id -> `View Position` ('' when blank)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        text = io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")
        reader = csv.DictReader(text)
        if reader.fieldnames is None or "imageid" not in reader.fieldnames:
            raise ValueError(f"{path}: no 'imageid' column; is this nlmcxr_dicom_metadata.csv?")
        return {row["imageid"].strip(): (row.get("View Position") or "").strip().upper() for row in reader}


def view_kind(position: str) -> str | None:
    """'frontal', 'lateral' or None for a DICOM view position."""
    position = (position or "").upper()
    if position in FRONTAL:
        return "frontal"
    if position in LATERAL:
        return "lateral"
    return None


def assign_views(image_ids: tuple[str, ...] | list[str], positions: dict[str, str]) -> dict[str, str]:
    """'frontal'/'lateral' per image of one report.

    Known DICOM positions win. Otherwise the image's place in its report decides: the first image
    of a report is frontal, the second lateral (most reports have one of each), and any further
    unknown image takes the view the report has fewer of.
    """
    views: dict[str, str] = {}
    for image_id in image_ids:
        kind = view_kind(positions.get(image_id, ""))
        if kind:
            views[image_id] = kind
    for index, image_id in enumerate(image_ids):
        if image_id in views:
            continue
        counts = {k: sum(1 for v in views.values() if v == k) for k in ("frontal", "lateral")}
        if index == 0 and counts["frontal"] == 0:
            views[image_id] = "frontal"
        elif counts["frontal"] <= counts["lateral"]:
            views[image_id] = "frontal"
        else:
            views[image_id] = "lateral"
    return views
