"""The reader side of the reindex job: its errors, shards, image listing and checks, and the build journal."""
from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from indexer.records import Report
from pipelines.errors import PipelineError
from pipelines.manifest import ManifestEntry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_FILE_BYTES = 64 * 1024 * 1024


class ReindexError(PipelineError):
    """The reindex job cannot start or continue; the message names the input and what to do."""


class ReindexCancelled(ReindexError):
    """The job was cancelled between batches; its build is kept and the next run resumes it."""


# --- shards and images ---------------------------------------------------------------------------------



def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N), with 1 <= I <= N."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ReindexError(f"--shard {text!r}: expected I/N, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise ReindexError(f"--shard {text!r}: I must be between 1 and N={n}")
    return i, n


def in_shard(image_id: str, shard: tuple[int, int]) -> bool:
    """Whether an image belongs to shard (I, N): crc32 of its id, the same on every machine."""
    i, n = shard
    return n == 1 or zlib.crc32(image_id.encode("utf-8")) % n == i - 1


def list_images(folder: str | os.PathLike, shard: tuple[int, int] = (1, 1)) -> list[tuple[str, Path]]:
    """(image id, path) of the image files in `folder` that belong to `shard`, sorted by image id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ReindexError(f"--images {folder}: not a folder")
    found: dict[str, Path] = {}
    with os.scandir(folder) as entries:
        for e in entries:
            stem, suffix = os.path.splitext(e.name)
            if suffix.lower() in IMAGE_SUFFIXES and e.is_file() and in_shard(stem, shard):
                found.setdefault(stem, Path(e.path))
    return sorted(found.items())


# The readable-radiograph limits of models.preprocess.load_radiograph (what `annotate` accepts),
# copied so that a job without a checkpoint need not import torch; a test checks that they agree.
MIN_SIDE = 64
MAX_PIXELS = 60_000_000


def is_synthetic_folder(folder: Path) -> bool:
    """Whether the folder holds synthetic stand-ins (its SYNTHETIC.json marker says so)."""
    from pipelines.sources.images import is_synthetic

    return is_synthetic(folder)


@dataclass
class Item:
    image_id: str
    path: Path
    entry: ManifestEntry | None
    report: Report | None
    digest: str = ""
    content_hash: str = ""


def inspect_image(item: Item, max_file_bytes: int) -> str | None:
    """Read and check one image; returns a skip reason, or None (and fills the digest) when usable."""
    try:
        size = item.path.stat().st_size
        if size > max_file_bytes:
            return f"oversized file (> {max_file_bytes:,} bytes)"
        if size == 0:
            return "empty file"
        data = item.path.read_bytes()
    except OSError as e:
        return f"unreadable file ({type(e).__name__})"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the size check below decides
            with Image.open(io.BytesIO(data)) as img:
                width, height = img.size
                if width * height > MAX_PIXELS:
                    return "oversized image (too many pixels)"
                if min(width, height) < MIN_SIDE:
                    return "too small to be a radiograph"
                img.load()  # decode fully: a truncated or corrupt file fails here
    except Image.DecompressionBombError:
        return "oversized image (too many pixels)"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return "corrupt or not an image"
    item.digest = hashlib.sha256(data).hexdigest()
    return None


# --- the journal ----------------------------------------------------------------------------------------

BUILDS_DIR = "builds"


def build_dir(index_dir: str | os.PathLike, version: str) -> Path:
    """<index_dir>/builds/<version>: the journals and vector segments of one unfinished build."""
    return Path(index_dir) / BUILDS_DIR / version


def journal_path(index_dir: str | os.PathLike, version: str, part: tuple[int, int]) -> Path:
    """<index_dir>/builds/<version>/journal-IofN.jsonl: the one place a part's journal path is made."""
    i, n = part
    return build_dir(index_dir, version) / f"journal-{i}of{n}.jsonl"


def journals_of_part(index_dir: str | os.PathLike, part: tuple[int, int]) -> list[Path]:
    """The journals of `part` in every build under index_dir, oldest version first."""
    builds = Path(index_dir) / BUILDS_DIR
    if not builds.is_dir():
        return []
    name = journal_path(index_dir, "x", part).name
    return sorted(p for p in builds.glob(f"*/{name}"))


def part_of(name: str) -> tuple[int, int]:
    """'I/N' (as recorded by the text backend) -> (I, N)."""
    i, n = (int(x) for x in name.split("/"))
    return i, n


class Journal:
    """Append-only record of one part of one build: a header line, then one line per written batch."""

    def __init__(self, path: Path):
        self.path = path

    def header(self) -> dict | None:
        try:
            with open(self.path, encoding="utf-8") as fh:
                return json.loads(fh.readline())
        except (OSError, ValueError):
            return None

    def start(self, header: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._append(header, mode="w")

    def batches(self) -> Iterable[dict]:
        with open(self.path, encoding="utf-8") as fh:
            next(fh, None)
            for line in fh:
                try:
                    yield json.loads(line)
                except ValueError:  # a line cut short by a kill: that batch is redone
                    return

    def recover(self) -> list[dict]:
        """The complete batch records, cutting a line a kill cut short (and what follows) off the file.

        Without the cut, the next line appended would continue the broken one and be lost on a later resume.
        """
        records, keep = [], 0
        with open(self.path, "rb") as fh:
            keep = len(fh.readline())
            for line in fh:
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("no line end")
                    records.append(json.loads(line))
                except ValueError:  # that batch is redone
                    break
                keep += len(line)
        if keep < self.path.stat().st_size:
            with open(self.path, "r+b") as fh:
                fh.truncate(keep)
                os.fsync(fh.fileno())
        return records

    def append(self, record: dict) -> None:
        self._append(record)

    def _append(self, record: dict, mode: str = "a") -> None:
        with open(self.path, mode, encoding="utf-8") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


# --- inputs -----------------------------------------------------------------------------------------


def file_digest(path: Path | None) -> str | None:
    """A digest of a manifest file or a report folder/archive (None for None): part of the job's key."""
    if path is None:
        return None
    if path.is_dir():
        h = hashlib.sha256()
        for p in sorted(path.rglob("*.xml")):
            h.update(p.name.encode())
            h.update(str(p.stat().st_size).encode())
            h.update(str(p.stat().st_mtime_ns).encode())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_report_map(path: Path | None) -> dict[str, Report]:
    """Open-i reports by report id (empty for None)."""
    if path is None:
        return {}
    from pipelines.sources.openi import load_reports

    reports, _ = load_reports(path)
    return {r.report_id: r for r in reports}
