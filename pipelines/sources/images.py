"""Read an image folder laid out like Open-i's NLMCXR_png (`<image id>.png`), real or synthetic, the same way.

A synthetic folder (rendered by `cxrsearch data synth`) carries a marker file, SYNTHETIC.json;
`is_synthetic(folder)` reads it so that every stage, report and page built on such a folder can
say that its images are synthetic stand-ins.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.errors import PipelineError

MARKER_NAME = "SYNTHETIC.json"
IMAGE_SUFFIX = ".png"


class ImageLoadError(PipelineError):
    """An image file is missing or unreadable; the message names the file."""


def read_marker(folder: str | Path) -> dict | None:
    """The folder's SYNTHETIC.json as a dict, or None when the folder has no (readable) marker."""
    path = Path(folder) / MARKER_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_synthetic(folder: str | Path) -> bool:
    """True when the folder holds synthetic stand-in images (its marker says so)."""
    marker = read_marker(folder)
    return bool(marker and marker.get("synthetic") is True)


def image_path(folder: str | Path, image_id: str) -> Path:
    """Where an image id's PNG lives in an NLMCXR_png-style folder."""
    return Path(folder) / f"{image_id}{IMAGE_SUFFIX}"


def list_image_ids(folder: str | Path) -> list[str]:
    """Image ids (file stems) of every PNG in the folder, sorted."""
    return sorted(p.stem for p in Path(folder).glob(f"*{IMAGE_SUFFIX}") if p.is_file())


def load_image(path: str | Path) -> np.ndarray:
    """A radiograph as grayscale uint8 (H, W), whatever the PNG's mode.

    Real NLMCXR PNGs are 8-bit grayscale; 16-bit ones are scaled to 8 bits by their full range
    (not their content), colour or palette images are converted to luminance.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode == "L":
                return np.asarray(img, dtype=np.uint8).copy()
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(img).astype(np.int64)
                top = 65535 if mode.startswith("I;16") or arr.max() > 255 else 255
                return (np.clip(arr, 0, top) * 255 // top).astype(np.uint8)
            return np.asarray(img.convert("L"), dtype=np.uint8).copy()
    except FileNotFoundError as e:
        raise ImageLoadError(f"{path}: no such image file") from e
    except OSError as e:
        raise ImageLoadError(f"{path}: not a readable image ({e})") from e
