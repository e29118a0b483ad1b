"""Render the synthetic corpus: one PNG per image id, a regions manifest and a SYNTHETIC.json marker.

Input is any iterable of (image_id, terms, view): from the image manifest (`items_from_manifest`)
or straight from the reports (`items_from_reports`). Work done before is not done again: an image
is skipped when its PNG exists and regions.jsonl holds its record with the same stamp (generator
version, size, view and terms). Records are appended as images finish, so an interrupted run
resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import struct
import time
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from indexer.files import atomic_path, atomic_write
from pipelines.errors import PipelineError
from pipelines.sources.images import IMAGE_SUFFIX, MARKER_NAME, image_path, read_marker
from pipelines.synth.render import DEFAULT_SIZE, GENERATOR, GENERATOR_VERSION, Region, render_image, warm_up

REGIONS_NAME = "regions.jsonl"
STATEMENT = ("These images are SYNTHETIC stand-ins rendered by cxrsearch from the real Open-i (Indiana "
             "University) MeSH annotation of each image id. They are not radiographs of any patient and "
             "carry no clinical information: anything measured on them measures the software, never "
             "clinical accuracy.")


class SynthError(PipelineError):
    """The synthetic corpus cannot be written (bad output folder, bad input)."""


@dataclass(frozen=True)
class CorpusItem:
    """One image to render: its id, raw MeSH major terms and view ('frontal' | 'lateral')."""

    image_id: str
    terms: tuple[str, ...]
    view: str


def as_item(item) -> CorpusItem:
    """Accept a CorpusItem or an (image_id, terms, view) tuple; terms may be MeshTerm or strings."""
    if isinstance(item, CorpusItem):
        return item
    image_id, terms, view = item
    return CorpusItem(str(image_id), tuple(getattr(t, "raw", t) for t in terms), str(view))


def items_from_manifest(path: str | Path) -> list[CorpusItem]:
    """Items from the image manifest written by `cxrsearch data prepare`."""
    from pipelines.manifest import read_manifest

    return [CorpusItem(e.image_id, tuple(e.mesh), e.view) for e in read_manifest(path)]


def items_from_reports(reports, positions: dict[str, str] | None = None) -> list[CorpusItem]:
    """Items straight from parsed reports; views from DICOM positions, else the image order."""
    from pipelines.sources.views import assign_views

    items = []
    for report in reports:
        views = assign_views(report.image_ids, positions or {})
        terms = tuple(t.raw for t in report.mesh_major)
        items.extend(CorpusItem(i, terms, views[i]) for i in report.image_ids)
    return items


def stamp(item: CorpusItem, size: int) -> str:
    """What an image's pixels depend on; equal stamps mean equal images."""
    text = "\x1f".join([GENERATOR, GENERATOR_VERSION, str(size), item.view, *item.terms])
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class CorpusSummary:
    """What a corpus run did."""

    out_dir: Path
    size: int
    total: int = 0
    rendered: int = 0
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    not_drawn: Counter = field(default_factory=Counter)     # unknown term key -> images
    invisible: Counter = field(default_factory=Counter)     # known term not visible in its view -> images
    concepts: Counter = field(default_factory=Counter)      # concept -> regions drawn (this run)
    duplicates: int = 0
    seconds: float = 0.0

    def format(self, top: int = 10) -> str:
        rate = self.rendered / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"synthetic corpus: {self.out_dir}",
            f"  images {self.total}: rendered {self.rendered}, skipped {self.skipped} (already rendered), "
            f"failed {len(self.failed)}" + (f", duplicate ids {self.duplicates}" if self.duplicates else ""),
            f"  size {self.size}x{self.size}, generator {GENERATOR} {GENERATOR_VERSION}, "
            f"time {self.seconds:.1f} s ({rate:.1f} images/s)",
        ]
        if self.not_drawn:
            n = sum(self.not_drawn.values())
            lines.append(f"  terms not drawn (unknown to the renderer): {n} in {len(self.not_drawn)} kinds")
            for key, count in self.not_drawn.most_common(top):
                lines.append(f"    {count:5d}  {key}")
        else:
            lines.append("  terms not drawn (unknown to the renderer): none")
        if self.invisible:
            lines.append(f"  terms with nothing to show in their view: {sum(self.invisible.values())}")
            for key, count in self.invisible.most_common(min(top, 5)):
                lines.append(f"    {count:5d}  {key}")
        for image_id, why in list(self.failed.items())[:top]:
            lines.append(f"  FAILED {image_id}: {why}")
        lines.append("  these images are synthetic stand-ins, not radiographs (see SYNTHETIC.json)")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "size": self.size, "total": self.total, "rendered": self.rendered,
                "skipped": self.skipped, "failed": self.failed, "not_drawn": dict(self.not_drawn),
                "invisible": dict(self.invisible), "seconds": round(self.seconds, 2)}


def read_records(out_dir: str | Path) -> dict[str, dict]:
    """regions.jsonl as image id -> its latest record (unreadable lines are ignored)."""
    path = Path(out_dir) / REGIONS_NAME
    records: dict[str, dict] = {}
    if not path.is_file():
        return records
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and "image_id" in rec:
                records[rec["image_id"]] = rec
    return records


def read_regions(out_dir: str | Path) -> dict[str, list[Region]]:
    """The drawn regions of every image in a synthetic folder: image id -> regions (boxes, no masks)."""
    return {iid: [Region.from_dict(iid, r) for r in rec.get("regions", [])]
            for iid, rec in read_records(out_dir).items()}


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray, level: int = 1) -> bytes:
    """8-bit grayscale PNG bytes of an (H, W) uint8 image ("Up" row filter, zlib `level`).

    A plain, standard PNG (any reader opens it); written here because it is faster than the
    general-purpose encoder for this one case and the corpus writes thousands of them.
    """
    if image.dtype != np.uint8 or image.ndim != 2:
        raise ValueError(f"need an (H, W) uint8 image, not {image.dtype} {image.shape}")
    h, w = image.shape
    rows = np.empty((h, w + 1), np.uint8)
    rows[:, 0] = 2                                            # filter type 2: Up
    rows[:, 1:] = np.diff(image, axis=0, prepend=np.zeros((1, w), np.uint8))   # uint8 wraps mod 256
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)     # 8-bit, grayscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _png_chunk(b"IEND", b""))


def _render_one(args: tuple[CorpusItem, str, int, str]) -> dict:
    """Worker: render one image, write its PNG atomically, return its record (or the error)."""
    item, out_dir, size, item_stamp = args
    try:
        r = render_image(item.image_id, item.terms, item.view, size)
        atomic_write(image_path(out_dir, item.image_id), encode_png(r.image))
    except Exception as e:  # one bad image must not stop the corpus; it is reported in the summary
        return {"image_id": item.image_id, "error": f"{type(e).__name__}: {e}"}
    return {
        "image_id": item.image_id, "view": item.view, "size": size, "generator": GENERATOR,
        "version": GENERATOR_VERSION, "stamp": item_stamp, "terms": list(item.terms),
        "regions": [reg.to_dict() for reg in r.regions], "not_drawn": r.not_drawn, "invisible": r.invisible,
    }


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to write synthetic images into a folder of other images (e.g. the real archive)."""
    if not out_dir.exists():
        return
    if read_marker(out_dir) is None and any(out_dir.glob(f"*{IMAGE_SUFFIX}")):
        raise SynthError(f"{out_dir} holds PNG images but no {MARKER_NAME} marker: it looks like a real "
                         "image archive; refusing to write synthetic images there (choose another --out)")


def write_marker(out_dir: Path, size: int, count: int, complete: bool) -> None:
    """Write SYNTHETIC.json (atomically): what made the folder, how many images, complete or not."""
    marker = {
        "synthetic": True,
        "generator": GENERATOR,
        "version": GENERATOR_VERSION,
        "size": size,
        "count": count,
        "complete": complete,
        "statement": STATEMENT,
        "regions": REGIONS_NAME,
        "written": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    atomic_write(out_dir / MARKER_NAME, json.dumps(marker, indent=2) + "\n")


def render_corpus(items: Iterable, out_dir: str | Path, size: int = DEFAULT_SIZE, workers: int = 2,
                  limit: int | None = None, force: bool = False, progress: bool = True) -> CorpusSummary:
    """Render every item's PNG into `out_dir` (skipping what is already there), with regions and marker.

    Args:
        items: (image_id, terms, view) tuples or CorpusItems.
        out_dir: the NLMCXR_png-style folder to write.
        size: image width and height.
        workers: processes (1 = render in this process).
        limit: render only the first `limit` items.
        force: render again even when an up-to-date PNG exists.
        progress: show a tqdm bar.
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    _check_out_dir(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen: list[CorpusItem] = []
    seen: set[str] = set()
    summary = CorpusSummary(out_dir=out_dir, size=size)
    for raw in items:
        if limit is not None and len(chosen) >= limit:
            break
        item = as_item(raw)
        if item.image_id in seen:
            summary.duplicates += 1
            continue
        seen.add(item.image_id)
        chosen.append(item)
    summary.total = len(chosen)

    records = read_records(out_dir)
    todo = []
    for item in chosen:
        s = stamp(item, size)
        rec = records.get(item.image_id)
        if not force and rec is not None and rec.get("stamp") == s and image_path(out_dir, item.image_id).is_file():
            summary.skipped += 1
            _count(summary, rec, drawn_now=False)
            continue
        todo.append((item, str(out_dir), size, s))

    write_marker(out_dir, size, count=len(records), complete=False)
    regions_path = out_dir / REGIONS_NAME
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="synth", unit="img", smoothing=0.05)
    with open(regions_path, "a", encoding="utf-8") as fh:
        for rec in _run(todo, workers):
            if "error" in rec:
                summary.failed[rec["image_id"]] = rec["error"]
            else:
                summary.rendered += 1
                records[rec["image_id"]] = rec
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
                _count(summary, rec, drawn_now=True)
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()

    _compact(regions_path, records)
    done = sum(1 for iid in records if image_path(out_dir, iid).is_file())
    write_marker(out_dir, size, count=done, complete=not summary.failed)
    summary.seconds = time.perf_counter() - t0
    return summary


def _count(summary: CorpusSummary, rec: dict, drawn_now: bool) -> None:
    summary.not_drawn.update(rec.get("not_drawn", []))
    summary.invisible.update(rec.get("invisible", []))
    if drawn_now:
        summary.concepts.update(r["concept"] for r in rec.get("regions", []))


def _run(todo: list, workers: int):
    if not todo:
        return
    if workers <= 1 or len(todo) < 8:
        for args in todo:
            yield _render_one(args)
        return
    fork = "fork" in multiprocessing.get_all_start_methods()
    if fork:
        warm_up(todo[0][2])   # forked workers inherit the textures instead of each building them
    ctx = multiprocessing.get_context("fork" if fork else "spawn")
    chunk = max(1, min(16, len(todo) // (workers * 8)))
    with ctx.Pool(processes=workers) as pool:
        yield from pool.imap_unordered(_render_one, todo, chunksize=chunk)


def _compact(path: Path, records: dict[str, dict]) -> None:
    """Rewrite regions.jsonl with one line per image id, sorted (appends leave older lines behind)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        for iid in sorted(records):
            fh.write(json.dumps(records[iid], separators=(",", ":")) + "\n")
