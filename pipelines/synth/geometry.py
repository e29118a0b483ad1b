"""Coordinates, seeds and soft-edged shape primitives shared by the synthetic-radiograph renderer.

Body coordinates
----------------
Every structure is placed in *body coordinates* (u, v), independent of image size and pose:

- Frontal (PA/AP) view: u runs across the thorax, -1 at the chest wall on the IMAGE LEFT and +1
  on the IMAGE RIGHT. Radiological convention: the patient faces the viewer, so the PATIENT'S
  RIGHT side is on the IMAGE LEFT (u < 0) and the patient's left is on the image right (u > 0).
  `side_sign('right') == -1` encodes this once for the whole renderer.
- Lateral view: u runs from the anterior chest wall (-1, image left: the patient faces left)
  to the back (+1, image right).
- v runs down the body: 0 at the lung apices, about 0.8-0.9 at the diaphragm, 1+ in the abdomen.

A `Frame` (one per image, seeded by the image id) maps body coordinates to pixels with a
per-image shift, scale and small rotation (positioning).
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

F32 = np.float32


def stable_seed(*parts: str) -> int:
    """A 64-bit seed from strings, identical on every run and machine (never Python's hash())."""
    digest = hashlib.blake2b("\x1f".join(parts).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def rng_for(*parts: str) -> np.random.Generator:
    """An independent random stream for (image id, purpose, ...)."""
    return np.random.default_rng(stable_seed(*parts))


def side_sign(side: str) -> int:
    """Sign of u for a patient side in the frontal view: 'right' -> -1 (image left), 'left' -> +1."""
    if side == "right":
        return -1
    if side == "left":
        return 1
    raise ValueError(f"side must be 'right' or 'left', not {side!r}")


@lru_cache(maxsize=8)
def pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y), each (size, size) float32, read-only."""
    axis = np.arange(size, dtype=F32) + F32(0.5)
    y, x = np.meshgrid(axis, axis, indexing="ij")
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


@dataclass(frozen=True)
class Frame:
    """Affine map body (u, v) <-> pixels (x right, y down) for one image.

    `cx, cy`: pixel position of the body point (u=0, v=0.5); `sx, sy`: pixels per body unit;
    `angle`: rotation of the body in radians (positive turns it clockwise on screen).
    """

    size: int
    cx: float
    cy: float
    sx: float
    sy: float
    angle: float = 0.0

    def to_pixel(self, u, v):
        """Body -> pixel coordinates (scalars or arrays)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        du, dv = np.asarray(u) * self.sx, (np.asarray(v) - 0.5) * self.sy
        return self.cx + du * c - dv * s, self.cy + du * s + dv * c

    def to_body(self, x, y):
        """Pixel -> body coordinates (scalars or arrays)."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        dx, dy = np.asarray(x) - self.cx, np.asarray(y) - self.cy
        return (dx * c + dy * s) / self.sx, 0.5 + (-dx * s + dy * c) / self.sy

    def body_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(u, v) of every pixel centre, each (size, size) float32."""
        x, y = pixel_grid(self.size)
        c, s = F32(math.cos(self.angle)), F32(math.sin(self.angle))
        dx, dy = x - F32(self.cx), y - F32(self.cy)
        u = (dx * c + dy * s) * F32(1.0 / self.sx)
        v = (dy * c - dx * s) * F32(1.0 / self.sy) + F32(0.5)
        return u, v

    def box(self, u0: float, v0: float, u1: float, v1: float, pad: float = 1.0) -> tuple[int, int, int, int]:
        """Pixel box (x0, y0, x1, y1), end-exclusive and clipped, covering a body-space rectangle."""
        c, s = math.cos(self.angle), math.sin(self.angle)
        xs, ys = [], []
        for u in (u0, u1):
            for v in (v0, v1):
                du, dv = u * self.sx, (v - 0.5) * self.sy
                xs.append(self.cx + du * c - dv * s)
                ys.append(self.cy + du * s + dv * c)
        return clip_box((min(xs) - pad, min(ys) - pad, max(xs) + pad, max(ys) + pad), self.size)


def clip_box(box, size: int) -> tuple[int, int, int, int]:
    """Round a float box outward to ints within [0, size]."""
    x0, y0, x1, y1 = box
    return (max(0, int(math.floor(x0))), max(0, int(math.floor(y0))),
            min(size, int(math.ceil(x1))), min(size, int(math.ceil(y1))))


# ---------------------------------------------------------------- soft shapes (any array shape)

def ramp(x: np.ndarray, edge: float) -> np.ndarray:
    """0 where x <= -edge/2, 1 where x >= edge/2, linear between: a soft 'x > 0'."""
    return np.clip(x * F32(1.0 / edge) + F32(0.5), F32(0.0), F32(1.0))


def smoothstep(a: float, b: float, x: np.ndarray) -> np.ndarray:
    """Hermite step from 0 at x=a to 1 at x=b."""
    t = np.clip((x - F32(a)) * F32(1.0 / (b - a)), F32(0.0), F32(1.0))
    return t * t * (F32(3.0) - F32(2.0) * t)


def ellipse(u, v, cu, cv, ru, rv, edge: float = 0.04, tilt: float = 0.0) -> np.ndarray:
    """Soft filled ellipse (1 inside); `edge` is the blur width relative to the radii."""
    du, dv = u - F32(cu), v - F32(cv)
    if tilt:
        c, s = F32(math.cos(tilt)), F32(math.sin(tilt))
        du, dv = du * c + dv * s, dv * c - du * s
    r = np.sqrt((du * F32(1.0 / ru)) ** 2 + (dv * F32(1.0 / rv)) ** 2)
    return ramp(F32(1.0) - r, edge)


def bump(r2: np.ndarray) -> np.ndarray:
    """Smooth compact profile of squared radius: (1 - r^2)^2 inside r < 1, exactly 0 outside."""
    t = np.clip(F32(1.0) - r2, F32(0.0), None)
    return t * t


def segment_distance(u, v, a: tuple[float, float], b: tuple[float, float]) -> np.ndarray:
    """Distance of every (u, v) to the segment a-b (same units as the inputs)."""
    au, av = a
    bu, bv = b
    eu, ev = bu - au, bv - av
    length2 = eu * eu + ev * ev or 1e-12
    t = np.clip(((u - F32(au)) * F32(eu) + (v - F32(av)) * F32(ev)) * F32(1.0 / length2), F32(0.0), F32(1.0))
    du = u - F32(au) - t * F32(eu)
    dv = v - F32(av) - t * F32(ev)
    return np.sqrt(du * du + dv * dv)


def polyline_distance(u, v, points: list[tuple[float, float]]) -> np.ndarray:
    """Distance of every (u, v) to a polyline."""
    best = None
    for a, b in zip(points[:-1], points[1:]):
        d = segment_distance(u, v, a, b)
        best = d if best is None else np.minimum(best, d)
    return best
