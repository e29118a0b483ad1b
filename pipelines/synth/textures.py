"""Textures shared by every image: the pulmonary vessel tree and smooth mottle, built once per process.

The branching vessel tree is drawn once per (view, variant) into a canonical body-space texture
and warped onto each image's frame (`vessel_map`); the mottle is cut from one smooth noise bank
per view at a per-image offset (`mottle`). Both are cached; `warm_caches` builds them before
worker processes fork, so they share them.
"""
from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipelines.synth.body import VESSEL_VARIANTS, VIEWS, Body
from pipelines.synth.geometry import F32, Frame, rng_for

TEX_U = (-1.35, 1.35)    # body-space extent of the canonical textures (u across, v down)
TEX_V = (-0.45, 1.35)
TEX_SIZE = 256           # texture pixels across TEX_U and down TEX_V


@lru_cache(maxsize=8)
def vessel_texture(view: str, variant: int) -> Image.Image:
    """A branching pulmonary vessel tree in canonical body space (mode 'F', 0..1), drawn once per process."""
    rng = rng_for("vessel-texture", view, str(variant))
    W = H = TEX_SIZE
    img = Image.new("L", (W, H), 0)
    draw = ImageDraw.Draw(img)
    px_u = W / (TEX_U[1] - TEX_U[0])
    px_v = H / (TEX_V[1] - TEX_V[0])

    def to_px(u, v):
        return (u - TEX_U[0]) * px_u, (v - TEX_V[0]) * px_v

    def branch(x, y, angle, length, width, level):
        x2, y2 = x + math.cos(angle) * length, y + math.sin(angle) * length
        draw.line([(x, y), (x2, y2)], fill=int(90 + 165 * (0.75 ** level)), width=max(1, int(round(width))))
        if level < 6 and width > 0.6:
            for sign in (-1, 1):
                da = sign * rng.uniform(0.25, 0.55)
                branch(x2, y2, angle + da, length * rng.uniform(0.62, 0.8), width * rng.uniform(0.62, 0.78), level + 1)

    if view == "frontal":
        hila = [(-0.22, 0.43, -1), (0.22, 0.40, 1)]
    else:
        hila = [(0.05, 0.42, 0), (0.1, 0.45, 0)]
    for hu, hv, s in hila:
        x0, y0 = to_px(hu, hv)
        if s == 0:
            fan = np.linspace(-math.pi, math.pi, 9, endpoint=False)
        else:
            lateral = 0.0 if s > 0 else math.pi
            fan = [lateral + s * a for a in np.radians([-95, -65, -35, -10, 15, 40, 65, 90])]
        for a in fan:
            a = float(a) + rng.normal(0, 0.1)
            down = math.sin(a) > 0.3
            branch(x0, y0, a, rng.uniform(12, 17) * (1.15 if down else 1.0), 5.0 if down else 4.0, 0)
    img = img.filter(ImageFilter.GaussianBlur(0.9))
    arr = np.asarray(img, dtype=F32) * F32(1 / 255)
    return Image.fromarray(arr)


def warp_texture(tex: Image.Image, frame: Frame, offset: tuple[float, float]) -> np.ndarray:
    """Sample a canonical body-space texture at every pixel of `frame` (bilinear affine warp)."""
    # output pixel (x, y) -> body (u, v) -> texture pixel; compose the two affine maps
    c, s = math.cos(frame.angle), math.sin(frame.angle)
    px_u = TEX_SIZE / (TEX_U[1] - TEX_U[0])
    px_v = TEX_SIZE / (TEX_V[1] - TEX_V[0])
    # u = (c (x - cx) + s (y - cy)) / sx ; v = 0.5 + (-s (x - cx) + c (y - cy)) / sy
    a, b = c / frame.sx, s / frame.sx
    d, e = -s / frame.sy, c / frame.sy
    cu = -(a * frame.cx + b * frame.cy) + offset[0]
    cv = 0.5 - (d * frame.cx + e * frame.cy) + offset[1]
    coeffs = (a * px_u, b * px_u, (cu - TEX_U[0]) * px_u,
              d * px_v, e * px_v, (cv - TEX_V[0]) * px_v)
    out = tex.transform((frame.size, frame.size), Image.AFFINE, coeffs, Image.BILINEAR)
    return np.asarray(out, dtype=F32)


def vessel_map(body: Body, frame: Frame) -> np.ndarray:
    """The body's vessel tree (its view, variant and offset) at every pixel of `frame`: (size, size) float32 0..1."""
    return warp_texture(vessel_texture(body.view, body.vessel_variant), frame, body.texture_offset)


@lru_cache(maxsize=4)
def _mottle_bank(seed_name: str, size: int = 384) -> np.ndarray:
    """Smooth noise, cropped at a per-image offset (cheaper than fresh noise per image)."""
    rng = rng_for("mottle", seed_name)
    coarse = rng.standard_normal((size // 12, size // 12)).astype(F32)
    img = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=F32)


def mottle(view: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth noise (n, n) float32 for one image of `view`: a crop of the view's bank at a random offset."""
    bank = _mottle_bank(view)
    big = bank.shape[0]
    if n > big:
        reps = -(-n // big)
        bank = np.tile(bank, (reps, reps))
        big = bank.shape[0]
    y, x = rng.integers(0, big - n + 1, size=2)
    return bank[y:y + n, x:x + n]


def warm_caches() -> None:
    """Build the per-process textures now (before forking workers, so they share them)."""
    for view in VIEWS:
        for variant in range(VESSEL_VARIANTS):
            vessel_texture(view, variant)
        _mottle_bank(view)
