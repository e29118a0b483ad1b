"""The canvas findings draw on: density map, anatomy geometry, zone placement and local drawing primitives.

Findings are drawn at full resolution inside small windows, in body coordinates (see
`geometry.py`; frontal: the patient's right is on the image left). Every primitive returns a
`Mark`: the pixel box where it changed the density (exactly where its field is non-zero) and
a mask, which become the finding's recorded regions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipelines.synth.body import ASPECT, SIDES, Body, lateral_lung_field, lung_field
from pipelines.synth.geometry import F32, Frame, bump, clip_box, pixel_grid, polyline_distance, ramp, side_sign
from pipelines.synth.textures import vessel_map

EPS = 2e-3  # density change below this is "not drawn"


@dataclass
class Mark:
    """One drawn piece of a finding: pixel box (x0, y0, x1, y1) and an optional mask over the box."""

    box: tuple[int, int, int, int]
    mask: np.ndarray | None = None


# Zones in the frontal view: (w0, w1, v0, v1) with w the distance from the midline towards the
# named side; v in body units, `d` stands for that side's dome top. Resolved by `Scene.zone_box`.
FRONTAL_ZONES = {
    "apex": (0.22, 0.5, "a+0.04", "a+0.15"),
    "upper": (0.25, 0.68, 0.08, 0.34),
    "middle": (0.22, 0.5, 0.46, 0.64),
    "lingula": (0.48, 0.74, 0.44, 0.62),
    "lower": (0.35, 0.75, 0.56, "d-0.01"),
    "base": (0.4, 0.8, "d-0.07", "d+0.04"),
    "hilum": (0.13, 0.3, 0.35, 0.5),
    "retrocardiac": (0.06, 0.3, 0.6, "d+0.02"),
    "paratracheal": (0.06, 0.15, 0.06, 0.28),
    None: (0.25, 0.75, 0.1, "d-0.06"),
}
# Lateral view (both lungs overlap; anterior u < 0): (u0, u1, v0, v1).
LATERAL_ZONES = {
    "apex": (-0.2, 0.4, "a+0.04", "a+0.15"),
    "upper": (-0.35, 0.45, 0.08, 0.34),
    "middle": (-0.62, -0.25, 0.42, 0.6),
    "lingula": (-0.62, -0.25, 0.42, 0.6),
    "lower": (0.05, 0.6, 0.55, "d-0.02"),
    "base": (0.2, 0.7, "d-0.03", "d+0.08"),
    "hilum": (-0.05, 0.25, 0.36, 0.5),
    "retrocardiac": (0.0, 0.4, 0.58, "d"),
    "paratracheal": (-0.15, 0.1, 0.1, 0.3),
    None: (-0.5, 0.55, 0.12, "d-0.08"),
}


class Scene:
    """Density map of one image plus the (modified) body, the unmodified body and the pixel frame."""

    def __init__(self, image_id: str, body: Body, base: Body, frame: Frame, density: np.ndarray, air=None):
        self._air_fn = air
        self._air = None
        self.image_id = image_id
        self.body = body
        self.base = base
        self.frame = frame
        self.density = density          # (S, S) float32, drawn into in place
        self.size = frame.size
        self._vessels = None

    @property
    def view(self) -> str:
        return self.body.view

    @property
    def frontal(self) -> bool:
        return self.body.view == "frontal"

    # ------------------------------------------------------------ coordinates

    def window(self, u0: float, v0: float, u1: float, v1: float):
        """(slices, u, v) of the full-resolution pixels covering a body-space box, or None if off-canvas."""
        x0, y0, x1, y1 = self.frame.box(u0, v0, u1, v1, pad=1.0)
        if x1 <= x0 or y1 <= y0:
            return None
        gx, gy = pixel_grid(self.size)
        sl = (slice(y0, y1), slice(x0, x1))
        uu, vv = self.frame.to_body(gx[sl], gy[sl])
        return sl, uu.astype(F32), vv.astype(F32)

    def box_mark(self, u0: float, v0: float, u1: float, v1: float) -> Mark | None:
        """A region from a body-space box (for findings that change the anatomy itself)."""
        box = self.frame.box(min(u0, u1), min(v0, v1), max(u0, u1), max(v0, v1), pad=1.0)
        if box[2] <= box[0] or box[3] <= box[1]:
            return None
        return Mark(box=box)

    def u_of(self, side: str, w: float) -> float:
        """Frontal u of a point at distance w from the midline on the patient's `side`."""
        return side_sign(side) * w + self.body.shift

    def zone_box(self, side: str | None, zone: str | None) -> tuple[float, float, float, float]:
        """Body-space box (u0, v0, u1, v1) of a lung zone on the patient's `side` (ignored in lateral)."""
        table = FRONTAL_ZONES if self.frontal else LATERAL_ZONES
        a0, a1, v0, v1 = table.get(zone, table[None])
        side = side or "right"
        d = self.body.dome_v[side]

        def resolve(x):
            if isinstance(x, str):
                base = {"a": self.body.apex_v, "d": d}[x[0]]
                return base + (float(x[1:]) if len(x) > 1 else 0.0)
            return x

        v0, v1 = resolve(v0), resolve(v1)
        if v1 - v0 < 0.06:            # a raised diaphragm squeezes the lower zones: keep them above it
            v0 = v1 - 0.06
        if not self.frontal:
            return a0, v0, a1, v1
        u0, u1 = sorted((self.u_of(side, a0), self.u_of(side, a1)))
        return u0, v0, u1, v1

    def lung(self, uu, vv, sides: tuple[str, ...] = ()) -> np.ndarray:
        """Lung mask on window coordinates (union of `sides`; both lungs when empty or lateral)."""
        if not self.frontal:
            return lateral_lung_field(self.body, uu, vv)[0]
        sides = sides or SIDES
        mask = None
        for s in sides:
            m = lung_field(self.body, uu, vv, s)[0]
            mask = m if mask is None else np.maximum(mask, m)
        return mask

    def in_lung(self, u: np.ndarray, v: np.ndarray, side: str | None) -> np.ndarray:
        """Lung mask at scattered points (arrays of shape (k,))."""
        return self.lung(u.astype(F32), v.astype(F32), (side,) if side else ())

    def point(self, rng: np.random.Generator, side: str | None, zone: str | None,
              margin: float = 0.0, tries: int = 24) -> tuple[float, float]:
        """A random point of the zone that lies inside the lung (best of `tries` candidates)."""
        u0, v0, u1, v1 = self.zone_box(side, zone)
        us = rng.uniform(u0, u1, tries)
        vs = rng.uniform(v0, v1, tries)
        offsets = [(0.0, 0.0)]
        if margin > 0:
            offsets += [(margin, 0.0), (-margin, 0.0), (0.0, margin / ASPECT), (0.0, -margin / ASPECT)]
        pu = np.concatenate([us + du for du, _ in offsets])
        pv = np.concatenate([vs + dv for _, dv in offsets])
        inside = self.in_lung(pu, pv, side if self.frontal else None).reshape(len(offsets), tries).min(axis=0)
        k = int(np.argmax(inside))
        return float(us[k]), float(vs[k])

    def lung_box(self, side: str | None, body: Body | None = None) -> tuple[float, float, float, float]:
        """Body-space box (u0, v0, u1, v1) around the lung of `side` (frontal) or both lungs (lateral).

        body: whose lungs: the scene's (changed by the findings' modifiers) by default, `self.base` for before.
        """
        body = self.body if body is None else body
        if not self.frontal:
            return -0.95, body.apex_v - 0.02, 0.9, max(body.dome_v.values()) + 0.22
        w = body.lung_width(side) + 0.03
        u0, u1 = sorted((side_sign(side) * 0.03 + body.shift, side_sign(side) * w))
        return u0, body.apex_v - 0.02, u1, body.dome_v[side] + body.dome_depth[side] * 1.3 + 0.03

    def sides_or_both(self, finding) -> tuple[str, ...]:
        """The term's sides, else both lungs in a frontal view (one pass, 'right', in a lateral view)."""
        return finding.sides or (SIDES if self.frontal else ("right",))

    def sides_for(self, finding, rng: np.random.Generator, default: str | None = None) -> tuple[str, ...]:
        """The sides to draw on: the term's, else `default`, else a random side. Lateral: one pass."""
        sides = finding.sides or ((default,) if default else (("right", "left")[int(rng.integers(0, 2))],))
        if not self.frontal:
            return sides[:1]
        return sides

    # ------------------------------------------------------------ drawing

    def add(self, u0, v0, u1, v1, field_fn, eps: float = EPS, with_slice: bool = False) -> Mark | None:
        """Evaluate field_fn(u, v) over a body-space box, add it to the density, return its support.

        with_slice: call field_fn(u, v, slices) so it can read full-size maps (air, vessels) there.
        """
        win = self.window(u0, v0, u1, v1)
        if win is None:
            return None
        sl, uu, vv = win
        field = (field_fn(uu, vv, sl) if with_slice else field_fn(uu, vv)).astype(F32, copy=False)
        self.density[sl] += field
        nz = np.abs(field) > eps
        if not nz.any():
            return None
        rows = np.flatnonzero(nz.any(axis=1))
        cols = np.flatnonzero(nz.any(axis=0))
        y0, x0 = sl[0].start, sl[1].start
        box = (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]) + 1, y0 + int(rows[-1]) + 1)
        mask = nz[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        return Mark(box=box, mask=mask)

    def blob(self, u: float, v: float, r: float, amp: float, aspect: float = 1.0, angle: float = 0.0,
             sharp: bool = False, clip_sides: tuple[str, ...] | None = None) -> Mark | None:
        """An elliptical density: radius r (u units) across, r * aspect along `angle`.

        sharp: a well-defined edge (nodule, calcification); else a soft compact bump.
        clip_sides: keep it inside those lungs (() = any lung; None = not clipped).
        """
        ext = r * max(1.0, aspect) * 1.05
        c, s = math.cos(angle), math.sin(angle)

        def fn(uu, vv):
            du, dv = uu - F32(u), (vv - F32(v)) * F32(ASPECT)
            a = (du * F32(c) + dv * F32(s)) * F32(1 / (r * aspect))
            b = (dv * F32(c) - du * F32(s)) * F32(1 / r)
            r2 = a * a + b * b
            f = ramp(F32(1.0) - np.sqrt(r2), 0.25) if sharp else bump(r2)
            f = f * F32(amp)
            if clip_sides is not None:
                f = f * self.lung(uu, vv, clip_sides)
            return f

        return self.add(u - ext, v - ext / ASPECT, u + ext, v + ext / ASPECT, fn)

    def line(self, points: list[tuple[float, float]], width: float, amp: float, soft: float = 0.5) -> Mark | None:
        """A polyline of density (tubes, wires, fissures): half-width `width` (u units)."""
        pts = [(pu, pv * ASPECT) for pu, pv in points]
        us = [p[0] for p in points]
        vs = [p[1] for p in points]
        pad = width * 2 + 0.01

        def fn(uu, vv):
            d = polyline_distance(uu, vv * F32(ASPECT), pts)
            return F32(amp) * np.clip((F32(width) - d) * F32(1 / (width * soft)) + F32(0.5), 0, 1)

        return self.add(min(us) - pad, min(vs) - pad, max(us) + pad, max(vs) + pad, fn)

    def vessel_field(self) -> np.ndarray:
        """The warped vessel texture at full resolution (for findings that change vessel markings)."""
        if self._vessels is None:
            self._vessels = vessel_map(self.body, self.frame)
        return self._vessels

    def air(self) -> np.ndarray:
        """(S, S) lung air removed from the density (after the heart and mediastinum): filling a lung
        with fluid adds this back."""
        if self._air is None:
            self._air = self._air_fn() if self._air_fn is not None else np.zeros_like(self.density)
        return self._air

    def full_mark(self) -> Mark:
        """A region covering the whole image."""
        return Mark(box=clip_box((0, 0, self.size, self.size), self.size))


def merge(marks: list[Mark | None]) -> Mark | None:
    """One mark covering several (box union; masks combined)."""
    marks = [m for m in marks if m is not None]
    if not marks:
        return None
    if len(marks) == 1:
        return marks[0]
    x0 = min(m.box[0] for m in marks)
    y0 = min(m.box[1] for m in marks)
    x1 = max(m.box[2] for m in marks)
    y1 = max(m.box[3] for m in marks)
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for m in marks:
        bx0, by0, bx1, by1 = m.box
        if m.mask is None:
            mask[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] = True
        else:
            mask[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0] |= m.mask
    return Mark(box=(x0, y0, x1, y1), mask=mask)


def lesion_count(finding, rng: np.random.Generator, single: int = 1) -> int:
    """How many lesions a term asks for: 'scattered' 5-9, 'multiple' 3-5, 'diffuse' 8-13, else `single`."""
    if finding.spread == "scattered":
        return int(rng.integers(5, 10))
    if finding.spread in ("multiple", "multilobar"):
        return int(rng.integers(3, 6))
    if finding.spread == "diffuse":
        return int(rng.integers(8, 14))
    return single


def cloud(scene: Scene, centers: list[tuple[float, float, float]], amp: float,
          clip_sides: tuple[str, ...] | None = None, mottle: float = 0.25, seed: float = 0.0) -> Mark | None:
    """An ill-defined, fairly homogeneous opacity: the union (max) of soft discs (u, v, r), mottled,
    optionally kept inside the lungs. Unlike summed blobs it has no bright core."""
    u0 = min(c[0] - c[2] for c in centers)
    u1 = max(c[0] + c[2] for c in centers)
    v0 = min(c[1] - c[2] / ASPECT for c in centers)
    v1 = max(c[1] + c[2] / ASPECT for c in centers)

    def fn(uu, vv):
        f = np.zeros_like(uu)
        for cu, cv, r in centers:
            d = np.sqrt((uu - F32(cu)) ** 2 + ((vv - F32(cv)) * F32(ASPECT)) ** 2) * F32(1 / r)
            t = np.clip((F32(1.0) - d) * F32(1 / 0.6), 0, 1)          # 1 inside 0.4 r, 0 at r
            np.maximum(f, t * t * (F32(3.0) - F32(2.0) * t), out=f)
        if mottle:
            n = np.sin(uu * F32(37.0) + F32(seed)) * np.sin(vv * F32(53.0) + F32(1.7 * seed)) \
                + F32(0.5) * np.sin((uu + vv) * F32(71.0) + F32(seed * 0.3))
            f = f * (F32(1.0 - mottle) + F32(mottle / 1.5) * (n + F32(1.5)) * F32(0.5))
        f = f * F32(amp)
        if clip_sides is not None:
            f = f * scene.lung(uu, vv, clip_sides)
        return f

    return scene.add(u0, v0, u1, v1, fn)


def ring(scene: Scene, u: float, v: float, r: float, amp: float, wall: float, inner: float = 0.0) -> Mark | None:
    """A ring (thin wall) of radius r, optionally with darker (air) or denser content."""
    def fn(uu, vv):
        d = np.sqrt((uu - F32(u)) ** 2 + ((vv - F32(v)) * F32(ASPECT)) ** 2)
        f = F32(amp) * np.clip(F32(1.0) - np.abs(d - F32(r)) * F32(1 / wall), 0, 1)
        if inner:
            f = f + F32(inner) * ramp(F32(r) - d, wall)
        return f

    pad = r + 2 * wall
    return scene.add(u - pad, v - pad / ASPECT, u + pad, v + pad / ASPECT, fn)
