"""The patient's body: per-image anatomy parameters, positioning, and the body-space fields every view is drawn from.

The renderer works in *density* (attenuation, arbitrary units): soft tissue adds, air in the lungs,
trachea and stomach subtracts, bone adds more; overlapping structures simply sum, as they do on
a radiograph. `render.py` turns density into brightness (bright bone, dark lung).

Placement is in body coordinates (see `geometry.py`). Frontal view: the PATIENT'S RIGHT IS ON THE
IMAGE LEFT (u < 0). Lateral view: the patient faces the image left (anterior u < 0).

A `Body` is sampled from the image id (`sample_body`), changed by the findings' modifiers, then
drawn by `frontal.py` or `lateral.py`; the field functions here (lung, heart, diaphragm, chest
walls, spine, ribs) take arrays (u, v) of any shape, so findings can use the same outlines.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from pipelines.synth.geometry import F32, Frame, ellipse, ramp, side_sign, smoothstep

SIDES = ("right", "left")
VIEWS = ("frontal", "lateral")
EDGE = 0.014          # body units: soft-edge width of organ borders
ASPECT = 1.5          # pixels per v unit / pixels per u unit (nominal): isotropic shapes use v * ASPECT
VERT_PERIOD = 0.095   # body units: height of one vertebra (body plus disc)
VESSEL_VARIANTS = 4   # canonical vessel trees per view (`Body.vessel_variant`, see textures.py)

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

    def copy(self) -> Body:
        """An independent copy (its dicts too): modifiers change one without touching the other."""
        return replace(self, **{k: dict(v) for k, v in vars(self).items() if isinstance(v, dict)})

    # -------- geometry helpers shared with findings (scalars)

    def dome_at(self, side: str, w: float) -> float:
        """Frontal diaphragm height under lung `side` at lateral distance w from the midline."""
        return self.dome_v[side] + self.dome_depth[side] * ((w - 0.45) / 0.45) ** 2

    def lung_width(self, side: str) -> float:
        """Frontal: how far lung `side` reaches from the midline (a shrunken lung reaches less)."""
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
    b.vessel_variant = int(rng.integers(0, VESSEL_VARIANTS))
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


# ---------------------------------------------------------------- fields usable on any (u, v) arrays
# Arrays are float32 of any (matching) shape; a float32 scalar works too.

def lung_field(body: Body, u: np.ndarray, v: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Frontal lung of one side on arrays (u, v): (mask 0..1, air thickness 0..1)."""
    s = side_sign(side)
    w = u * F32(s)                       # the chest wall does not move with a mediastinal shift
    lat = lung_lateral(body, side, v)
    top = lung_top(body, w)
    floor = lung_floor(body, side, w)
    medial = F32(body.medi_hw * 0.85) + F32(s * body.shift)
    mask = ramp(w - medial, EDGE) * ramp(lat - w, EDGE) * ramp(v - top, EDGE) * ramp(floor - v, EDGE)
    inner = smoothstep(0.0, 0.22, lat - w) * smoothstep(0.0, 0.12, floor - v) * smoothstep(0.0, 0.08, v - top)
    air = mask * (F32(0.5) + F32(0.5) * inner) * (F32(1.04) - F32(0.14) * smoothstep(0.35, 0.95, v))
    return mask, air


def lung_top(body: Body, w: np.ndarray) -> np.ndarray:
    """Frontal: height of the lung apex's outline at lateral distance w from the midline."""
    return F32(body.apex_v) + F32(1.1) * (w - F32(0.3)) ** 2


def lung_edge(body: Body, u: np.ndarray, v: np.ndarray, side: str) -> tuple[np.ndarray, np.ndarray]:
    """Frontal lung of one side and how deep inside it each point lies: (mask 0..1, distance in u units
    from the nearer of its outer borders, the lateral chest wall or the apex; < 0 outside them)."""
    mask, _ = lung_field(body, u, v, side)
    w = u * F32(side_sign(side))
    lat = lung_lateral(body, side, v)
    top = lung_top(body, w)
    return mask, np.minimum(lat - w, (v - top) * F32(ASPECT))


def lung_lateral(body: Body, side: str, v: np.ndarray) -> np.ndarray:
    """Frontal: distance from the midline of the lateral lung border at height v."""
    x = np.clip((v - F32(body.apex_v)) * F32(1 / 0.55), 0, 1)
    return F32(body.lung_width(side)) * np.sqrt(F32(1.0) - (F32(1.0) - x) ** 2)


def lung_floor(body: Body, side: str, w: np.ndarray) -> np.ndarray:
    """Frontal: height of the diaphragm under lung `side` at lateral distance w (array)."""
    return F32(body.dome_v[side]) + F32(body.dome_depth[side]) * ((w - F32(0.45)) * F32(1 / 0.45)) ** 2


def heart_field(body: Body, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Frontal heart silhouette mask on arrays (u, v)."""
    hu = body.heart_u + body.shift
    main = ellipse(u, v * F32(ASPECT), hu, body.heart_v * ASPECT, body.heart_ru, body.heart_rv, edge=0.05,
                   tilt=body.heart_tilt)
    # right atrial border: a gentle convexity right of the spine
    ra = ellipse(u, v * F32(ASPECT), hu - body.heart_ru * 0.55, (body.heart_v + 0.03) * ASPECT,
                 body.heart_ru * 0.42, body.heart_rv * 0.75, edge=0.06)
    return np.maximum(main, ra)


def lateral_floor(body: Body, side: str, u: np.ndarray) -> np.ndarray:
    """Lateral view: height of hemidiaphragm `side` at u (high in front, low at the posterior sulcus)."""
    k = F32(0.22 * body.dome_depth[side] / 0.10)
    return F32(body.dome_v[side] - 0.04) + k * ((u + F32(0.35)) * F32(1 / 1.1)) ** 2


def lateral_lung_field(body: Body, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def lateral_walls(body: Body, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Lateral view: anterior (skin over the sternum) and posterior (back) body outline at height v."""
    ant = F32(-0.3) + F32(-0.7) * smoothstep(-0.35, 0.15, v) - F32(0.08) * smoothstep(0.6, 1.3, v)
    if body.sternum_depress:
        ant = ant + F32(body.sternum_depress) * np.exp(-((v - F32(0.5)) * F32(4.0)) ** 2)
    post = F32(0.74) + F32(0.28) * smoothstep(-0.35, -0.02, v)
    return ant, post


def spine_offset(body: Body, v: np.ndarray) -> np.ndarray:
    """Frontal lateral deviation of the spine at height v (scoliosis), body units."""
    arc = np.clip((v + F32(0.05)) * F32(1 / 1.0), 0, 1)
    return F32(body.scoliosis) * np.sin(arc * F32(math.pi))


def lateral_spine_u(body: Body, v: np.ndarray) -> np.ndarray:
    """Centre of the vertebral bodies at height v in the lateral view (thoracic kyphosis bows back)."""
    return F32(0.52) + F32(0.1 + body.kyphosis) * (F32(1.0) - ((v - F32(0.42)) * F32(1 / 0.8)) ** 2)


def clavicle_v(body: Body, w: float | np.ndarray) -> float | np.ndarray:
    """Centre line height of a clavicle at lateral distance w (frontal)."""
    x = w - 0.07
    return 0.15 + body.clav_dv - 0.32 * x + 0.22 * x * x


def rib_band(t: np.ndarray, width: float) -> np.ndarray:
    """Periodic rib profile along a rib coordinate t (one rib per unit): brighter cortical edges."""
    p = t - np.floor(t)
    d = np.abs(p - F32(width / 2)) * F32(2 / width)            # 0 at the rib's centre line, 1 at its edges
    return np.clip((F32(1.0) - d) * F32(4.0), 0, 1) * (F32(0.5) + F32(0.5) * d * d)


def vertebrae(body: Body, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The stack of vertebrae along height v (both views).

    Returns:
        (q, index, profile): position within the vertebra (0 top .. 1 bottom), the vertebra's index
        (float), and the vertebral body's profile 0..1 (compressed vertebrae in `body.vert_squash`
        are shorter).
    """
    q = (v - F32(body.vert_phase)) * F32(1 / VERT_PERIOD)
    index = np.floor(q)
    q = q - index
    top = np.full_like(q, F32(0.86))
    for i, factor in body.vert_squash.items():
        top = np.where(index == F32(i), F32(0.08 + 0.78 * factor), top)
    return q, index, ramp(q - F32(0.08), 0.05) * ramp(top - q, 0.05)
