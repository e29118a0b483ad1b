"""Shared helpers for the synthetic-corpus tests: small renders and region/difference measurements."""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from pipelines.synth.render import Region, render

SIZE = 128
IMAGE_ID = "CXR1234_IM-0100-1001"


def diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute per-pixel difference as int (H, W)."""
    return np.abs(a.astype(np.int16) - b.astype(np.int16))


def region_mask(regions: list[Region], shape: tuple[int, int], grow: int = 2) -> np.ndarray:
    """Union of the regions' boxes, grown by `grow` pixels (bool (H, W))."""
    mask = np.zeros(shape, bool)
    h, w = shape
    for r in regions:
        x0, y0, x1, y1 = r.box
        mask[max(0, y0 - grow):min(h, y1 + grow), max(0, x0 - grow):min(w, x1 + grow)] = True
    return mask


def centroid_x(d: np.ndarray) -> float:
    """x of the centre of mass of a difference image."""
    weight = d.astype(float)
    return float((weight.sum(axis=0) * np.arange(d.shape[1])).sum() / weight.sum())


def centroid_y(d: np.ndarray) -> float:
    weight = d.astype(float)
    return float((weight.sum(axis=1) * np.arange(d.shape[0])).sum() / weight.sum())


@lru_cache(maxsize=64)
def normal_image(image_id: str, view: str, size: int) -> np.ndarray:
    """The image with no finding (read-only, cached: the renderer is deterministic)."""
    img, _ = render(image_id, [], view, size)
    img.setflags(write=False)
    return img


def render_pair(term: str, view: str = "frontal", image_id: str = IMAGE_ID, size: int = SIZE):
    """(normal image, image with the term, regions of the term)."""
    img, regions = render(image_id, [term], view, size)
    return normal_image(image_id, view, size), img, regions
