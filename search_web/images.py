"""Image files served by image id only.

The id is checked, looked up in the index, and resolved inside the image folder.
"""
from __future__ import annotations

import hashlib
import io
import re
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PIL import Image

from search_web.errors import BadRequest, NotFound

IMAGE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
SUFFIXES = (".png", ".jpg", ".jpeg")


def check_image_id(image_id: str) -> str:
    """The id if it has the shape of an image id (letters, digits, '_', '-', '.'; no path), else BadRequest."""
    if not IMAGE_ID.match(image_id or "") or ".." in image_id:
        shown = image_id if len(image_id) <= 80 else image_id[:80] + "..."
        raise BadRequest(f"image id {shown!r} is invalid: use letters, digits, '_', '-' and '.' "
                         "(e.g. CXR1_1_IM-0001-3001)")
    return image_id


def image_path(images_dir: Path, image_id: str) -> Path:
    """The file of an indexed image inside `images_dir` (never outside it), else NotFound."""
    check_image_id(image_id)
    root = images_dir.resolve()
    for suffix in SUFFIXES:
        path = (root / f"{image_id}{suffix}").resolve()
        if path.parent == root and path.is_file():
            return path
    raise NotFound(f"no image file for {image_id!r} in the image folder")


def grey_png(array: np.ndarray) -> bytes:
    """A (H, W) uint8 array as PNG bytes."""
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", optimize=False)
    return out.getvalue()


class Thumbnails:
    """JPEG thumbnails made on demand and kept in a small LRU cache (keyed by path, size and mtime)."""

    def __init__(self, size: int, capacity: int = 1024):
        self.size = size
        self.capacity = capacity
        self._cache: OrderedDict[tuple, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[bytes, str]:
        """(JPEG bytes, ETag) of `path`'s thumbnail."""
        stat = path.stat()
        key = (str(path), self.size, stat.st_mtime_ns, stat.st_size)
        etag = "t" + hashlib.sha1(repr(key).encode()).hexdigest()[:16]  # same in every worker
        with self._lock:
            data = self._cache.get(key)
            if data is not None:
                self._cache.move_to_end(key)
                return data, etag
        data = self._make(path)
        with self._lock:
            self._cache[key] = data
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        return data, etag

    def _make(self, path: Path) -> bytes:
        with Image.open(path) as img:
            img.draft("L", (self.size, self.size))
            if img.mode not in ("L", "RGB"):
                if img.mode.startswith("I") or img.mode == "F":
                    array = np.asarray(img, dtype=np.float64)
                    low, high = float(array.min()), float(array.max())
                    scaled = (array - low) / (high - low or 1.0) * 255.0
                    img = Image.fromarray(scaled.astype(np.uint8))
                else:
                    img = img.convert("L")
            img.thumbnail((self.size, self.size), Image.BILINEAR)
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=85)
        return out.getvalue()
