"""Findings of the heart, mediastinum, aorta, hila, diaphragm and upper abdomen.

Modifiers (`modify_*`) change the anatomy before it is drawn (a bigger heart, a higher dome);
their drawers return the region that changed, the union of the structure before and after.
Overlay drawers add density locally. Frontal: the patient's right is the image left.
"""
from __future__ import annotations

import math

import numpy as np

from pipelines.synth.body import ASPECT, SIDES, Body, lung_floor
from pipelines.synth.geometry import F32, ramp, side_sign, smoothstep
from pipelines.synth.scene import Mark, Scene, merge, ring
from pipelines.synth.terms import Finding

# ---------------------------------------------------------------- heart


def modify_heart(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Cardiomegaly (by severity), pericardial effusion (globular), small heart."""
    s = f.severity
    if f.concept == "small heart":
        body.heart_ru *= 0.85
        body.heart_rv *= 0.9
    elif f.concept == "pericardial effusion":
        body.heart_ru *= 1.2 + 0.2 * s
        body.heart_rv *= 1.3 + 0.15 * s
        body.heart_tilt *= 0.5
    else:
        body.heart_ru *= 1 + 0.34 * s
        body.heart_rv *= 1 + 0.12 * s


def heart_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The heart silhouette before and after the change."""
    a, b = scene.base.heart_box(), scene.body.heart_box()
    m = scene.box_mark(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]) + 0.02)
    marks = [m] if m else []
    if f.concept == "heart failure":
        from pipelines.synth.lungs import draw_edema

        marks += draw_edema(scene, f, rng)
    return marks


def draw_epicardial_fat(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """A soft triangular density at the left cardiophrenic angle (by the cardiac apex)."""
    body = scene.body
    if scene.frontal:
        u = body.heart_u + body.shift + body.heart_ru * math.cos(body.heart_tilt) * 0.95
        v = body.dome_at("left", abs(u)) - 0.04
    else:
        u, v = -0.6, max(body.dome_v.values()) - 0.04
    return [m for m in [scene.blob(u, v, 0.06 + 0.02 * f.severity, 0.2, aspect=1.5, angle=0.5)] if m is not None]


# ---------------------------------------------------------------- aorta and mediastinum

def modify_aorta(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Tortuous / enlarged aorta, aneurysm: a bigger, more lateral knob and a wavy descending aorta."""
    s = f.severity
    if f.concept == "aortic aneurysm":
        body.knob_r *= 1.6 + 0.4 * s
        body.knob_u += 0.04
    else:
        body.knob_r *= 1.15 + 0.25 * s
        body.knob_u += 0.02 + 0.03 * s
        body.aorta_wave = 0.015 + 0.02 * s


def aorta_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The aortic knob and descending aorta before and after the change (lateral: the whole arch)."""
    if not scene.frontal:
        return [m for m in [scene.box_mark(-0.45, 0.05, 0.6, 0.95)] if m]
    marks = []
    for b in (scene.base, scene.body):
        ku, r = b.knob_u + b.shift, b.knob_r
        marks.append(scene.box_mark(ku - r - 0.1, b.knob_v - r / ASPECT - 0.04, ku + r + 0.06 + b.aorta_wave,
                                    b.heart_v + 0.24))
    return [m for m in [merge(marks)] if m]


def modify_mediastinum(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """A wider upper mediastinum, by severity."""
    body.medi_hw *= 1.25 + 0.3 * f.severity


def mediastinum_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The mediastinum from the neck to the domes, as wide as its wider state (frontal only)."""
    if not scene.frontal:
        return []
    hw = max(scene.base.medi_hw, scene.body.medi_hw) + 0.04
    bottom = max(scene.body.dome_v[s] + scene.body.dome_depth[s] for s in SIDES) + 0.04
    m = scene.box_mark(scene.body.shift - hw, -0.5, scene.body.shift + hw, bottom)
    return [m] if m else []


def modify_shift(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Mediastinal shift towards the named side; volume loss of a lung pulls it towards that side."""
    s = f.severity
    side = f.sides[0] if f.sides else "left"
    if f.concept == "volume loss":
        body.lung_scale[side] = 0.85 - 0.1 * s
        body.dome_v[side] -= 0.04 + 0.03 * s
        body.shift += side_sign(side) * (0.03 + 0.03 * s)
    elif f.concept == "pneumonectomy":
        body.shift += side_sign(side) * 0.12
        body.dome_v[side] -= 0.08
    else:
        body.shift += side_sign(side) * (0.05 + 0.06 * s)


def shift_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Heart, mediastinum and trachea before and after the shift (and the affected lung)."""
    if not scene.frontal:
        return []
    marks = []
    for b in (scene.base, scene.body):
        h = b.heart_box()
        marks.append(scene.box_mark(min(h[0], b.shift - b.medi_hw - 0.06), -0.5,
                                    max(h[2], b.knob_u + b.shift + b.knob_r + 0.06), h[3] + 0.04))
    if f.concept in ("volume loss", "pneumonectomy"):
        from pipelines.synth.lungs import lungs_region

        marks += lungs_region(scene, f, rng)
    if f.concept == "pneumonectomy":
        side = f.sides[0] if f.sides else "left"
        body = scene.body
        W = body.lung_width(side) + 0.04
        u0, u1 = sorted((scene.u_of(side, 0.0), side_sign(side) * W))

        air_map = scene.air()
        sg = side_sign(side)

        def fn(uu, vv, sl):
            return air_map[sl] * ramp(uu * F32(sg), 0.02)

        marks.append(scene.add(u0, body.apex_v - 0.03, u1, body.dome_v[side] + body.dome_depth[side] * 1.3 + 0.03, fn,
                               with_slice=True))
    return [m for m in [merge(marks)] if m]


def draw_nodes(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Enlarged lymph nodes: lobulated soft densities at the hila and/or the right paratracheal stripe."""
    s = f.severity
    body = scene.body
    marks = []
    paratracheal = f.zone == "paratracheal" or ("mediastinum" in f.sites and f.zone != "hilum")
    if paratracheal:
        u, v = (body.shift - body.medi_hw - 0.02, 0.2) if scene.frontal else (0.0, 0.25)
        marks.append(merge([scene.blob(u + rng.normal(0, 0.01), v + k * 0.05, 0.045 + 0.02 * s, 0.25)
                            for k in range(2)]))
    if not paratracheal or f.zone == "hilum":
        for side in scene.sides_or_both(f):
            marks.append(_hilar_mass(scene, side, 0.05 + 0.03 * s, 0.25 + 0.1 * s, rng, lobes=3))
    return [m for m in marks if m is not None]


def _hilar_mass(scene: Scene, side: str, r: float, amp: float, rng, lobes: int = 1) -> Mark | None:
    """A rounded (optionally lobulated) soft density at one hilum."""
    if scene.frontal:
        hu = scene.u_of(side, 0.2 + r * 0.6)
        hv = 0.43 if side == "right" else 0.40
    else:
        hu, hv = 0.07, 0.43
    parts = [scene.blob(hu, hv, r, amp, aspect=1.3, angle=math.pi / 2)]
    for _ in range(lobes - 1):
        parts.append(scene.blob(hu + rng.normal(0, r * 0.4), hv + rng.normal(0, r * 0.5), r * 0.7, amp * 0.8))
    return merge(parts)


def draw_hilar(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Enlarged/prominent hila and pulmonary arteries (both unless a side is named)."""
    s = f.severity
    marks = [_hilar_mass(scene, side, 0.05 + 0.035 * s, 0.22 + 0.12 * s, rng)
             for side in scene.sides_or_both(f)]
    return [m for m in marks if m is not None]


def draw_pneumomediastinum(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Air outlining the left heart border and aortic knob: a thin lucent stripe with a bright pleural line."""
    body = scene.body
    if not scene.frontal:
        return [m for m in [scene.line([(-0.7, 0.2), (-0.5, 0.6)], 0.012, -0.2)] if m]
    ku = body.knob_u + body.shift + body.knob_r + 0.02
    c = math.cos(body.heart_tilt)
    pts = [(ku, body.knob_v), (ku + 0.04, body.knob_v + 0.15), (body.heart_u + body.shift + body.heart_ru * c + 0.03,
                                                                   body.heart_v + 0.05)]
    marks = [scene.line(pts, 0.012, -0.18), scene.line([(x + 0.018, y) for x, y in pts], 0.004, 0.2)]
    return [m for m in [merge(marks)] if m]


# ---------------------------------------------------------------- diaphragm

def modify_diaphragm(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Elevated (by severity), flattened, or eventrated hemidiaphragm(s)."""
    s = f.severity
    if f.concept == "flattened diaphragm":
        for side in (f.sides or SIDES):
            body.dome_v[side] += 0.03 + 0.03 * s
            body.dome_depth[side] *= 1 - 0.6 * s
        return
    side = f.sides[0] if f.sides else "right"
    if f.concept == "eventration":
        body.dome_v[side] -= 0.05 + 0.05 * s
        body.dome_depth[side] *= 1.5
        return
    for side in (f.sides or ("right",)):
        body.dome_v[side] -= 0.05 + 0.08 * s


def diaphragm_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The changed hemidiaphragm(s) before and after (lateral: one box across the chest)."""
    sides = f.sides or (SIDES if f.concept == "flattened diaphragm" else ("right",))
    marks = []
    for side in (sides if scene.frontal else ("right",)):
        if scene.frontal:
            W = max(scene.base.lung_width(side), scene.body.lung_width(side)) + 0.05
            u0, u1 = sorted((scene.u_of(side, 0.0), side_sign(side) * W))
        else:
            u0, u1 = -0.95, 0.9
        v0 = min(scene.base.dome_v[side], scene.body.dome_v[side]) - 0.05
        v1 = max(scene.base.dome_v[side] + scene.base.dome_depth[side] * (1.4 if scene.frontal else 2.4),
                 scene.body.dome_v[side] + scene.body.dome_depth[side] * (1.4 if scene.frontal else 2.4)) + 0.05
        marks.append(scene.box_mark(u0, v0, u1, v1))
    return [m for m in marks if m is not None]


# ---------------------------------------------------------------- below the diaphragm

def draw_hiatal_hernia(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """A round retrocardiac density with an air-fluid level (stomach above the diaphragm)."""
    body = scene.body
    r = 0.07 + 0.07 * f.severity
    if scene.frontal:
        u, v = body.shift + 0.04, min(body.dome_v.values()) - r / ASPECT * 0.6
    else:
        u, v = 0.2, min(body.dome_v.values()) - 0.06
    level = v - r / ASPECT * 0.25

    def fn(uu, vv):
        d = np.sqrt((uu - F32(u)) ** 2 + ((vv - F32(v)) * F32(ASPECT)) ** 2)
        inside = ramp(F32(r) - d, 0.01)
        air = inside * ramp(F32(level) - vv, 0.004)
        rim = np.clip(F32(1.0) - np.abs(d - F32(r)) * F32(1 / 0.008), 0, 1)
        return F32(0.3) * inside - F32(0.45) * air + F32(0.12) * rim

    return [m for m in [scene.add(u - r - 0.02, v - r / ASPECT - 0.02, u + r + 0.02, v + r / ASPECT + 0.02, fn)] if m]


def _under_dome(scene: Scene, side: str, fn_of_gap, depth: float, w_range=(0.12, 0.85)) -> Mark | None:
    """Evaluate fn_of_gap(gap below the dome, w) just under one hemidiaphragm (frontal)."""
    body = scene.body
    s = side_sign(side)
    u0, u1 = sorted((scene.u_of(side, w_range[0]), s * w_range[1]))
    v0 = body.dome_v[side] - 0.02
    v1 = body.dome_v[side] + body.dome_depth[side] * 1.2 + depth + 0.03

    def fn(uu, vv):
        w = uu * F32(s)
        gap = vv - lung_floor(body, side, w)
        inside = (smoothstep(w_range[0], w_range[0] + 0.05, w)
                  * (F32(1.0) - smoothstep(w_range[1] - 0.05, w_range[1], w)))
        return fn_of_gap(gap, w) * inside

    return scene.add(u0, v0, u1, v1, fn)


def draw_pneumoperitoneum(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Free air: a lucent crescent under the hemidiaphragm(s) (default both)."""
    t = 0.015 + 0.02 * f.severity
    marks = []
    for side in (f.sides or ("right", "left")):
        if scene.frontal:
            marks.append(_under_dome(scene, side, lambda gap, w: -F32(0.4) * ramp(gap - F32(0.008), 0.006)
                                     * ramp(F32(t) - gap, 0.008), t))
        else:
            marks.append(scene.line([(-0.6, scene.body.dome_v[side] + 0.0), (-0.1, scene.body.dome_v[side] - 0.02)],
                                    t * 0.8, -0.35))
            break
    return [m for m in marks if m is not None]


def draw_bowel_gas(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Gas-filled bowel: above the left dome (diaphragmatic hernia) or between liver and right dome
    (colonic interposition)."""
    body = scene.body
    side = f.sides[0] if f.sides else ("left" if f.concept == "diaphragmatic hernia" else "right")
    parts = []
    for k in range(int(rng.integers(3, 5))):
        if scene.frontal:
            w = 0.3 + 0.12 * k + rng.normal(0, 0.02)
            u = scene.u_of(side, w)
            floor = body.dome_at(side, w)
            v = floor - 0.04 if f.concept == "diaphragmatic hernia" else floor + 0.035
        else:
            u, v = -0.5 + 0.18 * k, body.dome_v[side] + (-0.05 if f.concept == "diaphragmatic hernia" else 0.03)
        r = 0.04 + 0.01 * rng.random()

        def fn(uu, vv, u=u, v=v, r=r):
            d = np.sqrt((uu - F32(u)) ** 2 + ((vv - F32(v)) * F32(ASPECT)) ** 2)
            gas = ramp(F32(r) - d, 0.01)
            fold = np.clip(F32(1.0) - np.abs(np.sin((uu - F32(u)) * F32(math.pi / 0.03))) * F32(4), 0, 1) * gas
            return -F32(0.42) * gas + F32(0.15) * fold

        parts.append(scene.add(u - r - 0.02, v - r / ASPECT - 0.02, u + r + 0.02, v + r / ASPECT + 0.02, fn))
    return [m for m in [merge(parts)] if m]


def draw_gallstones(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """A few small ring-like stones under the right hemidiaphragm."""
    body = scene.body
    u0 = scene.u_of("right", 0.45) if scene.frontal else -0.3
    v0 = body.dome_at("right", 0.45) + 0.16 if scene.frontal else body.dome_v["right"] + 0.15
    parts = [ring(scene, u0 + rng.normal(0, 0.03), v0 + rng.normal(0, 0.02), 0.02, 0.45, 0.008, inner=0.1)
             for _ in range(int(rng.integers(2, 5)))]
    return [m for m in [merge(parts)] if m]


def draw_contrast(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Oral contrast filling the stomach under the left hemidiaphragm."""
    body = scene.body
    if scene.frontal:
        u, v = 0.45 + body.shift * 0.3, body.dome_at("left", 0.45) + 0.12
    else:
        u, v = -0.2, body.dome_v["left"] + 0.1
    return [m for m in [scene.blob(u, v, 0.15, 0.5, aspect=1.6, angle=0.3, sharp=True)] if m]
