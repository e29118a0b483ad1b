"""Training data: manifest entries joined with their images, decoded once and cached as uint8."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.errors import UnusableImageError
from models.preprocess import load_radiograph, resize_square
from pipelines.errors import DataNotPreparedError
from pipelines.manifest import ManifestEntry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def default_image_dir(root: Path) -> Path:
    """Where `cxrsearch data synth` puts the synthetic corpus (same layout as Open-i's NLMCXR_png)."""
    return root / "images" / "synthetic" / "NLMCXR_png"


def image_path(image_dir: Path, image_id: str) -> Path | None:
    """`<image_dir>/<image_id>.png` (or .jpg/.jpeg), None when absent."""
    for suffix in IMAGE_SUFFIXES:
        path = image_dir / f"{image_id}{suffix}"
        if path.is_file():
            return path
    return None


@dataclass
class ImageSet:
    """Decoded images in manifest order; images that could not be used are listed with a reason."""

    image_ids: list[str]
    images: np.ndarray                                    # (N, S, S) uint8
    skipped: dict[str, str] = field(default_factory=dict)  # image_id -> reason

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for reason in self.skipped.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        extra = ", ".join(f"{n} {r}" for r, n in sorted(reasons.items()))
        return f"{len(self.image_ids)} images loaded, {len(self.skipped)} skipped" + (f" ({extra})" if extra else "")


def _cache_key(image_dir: Path, image_ids: Sequence[str], size: int) -> str:
    digest = hashlib.sha256(f"{image_dir.resolve()}|{size}".encode())
    for image_id in image_ids:
        path = image_path(image_dir, image_id)
        stat = path.stat() if path else None
        digest.update(f"{image_id}:{stat.st_size if stat else -1}:{stat.st_mtime_ns if stat else -1};".encode())
    return digest.hexdigest()[:16]


def load_image_set(image_ids: Sequence[str], image_dir: str | Path, size: int,
                   cache_dir: str | Path | None = None, progress: bool = True) -> ImageSet:
    """Decode and resize every image to (size, size) uint8, reusing a cache keyed on the files.

    Missing or unusable files are skipped (reason kept), never fatal; no image at all is.
    """
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise DataNotPreparedError(f"{image_dir}: no image folder; render the synthetic corpus "
                                   "(`cxrsearch data synth`) or pass --images DIR")
    cache = None
    if cache_dir is not None:
        key = _cache_key(image_dir, image_ids, size)
        cache = Path(cache_dir) / f"images_{size}_{key}"
        if cache.with_suffix(".npy").is_file() and cache.with_suffix(".json").is_file():
            meta = json.loads(cache.with_suffix(".json").read_text())
            return ImageSet(meta["image_ids"], np.load(cache.with_suffix(".npy")), meta["skipped"])
    kept: list[str] = []
    arrays: list[np.ndarray] = []
    skipped: dict[str, str] = {}
    for image_id in tqdm(image_ids, desc=f"images {size}px", unit="img", disable=not progress, mininterval=2):
        path = image_path(image_dir, image_id)
        if path is None:
            skipped[image_id] = "missing"
            continue
        try:
            arrays.append(resize_square(load_radiograph(path), size))
        except UnusableImageError as e:
            skipped[image_id] = e.reason
            continue
        kept.append(image_id)
    if not kept:
        raise DataNotPreparedError(f"no usable image in {image_dir} for {len(image_ids)} manifest entries "
                                   f"(e.g. {image_ids[0] if image_ids else '-'}.png)")
    images = np.stack(arrays)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.save(cache.with_suffix(".npy"), images)
        cache.with_suffix(".json").write_text(json.dumps({"image_ids": kept, "skipped": skipped}))
    return ImageSet(kept, images, skipped)


@dataclass
class Corpus:
    """Manifest entries that have an image, aligned row by row with `images`."""

    entries: list[ManifestEntry]
    images: np.ndarray            # (N, S, S) uint8
    skipped: dict[str, str]

    @classmethod
    def build(cls, entries: Sequence[ManifestEntry], image_set: ImageSet) -> Corpus:
        row = {image_id: i for i, image_id in enumerate(image_set.image_ids)}
        kept = [e for e in entries if e.image_id in row]
        images = image_set.images[[row[e.image_id] for e in kept]] if kept else image_set.images[:0]
        return cls(kept, images, dict(image_set.skipped))
