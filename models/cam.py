"""Where the cascade looked: class activation maps (CAM) of a label or concept, an overlay PNG, and the pointing game.

Every cascade CNN ends in global average pooling and linear heads, so the class activation map of
Zhou et al. (CVPR 2016) is exact: the head's weights for the target class applied to the last
convolutional maps, `cam(y, x) = sum_k w_k F_k(y, x)`. The web UI calls `class_activation_map`
and `overlay_png`; neither needs anything outside `models`.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from models.errors import ModelError
from models.preprocess import resize_square, stored_size, to_input

if TYPE_CHECKING:
    from models.cascade import Cascade

Target = int | str | None


def _head_row(cascade: Cascade, logits: torch.Tensor, target: Target) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (E,), bias ()) of the head row that `target` names, for one image's (L,) label logits.

    None: the predicted label. int: a label index. 'field:value': a concept key of the concept head.
    A label name ('opacity#2'), or a base label ('opacity'): the best-scoring of its clusters.
    """
    cnn = cascade.cnn
    names = cascade.label_names
    if target is None:
        j = int(logits.argmax())
        return cnn.fc.weight[j], cnn.fc.bias[j]
    if isinstance(target, (int, np.integer)):
        if not 0 <= int(target) < len(names):
            raise ModelError(f"label index {target} out of range 0..{len(names) - 1}")
        return cnn.fc.weight[int(target)], cnn.fc.bias[int(target)]
    if ":" in target:
        if target not in cascade.concept_names:
            valid = ", ".join(cascade.concept_names[:8]) or "none: this checkpoint has no concept head"
            raise ModelError(f"unknown concept {target!r}; valid keys look like: {valid}")
        k = cascade.concept_names.index(target)
        return cnn.concept_head.weight[k], cnn.concept_head.bias[k]
    rows = [j for j, name in enumerate(names) if name == target or name.split("#", 1)[0] == target]
    if not rows:
        raise ModelError(f"unknown label {target!r}; valid: {sorted({n.split('#', 1)[0] for n in names})}")
    j = max(rows, key=lambda r: float(logits[r]))
    return cnn.fc.weight[j], cnn.fc.bias[j]


@torch.no_grad()
def class_activation_map(cascade: Cascade, stored_image: np.ndarray, target: Target = None) -> np.ndarray:
    """CAM of `target` for one grey image: (H, W) uint8 -> (H, W) float32 in [0, 1].

    Args:
        cascade: a loaded cascade (models.cascade.Cascade).
        stored_image: (H, W) uint8 grey image, e.g. `models.preprocess.prepare(path, cfg.cnn)`; any
            size is resized to the network's input, and the map is returned at (H, W).
        target: None (the CNN's predicted label), a label name or base label ('opacity'), a label
            index, or a concept key ('findings:opacity').
    Returns:
        The positive part of the map, scaled so its peak is 1 (all zeros when nothing scores).
    """
    image = np.asarray(stored_image)
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ModelError(f"stored_image must be a (H, W) uint8 grey array, got {image.shape} {image.dtype}")
    cnn = cascade.cnn.eval()
    size = stored_size(cascade.config.cnn)
    x = to_input(resize_square(image, size)[None], cascade.config.cnn).to(cascade.device)   # (1, C, s, s)
    maps = cnn.maps(x)[0].float()                                     # (E, h, w)
    logits = cnn.fc(maps.mean(dim=(1, 2)))                            # (L,)
    weight, _ = _head_row(cascade, logits, target)                    # (E,)
    cam = torch.einsum("e,ehw->hw", weight.float(), maps).clamp(min=0)  # (h, w)
    if cascade.config.cnn.crop == "random":      # the network saw the centre crop of the stored image
        crop = cascade.config.cnn.input_size
        pad = (size - crop) // 2
        up = F.interpolate(cam[None, None], size=(crop, crop), mode="bilinear", align_corners=False)[0, 0]
        cam = F.pad(up, (pad, size - crop - pad, pad, size - crop - pad))      # (size, size), zero outside
    cam = F.interpolate(cam[None, None], size=image.shape, mode="bilinear", align_corners=False)[0, 0]
    peak = float(cam.max())
    out = (cam / peak if peak > 0 else torch.zeros_like(cam)).cpu().numpy().astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def _heat_colours(values: np.ndarray) -> np.ndarray:
    """(H, W) in [0, 1] -> (H, W, 3) uint8, a blue-green-yellow-red ramp (no matplotlib needed)."""
    stops = np.array([0.0, 0.35, 0.65, 1.0])
    colours = np.array([[0, 0, 180], [0, 200, 120], [255, 220, 0], [230, 20, 20]], dtype=np.float32)
    rgb = np.stack([np.interp(values, stops, colours[:, c]) for c in range(3)], axis=-1)
    return rgb.astype(np.uint8)


def overlay_png(stored_image: np.ndarray, cam: np.ndarray, alpha: float = 0.45, mark_peak: bool = True) -> bytes:
    """PNG bytes: the grey image with the map blended in as colour where it is high, and its peak marked.

    Args:
        stored_image: (H, W) uint8 grey image.
        cam: (H, W) map in [0, 1] (class_activation_map's output for this image).
        alpha: the map's opacity at its peak (it fades to transparent where the map is 0).
    """
    image = np.asarray(stored_image)
    cam = np.asarray(cam, dtype=np.float32)
    if image.ndim != 2 or cam.shape != image.shape:
        raise ModelError(f"need a (H, W) image and a map of the same shape, got {image.shape} and {cam.shape}")
    grey = np.repeat(image[..., None].astype(np.float32), 3, axis=-1)               # (H, W, 3)
    weight = (alpha * np.clip(cam, 0, 1))[..., None]                               # (H, W, 1)
    blended = grey * (1 - weight) + _heat_colours(np.clip(cam, 0, 1)).astype(np.float32) * weight
    out = np.clip(blended, 0, 255).astype(np.uint8)
    if mark_peak and float(cam.max()) > 0:
        y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
        r = max(2, min(image.shape) // 40)
        out[max(0, y - r):y + r + 1, x] = (255, 255, 255)
        out[y, max(0, x - r):x + r + 1] = (255, 255, 255)
    buffer = io.BytesIO()
    Image.fromarray(out, mode="RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def peak(cam: np.ndarray) -> tuple[int, int]:
    """(y, x) of the map's maximum."""
    y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return int(y), int(x)


def pointing_hit(cam: np.ndarray, boxes: Sequence[Sequence[float]], box_size: int, tolerance: float = 0.0) -> bool:
    """Pointing game: does the map's peak fall inside one of `boxes` (grown by `tolerance` pixels)?

    Args:
        cam: (H, W) map.
        boxes: [x0, y0, x1, y1] boxes in the pixel frame of a box_size x box_size image (regions.jsonl).
        box_size: side of the image the boxes were drawn on; they are scaled to the map's size.
        tolerance: margin in the boxes' pixels.
    """
    y, x = peak(cam)
    h, w = cam.shape
    sx, sy = w / box_size, h / box_size
    px, py = (x + 0.5) / sx, (y + 0.5) / sy          # peak in the boxes' frame
    return any(x0 - tolerance <= px <= x1 + tolerance and y0 - tolerance <= py <= y1 + tolerance
               for x0, y0, x1, y1 in boxes)


def box_area_fraction(boxes: Sequence[Sequence[float]], box_size: int, tolerance: float = 0.0) -> float:
    """Share of the image covered by the union of the boxes (grown by `tolerance` pixels): the hit rate
    of a uniformly random point."""
    mask = np.zeros((box_size, box_size), dtype=bool)
    for x0, y0, x1, y1 in boxes:
        x0, y0, x1, y1 = x0 - tolerance, y0 - tolerance, x1 + tolerance, y1 + tolerance
        mask[max(0, int(y0)):int(np.ceil(y1)), max(0, int(x0)):int(np.ceil(x1))] = True
    return float(mask.mean())
