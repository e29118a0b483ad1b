"""The image manifest that later stages read: one JSON line per image id."""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from indexer.files import atomic_path
from pipelines.errors import DataNotPreparedError


@dataclass(frozen=True)
class ManifestEntry:
    """One image: its report, split, mined label and annotation.

    Attributes:
        image_id: Open-i image id, the file stem in `NLMCXR_png`.
        report_id: the report (patient study) the image belongs to.
        split: 'train', 'val' or 'test' (by report).
        label: the mined single-term label, or None when the annotation fits no pattern.
        first_term: the Table 1 term of the first-mentioned MeSH annotation (e.g. 'lung/hypoinflation').
        words: annotation word sequence (components of the first MeSH major term, lower case).
        view: 'frontal' or 'lateral'.
        mesh: every raw MeSH major annotation of the report.
    """

    image_id: str
    report_id: str
    split: str
    label: str | None
    first_term: str
    words: tuple[str, ...]
    view: str
    mesh: tuple[str, ...]

    def to_json(self) -> str:
        d = asdict(self)
        d["words"], d["mesh"] = list(self.words), list(self.mesh)
        return json.dumps(d, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict) -> ManifestEntry:
        return cls(image_id=d["image_id"], report_id=str(d["report_id"]), split=d["split"], label=d.get("label"),
                   first_term=d.get("first_term", ""), words=tuple(d["words"]), view=d["view"], mesh=tuple(d["mesh"]))


def write_manifest(path: str | Path, entries: Iterable[ManifestEntry]) -> int:
    """Write entries atomically (to a temporary file, then rename); returns the count."""
    n = 0
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for entry in entries:
            fh.write(entry.to_json() + "\n")
            n += 1
    return n


def read_manifest(path: str | Path) -> list[ManifestEntry]:
    """Read a manifest written by `cxrsearch data prepare`."""
    path = Path(path)
    if not path.is_file():
        raise DataNotPreparedError(f"{path}: no manifest; "
                                   "run `cxrsearch data fetch` and `cxrsearch data prepare` first")
    with open(path, encoding="utf-8") as fh:
        return [ManifestEntry.from_dict(json.loads(line)) for line in fh if line.strip()]
