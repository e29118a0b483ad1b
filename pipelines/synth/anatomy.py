"""Normal chest anatomy as an X-ray attenuation map, frontal (PA) and lateral, varied per image.

The renderer works in *density* (attenuation, arbitrary units): soft tissue adds, air in the lungs,
trachea and stomach subtracts, bone adds more; overlapping structures simply sum, as they do on
a radiograph. `render.py` turns density into brightness (bright bone, dark lung).

Placement is in body coordinates (see `geometry.py`). Frontal view: the PATIENT'S RIGHT IS ON THE
IMAGE LEFT (u < 0). Lateral view: the patient faces the image left (anterior u < 0).

Speed: the anatomy is smooth, so it is drawn at half the output size and upsampled; every
structure is computed only inside its own window; the branching vessel tree is drawn once per
process into a canonical body-space texture and warped onto each image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from pipelines.synth.geometry import (
    F32, Frame, ellipse, polyline_distance, ramp, rng_for, segment_distance, side_sign, smoothstep,
)

SIDES = ("right", "left")
VIEWS = ("frontal", "lateral")
EDGE = 0.014          # body units: soft-edge width of organ borders
ASPECT = 1.5          # pixels per v unit / pixels per u unit (nominal): isotropic shapes use v * ASPECT


@dataclass
class Body:
    """Per-image anatomy parameters (body coordinates); sampled from the image id, then changed by findings."""

    view: str
    lung_w: float = 0.86            # lateral reach of each lung (frontal)
    apex_v: float = 0.0             # top of the lungs
    dome_v: dict = field(default_factory=lambda: {"right": 0.80, "left": 0.83})  # diaphragm dome tops
    dome_depth: dict = field(default_factory=lambda: {"right": 0.10, "left": 0.10})  # dome -> CP angle drop
    heart_u: float = 0.12
    heart_v: float = 0.64
    heart_ru: float = 0.40          # half width (u); cardiothoracic ratio ~ 2 * heart_ru / 2
    heart_rv: float = 0.28          # half height along the tilted axis (isotropic u units)
    heart_tilt: float = 0.45        # radians, long axis down towards the patient's left
    medi_hw: float = 0.125          # upper mediastinum half width
    knob_u: float = 0.12            # aortic knob (patient's left = image right)
    knob_v: float = 0.23
    knob_r: float = 0.07
    aorta_wave: float = 0.0         # tortuosity of the descending aorta
    scoliosis: float = 0.0          # lateral spine deviation (body units; < 0 bows to the patient's right)
    kyphosis: float = 0.0           # extra thoracic curvature (lateral)
    vert_phase: float = 0.0
    vert_squash: dict = field(default_factory=dict)   # vertebra index -> height factor (compression)
    rib_dv: float = 0.088
    rib_v0: float = 0.0
    clav_dv: float = 0.0
    air: float = 1.0                # lung air: emphysema > 1
    vessels: float = 1.0            # vascular markings: congestion > 1, emphysema < 1
    hila: dict = field(default_factory=lambda: {"right": 1.0, "left": 1.0})
    bone: float = 1.0               # bone density (osteopenia < 1)
    breast: dict = field(default_factory=lambda: {"right": 0.0, "left": 0.0})
    shift: float = 0.0              # mediastinal shift (u; > 0 towards the patient's left)
    lung_scale: dict = field(default_factory=lambda: {"right": 1.0, "left": 1.0})
    bubble: float = 1.0             # gastric air
    sternum_depress: float = 0.0    # pectus excavatum (> 0) / carinatum (< 0), lateral
    vessel_variant: int = 0
    texture_offset: tuple = (0, 0)
    exposure: float = 1.0
    gamma: float = 1.0
    noise: float = 0.018
    notes: dict = field(default_factory=dict)  # finding term -> what its modifier chose (e.g. vertebra levels)

    def copy(self) -> "Body":
        """An independent copy (its dicts too): modifiers change one without touching the other."""
        return replace(self, **{k: dict(v) for k, v in vars(self).items() if isinstance(v, dict)})

    # -------- geometry helpers shared with findings (scalars)

    def dome_at(self, side: str, w: float) -> float:
        """Frontal diaphragm height under lung `side` at lateral distance w from the midline."""
        return self.dome_v[side] + self.dome_depth[side] * ((w - 0.45) / 0.45) ** 2

    def lung_width(self, side: str) -> float:
        return self.lung_w * (0.8 + 0.2 * self.lung_scale[side])

    def lateral_heart(self) -> tuple[float, float, float, float]:
        """Lateral-view heart ellipse (cu, cv, ru, rv_iso): grows backwards with the frontal heart size."""
        grow = self.heart_ru / 0.40
        ru = 0.36 * grow
        return -0.74 + ru, self.heart_v + 0.03, ru, 0.25 * (0.6 + 0.4 * grow)

    def heart_box(self) -> tuple[float, float, float, float]:
        """Body-space box (u0, v0, u1, v1) around the heart silhouette."""
        if self.view == "lateral":
            cu, cv, ru, rv = self.lateral_heart()
            r = max(ru, rv)
            return cu - r - 0.03, cv - r / ASPECT - 0.03, cu + r + 0.03, cv + r / ASPECT + 0.03
        c, s = math.cos(self.heart_tilt), math.sin(self.heart_tilt)
        hu = math.hypot(self.heart_ru * c, self.heart_rv * s)
        hv = math.hypot(self.heart_ru * s, self.heart_rv * c) / ASPECT
        cu = self.heart_u + self.shift
        return cu - hu - 0.03, self.heart_v - hv - 0.03, cu + hu + 0.03, self.heart_v + hv + 0.03


def sample_body(image_id: str, view: str, rng: np.random.Generator) -> Body:
    """Normal variation for one image: lung volume, heart size, habitus, exposure, bones, breasts."""
    if view not in VIEWS:
        raise ValueError(f"view must be one of {VIEWS}, not {view!r}")
    b = Body(view=view)
    dome = 0.80 + rng.normal(0, 0.018)
    b.dome_v = {"right": dome - 0.015 + rng.normal(0, 0.006), "left": dome + 0.015 + rng.normal(0, 0.006)}
    depth = 0.10 + rng.normal(0, 0.01)
    b.dome_depth = {"right": depth, "left": depth}
    b.lung_w = 0.86 + rng.normal(0, 0.02)
    b.apex_v = rng.normal(0, 0.01)
    b.heart_ru = 0.40 + rng.normal(0, 0.02)
    b.heart_rv = 0.28 + rng.normal(0, 0.012)
    b.heart_u = 0.13 + rng.normal(0, 0.015)
    b.heart_v = 0.62 + (dome - 0.80) + rng.normal(0, 0.01)
    b.heart_tilt = 0.45 + rng.normal(0, 0.05)
    b.knob_r = 0.07 + rng.normal(0, 0.006)
    b.vert_phase = float(rng.uniform(0, 0.095))
    b.rib_dv = 0.088 + rng.normal(0, 0.003)
    b.rib_v0 = rng.normal(0, 0.012)
    b.clav_dv = rng.normal(0, 0.02)
    b.air = 1.0 + rng.normal(0, 0.04)
    b.bone = 1.0 + rng.normal(0, 0.06)
    female = rng.random() < 0.5
    amount = float(rng.uniform(0.6, 1.2)) if female else 0.0
    b.breast = {"right": amount, "left": amount}
    b.bubble = float(rng.uniform(0.3, 1.2))
    b.vessel_variant = int(rng.integers(0, 4))
    b.texture_offset = (float(rng.normal(0, 0.03)), float(rng.normal(0, 0.03)))
    b.exposure = 1.0 + rng.normal(0, 0.05)
    b.gamma = float(np.clip(1.0 + rng.normal(0, 0.08), 0.8, 1.25))
    b.noise = float(rng.uniform(0.010, 0.022))
    return b


def sample_frame(size: int, view: str, rng: np.random.Generator) -> Frame:
    """Positioning: shift, scale (body size), small rotation."""
    scale = float(np.clip(1.0 + rng.normal(0, 0.04), 0.9, 1.1))
    sx = (0.40 if view == "frontal" else 0.37) * scale
    sy = sx * ASPECT * (1.0 + rng.normal(0, 0.02))
    cx, cy = 0.5 + rng.normal(0, 0.012), 0.46 + rng.normal(0, 0.015)
    angle = math.radians(float(np.clip(rng.normal(0, 1.5), -4, 4)))
    return Frame(size=size, cx=cx * size, cy=cy * size, sx=sx * size, sy=sy * size, angle=angle)


# ---------------------------------------------------------------- shapes usable on any (u, v) arrays

def lung_field(body: Body, u, v, side: str):
    """Frontal lung of one side on arrays (u, v): (mask 0..1, air thickness 0..1)."""
    s = side_sign(side)
    w = u * F32(s)                       # the chest wall does not move with a mediastinal shift
    lat = lung_lateral(body, side, v)
    top = F32(body.apex_v) + F32(1.1) * (w - F32(0.3)) ** 2
    floor = lung_floor(body, side, w)
    medial = F32(body.medi_hw * 0.85) + F32(s * body.shift)
    mask = ramp(w - medial, EDGE) * ramp(lat - w, EDGE) * ramp(v - top, EDGE) * ramp(floor - v, EDGE)
    inner = smoothstep(0.0, 0.22, lat - w) * smoothstep(0.0, 0.12, floor - v) * smoothstep(0.0, 0.08, v - top)
    air = mask * (F32(0.5) + F32(0.5) * inner) * (F32(1.04) - F32(0.14) * smoothstep(0.35, 0.95, v))
    return mask, air


def lung_lateral(body: Body, side: str, v) -> np.ndarray:
    """Frontal: distance from the midline of the lateral lung border at height v."""
    x = np.clip((v - F32(body.apex_v)) * F32(1 / 0.55), 0, 1)
    return F32(body.lung_width(side)) * np.sqrt(F32(1.0) - (F32(1.0) - x) ** 2)


def lung_floor(body: Body, side: str, w) -> np.ndarray:
    """Frontal: height of the diaphragm under lung `side` at lateral distance w (array)."""
    return F32(body.dome_v[side]) + F32(body.dome_depth[side]) * ((w - F32(0.45)) * F32(1 / 0.45)) ** 2


def heart_field(body: Body, u, v) -> np.ndarray:
    """Frontal heart silhouette mask on arrays (u, v)."""
    hu = body.heart_u + body.shift
    main = ellipse(u, v * F32(ASPECT), hu, body.heart_v * ASPECT, body.heart_ru, body.heart_rv, edge=0.05,
                   tilt=body.heart_tilt)
    # right atrial border: a gentle convexity right of the spine
    ra = ellipse(u, v * F32(ASPECT), hu - body.heart_ru * 0.55, (body.heart_v + 0.03) * ASPECT,
                 body.heart_ru * 0.42, body.heart_rv * 0.75, edge=0.06)
    return np.maximum(main, ra)


def lateral_floor(body: Body, side: str, u) -> np.ndarray:
    """Lateral view: height of hemidiaphragm `side` at u (high in front, low at the posterior sulcus)."""
    k = F32(0.22 * body.dome_depth[side] / 0.10)
    return F32(body.dome_v[side] - 0.04) + k * ((u + F32(0.35)) * F32(1 / 1.1)) ** 2


def lateral_lung_field(body: Body, u, v):
    """Lateral lung field (both lungs overlapped) on arrays (u, v): (mask, air)."""
    ant, _ = lateral_walls(body, v)
    du = (u - F32(0.03)) * F32(1 / 0.87)
    dv = (v - F32(0.52)) * F32(1 / (0.56 - body.apex_v))
    r = (np.abs(du) ** 2.6 + np.abs(dv) ** 2.6) ** F32(1 / 2.6)
    shell = ramp(F32(1.0) - r, 0.03) * ramp(u - ant - F32(0.09), EDGE)
    floors = [lateral_floor(body, s, u) for s in SIDES]
    mask = shell * (F32(0.5) * ramp(floors[0] - v, EDGE) + F32(0.5) * ramp(floors[1] - v, EDGE))
    inner = smoothstep(0.0, 0.35, F32(1.0) - r)
    return mask, mask * (F32(0.55) + F32(0.45) * inner)


def lateral_walls(body: Body, v):
    """Lateral view: anterior (skin over the sternum) and posterior (back) body outline at height v."""
    ant = F32(-0.3) + F32(-0.7) * smoothstep(-0.35, 0.15, v) - F32(0.08) * smoothstep(0.6, 1.3, v)
    if body.sternum_depress:
        ant = ant + F32(body.sternum_depress) * np.exp(-((v - F32(0.5)) * F32(4.0)) ** 2)
    post = F32(0.74) + F32(0.28) * smoothstep(-0.35, -0.02, v)
    return ant, post


def spine_offset(body: Body, v) -> np.ndarray:
    """Frontal lateral deviation of the spine at height v (scoliosis), body units."""
    arc = np.clip((v + F32(0.05)) * F32(1 / 1.0), 0, 1)
    return F32(body.scoliosis) * np.sin(arc * F32(math.pi))


def lateral_spine_u(body: Body, v) -> np.ndarray:
    """Centre of the vertebral bodies at height v in the lateral view (thoracic kyphosis bows back)."""
    return F32(0.52) + F32(0.1 + body.kyphosis) * (F32(1.0) - ((v - F32(0.42)) * F32(1 / 0.8)) ** 2)


# ---------------------------------------------------------------- canonical vessel texture

TEX_U = (-1.35, 1.35)
TEX_V = (-0.45, 1.35)
TEX_SIZE = 256


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


@lru_cache(maxsize=4)
def _mottle_bank(seed_name: str, size: int = 384) -> np.ndarray:
    """Smooth noise, cropped at a per-image offset (cheaper than fresh noise per image)."""
    rng = rng_for("mottle", seed_name)
    coarse = rng.standard_normal((size // 12, size // 12)).astype(F32)
    img = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=F32)


def _crop(bank: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    big = bank.shape[0]
    if n > big:
        reps = -(-n // big)
        bank = np.tile(bank, (reps, reps))
        big = bank.shape[0]
    y, x = rng.integers(0, big - n + 1, size=2)
    return bank[y:y + n, x:x + n]


def warm_caches(size: int) -> None:
    """Build the per-process textures now (before forking workers, so they share them)."""
    for view in VIEWS:
        for variant in range(4):
            vessel_texture(view, variant)
        _mottle_bank(view)


# ---------------------------------------------------------------- canvas with windows

class _Canvas:
    """Density map with body coordinates; `window(box)` gives a sub-view to draw one structure."""

    def __init__(self, frame: Frame):
        self.frame = frame
        self.u, self.v = frame.body_grid()
        self.D = np.zeros((frame.size, frame.size), F32)
        self.air = self.D

    def window(self, u0, v0, u1, v1):
        x0, y0, x1, y1 = self.frame.box(u0, v0, u1, v1, pad=1.0)
        if x1 <= x0 or y1 <= y0:
            return None
        sl = (slice(y0, y1), slice(x0, x1))
        return sl, self.u[sl], self.v[sl]


def _anatomy_frame(frame: Frame) -> Frame:
    """The reduced-resolution frame the anatomy is drawn on (half size, at least 96 px)."""
    n = frame.size if frame.size <= 128 else max(96, frame.size // 2)
    k = n / frame.size
    return replace(frame, size=n, cx=frame.cx * k, cy=frame.cy * k, sx=frame.sx * k, sy=frame.sy * k)


@dataclass
class Drawn:
    """The drawn anatomy: density at full size, and the lung air it holds (at the anatomy's reduced size)."""

    density: np.ndarray            # (S, S) float32
    air_small: np.ndarray          # (n, n) float32: density removed by lung air, after the mediastinum
    size: int

    def air(self) -> np.ndarray:
        """Lung air at full size (S, S): what filling the lungs with fluid would add back."""
        if self.air_small.shape[0] == self.size:
            return self.air_small
        img = Image.fromarray(self.air_small).resize((self.size, self.size), Image.BILINEAR)
        return np.asarray(img, dtype=F32)


def draw(body: Body, frame: Frame, rng: np.random.Generator) -> Drawn:
    """The normal anatomy of `body.view` as density (frame.size, frame.size) float32."""
    small = _anatomy_frame(frame)
    canvas = _Canvas(small)
    if body.view == "frontal":
        _draw_frontal(body, canvas, rng)
    else:
        _draw_lateral(body, canvas, rng)
    if small.size == frame.size:
        return Drawn(density=canvas.D, air_small=canvas.air, size=frame.size)
    img = Image.fromarray(canvas.D).resize((frame.size, frame.size), Image.BILINEAR)
    return Drawn(density=np.asarray(img, dtype=F32).copy(), air_small=canvas.air, size=frame.size)


# ---------------------------------------------------------------- frontal view

def _draw_frontal(body: Body, cv: _Canvas, rng: np.random.Generator) -> None:
    u, v, D = cv.u, cv.v, cv.D
    au = np.abs(u)
    n = cv.frame.size

    # soft tissue: neck widening into shoulders and chest wall; arms at the edges
    wb = F32(0.34) + F32(0.84) * smoothstep(-0.3, 0.02, v) - F32(0.05) * smoothstep(0.5, 1.4, v)
    thick = np.sqrt(np.clip(F32(1.0) - (au / wb) ** 2, 0, 1))
    D += F32(1.25) * ramp(wb - au, 0.05) * (F32(0.4) + F32(0.6) * thick)
    D += F32(0.75) * ramp(au - F32(1.24), 0.06) * ramp(v + F32(0.05), 0.12)

    # lungs (air), minus the mediastinum and heart in front of them
    air = np.zeros_like(D)
    lung_any = np.zeros_like(D)
    for side in SIDES:
        s = side_sign(side)
        W = body.lung_width(side)
        lo, hi = sorted((body.shift, s * (W + 0.04)))
        win = cv.window(lo, body.apex_v - 0.03, hi, body.dome_v[side] + body.dome_depth[side] * 1.2 + 0.03)
        if win is None:
            continue
        sl, uu, vv = win
        mask, a = lung_field(body, uu, vv, side)
        air[sl] += a
        lung_any[sl] = np.maximum(lung_any[sl], mask)

    medi = np.zeros_like(D)
    hb = body.heart_box()
    win = cv.window(min(hb[0], -body.medi_hw - 0.05 + body.shift), -0.45,
                    max(hb[2], body.knob_u + body.knob_r + 0.05 + body.shift), hb[3] + 0.02)
    if win is not None:
        sl, uu, vv = win
        heart = heart_field(body, uu, vv)
        upper = ramp(F32(body.medi_hw) - np.abs(uu - F32(0.005 + body.shift)), EDGE) * ramp(F32(body.heart_v) - vv, 0.1)
        ku = body.knob_u + body.shift
        knob = ellipse(uu, vv * F32(ASPECT), ku, body.knob_v * ASPECT, body.knob_r, body.knob_r * 1.2, edge=0.25)
        wave = F32(body.aorta_wave) * np.sin((vv - F32(body.knob_v)) * F32(10.0))
        desc = ramp(F32(0.04) - np.abs(uu - F32(ku - 0.035) - wave), EDGE) * ramp(vv - F32(body.knob_v), 0.02) \
            * ramp(F32(body.heart_v + 0.1) - vv, 0.1)
        medi[sl] = np.maximum(np.maximum(heart, upper), np.maximum(knob, F32(0.5) * desc))
        below = ramp(F32(0.5 * (body.dome_v["right"] + body.dome_v["left"]) + 0.04) - vv, 0.05)
        D[sl] += (F32(0.1) * heart + F32(0.04) * knob) * below
    cv.air = F32(0.94 * body.air) * air * (F32(1.0) - F32(0.85) * medi)
    D -= cv.air

    # vessels (canonical tree warped onto this image) and mottle, inside the lungs
    tex = warp_texture(vessel_texture("frontal", body.vessel_variant), cv.frame, body.texture_offset)
    hil = np.zeros_like(D)
    for side in SIDES:
        s = side_sign(side)
        hu, hv = s * 0.21 + body.shift, (0.43 if side == "right" else 0.40)
        win = cv.window(hu - 0.15, hv - 0.12, hu + 0.15, hv + 0.12)
        if win is not None:
            sl, uu, vv = win
            hil[sl] += F32(body.hila[side]) * ellipse(uu, vv * F32(ASPECT), hu, hv * ASPECT, 0.07, 0.13, edge=0.8)
    mottle = _crop(_mottle_bank("frontal"), n, rng)
    D += (F32(0.17 * body.vessels) * tex + F32(0.13) * hil + F32(0.035) * mottle) * lung_any

    # trachea and main bronchi (air)
    ut, car = -0.012 + body.shift * 0.6, 0.31
    win = cv.window(ut - 0.3, -0.5, ut + 0.3, car + 0.14)
    if win is not None:
        sl, uu, vv = win
        trachea = ramp(F32(0.048) - np.abs(uu - F32(ut)), EDGE) * ramp(F32(car) - vv, 0.02)
        br = np.minimum(segment_distance(uu, vv * F32(ASPECT), (ut, car * ASPECT), (ut - 0.17, (car + 0.1) * ASPECT)),
                        segment_distance(uu, vv * F32(ASPECT), (ut, car * ASPECT), (ut + 0.2, (car + 0.07) * ASPECT)))
        D[sl] -= F32(0.5) * trachea + F32(0.2) * ramp(F32(0.03) - br, EDGE)

    # gastric bubble under the left dome (patient's left = image right)
    gu, gv = 0.45 + body.shift * 0.3, body.dome_at("left", 0.45) + 0.07
    k = body.bubble ** 0.5
    win = cv.window(gu - 0.16, gv - 0.08, gu + 0.16, gv + 0.04)
    if win is not None:
        sl, uu, vv = win
        bub = ellipse(uu, vv, gu, gv, 0.12 * k, 0.05 * k, edge=0.2)
        D[sl] -= F32(0.42) * bub * ramp(F32(gv + 0.01) - vv, 0.01)

    # breasts (lower soft-tissue contour) and scapulae
    for side in SIDES:
        s = side_sign(side)
        if body.breast[side] > 0:
            win = cv.window(s * 0.55 - 0.5, 0.55, s * 0.55 + 0.5, 1.1)
            if win is not None:
                sl, uu, vv = win
                br = ellipse(uu, vv, s * 0.55, 0.8, 0.42, 0.24, edge=0.12)
                D[sl] += F32(0.16 * body.breast[side]) * br * ramp(vv - F32(0.62), 0.1)
        lo, hi = sorted((s * 0.7, s * 1.15))
        win = cv.window(lo, -0.05, hi, 0.56)
        if win is not None:
            sl, uu, vv = win
            w = uu * F32(s)
            border = F32(0.74) + F32(0.14) * vv
            scap = ramp(w - border, 0.02) * ramp(F32(0.52) - vv, 0.06) * ramp(vv + F32(0.02), 0.03)
            D[sl] += F32(0.09 * body.bone) * scap

    _ribs_frontal(body, cv)
    _clavicles(body, cv)
    _spine_frontal(body, cv)
    for side in SIDES:
        s = side_sign(side)
        lo, hi = sorted((s * 1.0, s * 1.6))
        win = cv.window(lo, -0.15, hi, 1.0)
        if win is not None:
            sl, uu, vv = win
            head = ellipse(uu, vv * F32(ASPECT), s * 1.2, 0.03 * ASPECT, 0.14, 0.15, edge=0.1)
            shaft = ramp(F32(0.075) - segment_distance(uu, vv, (s * 1.24, 0.1), (s * 1.38, 0.95)), 0.02)
            D[sl] += F32(0.42 * body.bone) * np.maximum(head, shaft)


def _rib_band(t: np.ndarray, width: float) -> np.ndarray:
    """Periodic rib profile along a rib coordinate t (one rib per unit): brighter cortical edges."""
    p = t - np.floor(t)
    d = np.abs(p - F32(width / 2)) * F32(2 / width)            # 0 at the rib's centre line, 1 at its edges
    return np.clip((F32(1.0) - d) * F32(4.0), 0, 1) * (F32(0.5) + F32(0.5) * d * d)


def _ribs_frontal(body: Body, cv: _Canvas) -> None:
    for side in SIDES:
        s = side_sign(side)
        W = body.lung_width(side)
        lo, hi = sorted((s * 0.04, s * (W + 0.14)))
        win = cv.window(lo, -0.12, hi, 1.15)
        if win is None:
            continue
        sl, uu, vv = win
        w = uu * F32(s)
        x = np.clip((vv + F32(0.06)) * F32(1 / 0.6), 0, 1)
        cage = F32(W + 0.08) * np.sqrt(F32(1.0) - (F32(1.0) - x) ** 2)
        inside = ramp(cage - w, 0.03) * ramp(w - F32(0.06), 0.03)
        # posterior ribs: up-and-out from the spine, then down along the chest wall
        t = (vv - F32(body.rib_v0 - 0.02) - (F32(-0.2) * w + F32(0.5) * w * w)) * F32(1 / body.rib_dv)
        post = _rib_band(t, 0.44) * ramp(t, 0.05) * ramp(F32(10.5) - t, 0.1)
        # anterior ribs: from the chest wall down and in towards the sternum, fainter
        ta = (vv - F32(body.rib_v0 + 0.03) - F32(0.42) * (F32(1.0) - w)) * F32(1 / (body.rib_dv * 1.2))
        ant = _rib_band(ta, 0.36) * ramp(ta, 0.05) * ramp(F32(6.5) - ta, 0.1) * ramp(w - F32(0.3), 0.12)
        cv.D[sl] += F32(body.bone) * (F32(0.19) * post + F32(0.07) * ant) * inside


def clavicle_v(body: Body, w):
    """Centre line height of a clavicle at lateral distance w (frontal)."""
    x = w - 0.07
    return 0.15 + body.clav_dv - 0.32 * x + 0.22 * x * x


def _clavicles(body: Body, cv: _Canvas) -> None:
    for side in SIDES:
        s = side_sign(side)
        lo, hi = sorted((s * 0.04, s * 0.98))
        win = cv.window(lo, -0.1, hi, 0.22 + body.clav_dv)
        if win is None:
            continue
        sl, uu, vv = win
        w = uu * F32(s)
        vc = clavicle_v(body, w)
        half = F32(0.036) - F32(0.01) * (w - F32(0.07))
        d = np.abs(vv - vc)
        band = ramp(half - d, 0.01) * ramp(w - F32(0.07), 0.03) * ramp(F32(0.92) - w, 0.05)
        cv.D[sl] += F32(0.36 * body.bone) * band * (F32(0.6) + F32(0.4) * (d / half) ** 2)


VERT_PERIOD = 0.095


def _spine_frontal(body: Body, cv: _Canvas) -> None:
    reach = abs(body.scoliosis) + 0.12
    win = cv.window(-reach + body.shift * 0.2, -0.5, reach + body.shift * 0.2, 1.4)
    if win is None:
        return
    sl, uu, vv = win
    us = spine_offset(body, vv) + F32(0.005 + body.shift * 0.2)
    du = np.abs(uu - us)
    column = ramp(F32(0.08) - du, 0.015)
    q = (vv - F32(body.vert_phase)) * F32(1 / VERT_PERIOD)
    idx = np.floor(q)
    q = q - idx
    top = np.full_like(q, F32(0.86))
    dense = np.zeros_like(q)
    for i, factor in body.vert_squash.items():
        this = idx == F32(i)
        top = np.where(this, F32(0.08 + 0.78 * factor), top)
        dense = np.where(this, F32(0.6 * (1.0 - factor)), dense)   # a compressed body looks denser
    vert = ramp(q - F32(0.08), 0.05) * ramp(top - q, 0.05)
    vert = vert * (F32(1.0) + dense * F32(4.0))
    ped = np.abs(np.sqrt(((du - F32(0.05)) * F32(1 / 0.017)) ** 2 + ((q - F32(0.35)) * F32(1 / 0.15)) ** 2) - F32(1.0))
    pedicle = ramp(F32(0.4) - ped, 0.3) * ramp(F32(0.075) - du, 0.01)
    spinous = ellipse(du * F32(ASPECT), q, 0.0, 0.66, 0.02, 0.13, edge=0.5)
    thorax = F32(0.35) + F32(0.65) * smoothstep(-0.25, 0.05, vv) * (F32(1.0) - smoothstep(0.85, 1.15, vv))
    bone = column * (F32(0.06) + F32(0.07) * vert) + F32(0.06) * pedicle + F32(0.035) * spinous
    cv.D[sl] += F32(body.bone) * thorax * bone


# ---------------------------------------------------------------- lateral view

def _draw_lateral(body: Body, cv: _Canvas, rng: np.random.Generator) -> None:
    u, v, D = cv.u, cv.v, cv.D
    n = cv.frame.size

    ant, post = lateral_walls(body, v)
    mid, half = (ant + post) * F32(0.5), (post - ant) * F32(0.5)
    thick = np.sqrt(np.clip(F32(1.0) - ((u - mid) / half) ** 2, 0, 1))
    D += F32(1.4) * ramp(u - ant, 0.05) * ramp(post - u, 0.05) * (F32(0.55) + F32(0.45) * thick)

    # arms raised forward: extra soft tissue over the upper chest, faint humeri
    win = cv.window(-1.2, -0.7, 0.7, 0.45)
    if win is not None:
        sl, uu, vv = win
        vi = vv * F32(ASPECT)
        arms = ramp(F32(0.3) - segment_distance(uu, vi, (-0.9, -1.1), (0.1, 0.35)), 0.25)
        bone = np.maximum(ramp(F32(0.045) - segment_distance(uu, vi, (-0.8, -1.0), (-0.02, 0.22)), 0.03),
                          ramp(F32(0.045) - segment_distance(uu, vi, (-0.7, -1.05), (0.08, 0.2)), 0.03))
        D[sl] += F32(0.1) * arms + F32(0.08 * body.bone) * bone

    win = cv.window(-1.0, body.apex_v - 0.08, 0.95, max(body.dome_v.values()) + 0.25)
    lung = np.zeros_like(D)
    air = np.zeros_like(D)
    if win is not None:
        sl, uu, vv = win
        lung[sl], air[sl] = lateral_lung_field(body, uu, vv)

    cu, cvv, ru, rv = body.lateral_heart()
    heart = np.zeros_like(D)
    win = cv.window(cu - ru - 0.05, cvv - rv / ASPECT - 0.05, cu + ru + 0.05, cvv + rv / ASPECT + 0.05)
    if win is not None:
        sl, uu, vv = win
        heart[sl] = ellipse(uu, vv * F32(ASPECT), cu, cvv * ASPECT, ru, rv, edge=0.2, tilt=-0.35)
    medi = heart.copy()
    win = cv.window(-0.45, 0.05, 0.6, 0.95)
    if win is not None:
        sl, uu, vv = win
        arch = [(-0.32, 0.5), (-0.2, 0.25), (0.0, 0.15), (0.24, 0.19), (0.38, 0.34), (0.42, 0.9)]
        aorta = ramp(F32(0.05 + 0.3 * (body.knob_r - 0.07)) - polyline_distance(uu, vv, arch), 0.03)
        medi[sl] = np.maximum(medi[sl], F32(0.35) * aorta)
    cv.air = F32(0.95 * body.air) * air * (F32(1.0) - F32(0.5) * medi)
    D -= cv.air
    D += F32(0.05) * heart * ramp(F32(min(body.dome_v.values()) + 0.03) - v, 0.05)

    win = cv.window(-0.35, -0.7, 0.3, 0.42)
    if win is not None:
        sl, uu, vv = win
        axis = segment_distance(uu, vv * F32(ASPECT), (-0.12, -0.7 * ASPECT), (0.08, 0.36 * ASPECT))
        trachea = ramp(F32(0.045) - axis, 0.02)
        D[sl] -= F32(0.13) * trachea * ramp(F32(0.37) - vv, 0.02)

    tex = warp_texture(vessel_texture("lateral", body.vessel_variant), cv.frame, body.texture_offset)
    hil = np.zeros_like(D)
    win = cv.window(-0.2, 0.28, 0.35, 0.58)
    if win is not None:
        sl, uu, vv = win
        hil[sl] = ellipse(uu, vv * F32(ASPECT), 0.07, 0.43 * ASPECT, 0.14, 0.13, edge=0.8)
    mottle = _crop(_mottle_bank("lateral"), n, rng)
    hila = 0.5 * (body.hila["right"] + body.hila["left"])
    D += (F32(0.12 * body.vessels) * tex + F32(0.12 * hila) * hil + F32(0.035) * mottle) * lung

    # stomach bubble under the left hemidiaphragm, anteriorly
    gu, gv = -0.2, float(lateral_floor(body, "left", np.float32(-0.2))) + 0.06
    k = body.bubble ** 0.5
    win = cv.window(gu - 0.16, gv - 0.08, gu + 0.16, gv + 0.04)
    if win is not None:
        sl, uu, vv = win
        bub = ellipse(uu, vv, gu, gv, 0.12 * k, 0.045 * k, edge=0.2)
        D[sl] -= F32(0.35) * bub * ramp(F32(gv + 0.01) - vv, 0.01)
    breast = 0.5 * (body.breast["right"] + body.breast["left"])   # both breasts overlap in a lateral view
    if breast > 0:
        win = cv.window(-1.3, 0.5, -0.65, 0.95)
        if win is not None:
            sl, uu, vv = win
            a, _ = lateral_walls(body, vv)
            br = ellipse(uu, vv * F32(ASPECT), -0.92, 0.72 * ASPECT, 0.2, 0.2, edge=0.3)
            D[sl] += F32(0.35 * breast) * br * ramp(uu - a + F32(0.12), 0.08)

    _spine_lateral(body, cv)
    win = cv.window(-1.2, -0.08, -0.5, 0.7)
    if win is not None:
        sl, uu, vv = win
        a, _ = lateral_walls(body, vv)
        sternum = ramp(F32(0.03) - np.abs(uu - a - F32(0.05)), 0.015) * ramp(vv + F32(0.02), 0.02) \
            * ramp(F32(0.64) - vv, 0.03)
        D[sl] += F32(0.25 * body.bone) * sternum
    win = cv.window(0.0, -0.1, 1.05, 1.0)
    if win is not None:
        sl, uu, vv = win
        _, p = lateral_walls(body, vv)
        t = (vv - F32(0.6) * (uu - F32(0.2)) - F32(body.rib_v0)) * F32(1 / 0.1)
        ribs = _rib_band(t, 0.35) * ramp(uu - F32(0.1), 0.25) * ramp(p - uu - F32(0.03), 0.04) \
            * ramp(vv + F32(0.05), 0.05) * ramp(F32(0.95) - vv, 0.1)
        scap = ellipse(uu, vv * F32(ASPECT), 0.62, 0.26 * ASPECT, 0.22, 0.42, edge=0.1)
        D[sl] += F32(0.08 * body.bone) * ribs + F32(0.06 * body.bone) * scap


def _spine_lateral(body: Body, cv: _Canvas) -> None:
    win = cv.window(0.25, -0.5, 1.05, 1.4)
    if win is None:
        return
    sl, uu, vv = win
    du = uu - lateral_spine_u(body, vv)
    q = (vv - F32(body.vert_phase)) * F32(1 / VERT_PERIOD)
    idx = np.floor(q)
    q = q - idx
    top = np.full_like(q, F32(0.86))
    for i, factor in body.vert_squash.items():
        top = np.where(idx == F32(i), F32(0.08 + 0.78 * factor), top)
    vert = ramp(q - F32(0.08), 0.05) * ramp(top - q, 0.05)
    column = ramp(F32(0.11) - np.abs(du), 0.02)
    cortex = column * vert * (ramp(np.abs(du) - F32(0.08), 0.03) + ramp(np.abs(q - F32(0.47)) - F32(0.34), 0.05))
    posterior = ramp(F32(0.09) - np.abs(du - F32(0.22)), 0.06) * (F32(0.6) + F32(0.4) * vert)
    fade = F32(1.0) - F32(0.35) * smoothstep(0.1, 0.95, vv)
    bone = column * (F32(0.22) + F32(0.26) * vert) + F32(0.12) * cortex + F32(0.08) * posterior
    cv.D[sl] += F32(body.bone) * bone * fade
