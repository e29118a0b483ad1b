"""Findings of the bones and chest wall: degenerative spine, scoliosis, kyphosis, fractures, deformities,
shoulders, bone density, and soft tissue (breasts, subcutaneous air, image quality).

Frontal: the patient's right is the image left. Vertebra `k` of the drawn spine spans
v in [vert_phase + k * P, vert_phase + (k + 1) * P] with P = `body.VERT_PERIOD`.
"""
from __future__ import annotations

import math

import numpy as np

from pipelines.synth.body import (
    ASPECT,
    VERT_PERIOD,
    Body,
    clavicle_v,
    lateral_spine_u,
    lateral_walls,
    lung_lateral,
    spine_offset,
)
from pipelines.synth.geometry import F32, ramp, side_sign
from pipelines.synth.scene import Mark, Scene, merge
from pipelines.synth.terms import Finding

SPINE_RANGES = {"cervical vertebrae": (-0.42, -0.08), "lumbar vertebrae": (0.92, 1.3), None: (0.02, 0.78)}


def _spine_range(f: Finding) -> tuple[float, float]:
    for site in f.sites:
        if site in SPINE_RANGES:
            return SPINE_RANGES[site]
    return SPINE_RANGES[None]


def _levels(body, v0: float, v1: float) -> list[int]:
    """Indices of the vertebrae whose centres lie in [v0, v1]."""
    k0 = math.ceil((v0 - body.vert_phase) / VERT_PERIOD - 0.47)
    k1 = math.floor((v1 - body.vert_phase) / VERT_PERIOD - 0.47)
    return list(range(k0, k1 + 1))


def _level_v(body, k: int, where: float = 0.47) -> float:
    """Height of a point of vertebra k (0 = its top, 1 = its bottom)."""
    return body.vert_phase + (k + where) * VERT_PERIOD


def _spine_u(scene: Scene, v: float) -> float:
    body = scene.body
    if scene.frontal:
        return float(spine_offset(body, np.float32(v))) + 0.005 + body.shift * 0.2
    return float(lateral_spine_u(body, np.float32(v)))


def _pick_levels(body, f: Finding, rng, n: int) -> list[int]:
    levels = _levels(body, *_spine_range(f))
    n = max(1, min(n, len(levels)))
    start = int(rng.integers(0, len(levels) - n + 1))
    return levels[start:start + n]


def _vertebra_box(scene: Scene, levels: list[int], extra: float = 0.0) -> Mark | None:
    body = scene.body
    v0 = _level_v(body, min(levels), 0.0) - 0.01
    v1 = _level_v(body, max(levels), 1.0) + 0.01
    us = [_spine_u(scene, v) for v in (v0, (v0 + v1) / 2, v1)]
    half = (0.11 if scene.frontal else 0.14) + extra
    lo, hi = min(us) - half, max(us) + half
    if not scene.frontal:
        hi += 0.1
    return scene.box_mark(lo, v0, hi, v1)


# ---------------------------------------------------------------- degenerative spine

def draw_degenerative(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Osteophytes (spurs at the vertebral margins) and endplate sclerosis over several levels;
    DISH: a flowing ossification along the right (frontal) or anterior (lateral) spine."""
    s = f.severity
    n = 2 + int(round(3 * s)) + (2 if f.spread in ("multiple", "diffuse", "scattered") else 0)
    levels = _pick_levels(scene.body, f, rng, 5 if f.concept == "dish" else n)
    body = scene.body
    parts = []
    if f.concept == "dish":
        pts = []
        for k in levels + [levels[-1] + 1]:
            v = _level_v(body, k, 0.0)
            u = _spine_u(scene, v)
            pts.append(((u - 0.095) if scene.frontal else (u - 0.125), v))
        return [m for m in [scene.line(pts, 0.012, 0.35)] if m]
    spur = 0.012 + 0.008 * s + (0.006 if f.concept == "osteophyte" else 0.0)
    for k in levels:
        for where in (0.08, 0.86):
            v = _level_v(body, k, where)
            u = _spine_u(scene, v)
            outward = -1 if where < 0.5 else 1
            if scene.frontal:
                sides = [(-1, 1)[int(rng.integers(0, 2))]] if rng.random() < 0.5 else [-1, 1]
                for sd in sides:
                    parts.append(scene.blob(u + sd * (0.08 + spur * 0.9), v + outward * spur * 0.3, spur, 0.5,
                                            aspect=2.2, angle=-sd * outward * 0.35, sharp=True))
            else:
                parts.append(scene.blob(u - 0.11 - spur * 0.7, v + outward * spur * 0.3, spur, 0.45, aspect=2.0,
                                        angle=-outward * 0.5, sharp=True))
            if f.concept != "osteophyte":
                half = 0.06 if scene.frontal else 0.09
                parts.append(scene.line([(u - half, v), (u + half, v)], 0.006, 0.03 + 0.03 * s))
    return [m for m in [merge(parts)] if m]


# ---------------------------------------------------------------- curvature and vertebral height

def modify_scoliosis(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Convex to the named side: 'right' bows the spine to the patient's right (image left)."""
    sign = side_sign(f.sides[0]) if f.sides else (-1, 1)[int(rng.integers(0, 2))]
    body.scoliosis = sign * (0.035 + 0.08 * f.severity)


def scoliosis_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The spine from the apices to the domes, as far as it bows (frontal only)."""
    if not scene.frontal:
        return []
    a = scene.body.scoliosis
    c = scene.body.shift * 0.2
    m = scene.box_mark(min(0.0, a) - 0.11 + c, -0.08, max(0.0, a) + 0.11 + c, 1.0)
    return [m] if m else []


def modify_kyphosis(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Lateral: exaggerated thoracic curve; frontal: anterior wedging seen as shorter mid-thoracic vertebrae."""
    body.kyphosis = 0.05 + 0.08 * f.severity
    mid = _levels(body, 0.18, 0.4)[:2]
    for k in mid:
        body.vert_squash[k] = min(body.vert_squash.get(k, 1.0), 0.66 - 0.2 * f.severity)
    body.notes[f.term] = mid


def kyphosis_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The wedged vertebrae (frontal) or the whole thoracic spine (lateral)."""
    if scene.frontal:
        return [m for m in [_vertebra_box(scene, scene.body.notes[f.term])] if m]
    return [m for m in [scene.box_mark(0.25, -0.45, 1.05, 1.35)] if m]


def modify_vertebral(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Compression deformity / fracture of one (or several) vertebrae: reduced height."""
    if f.concept == "fracture" and not (set(f.sites) & {"thoracic vertebrae", "lumbar vertebrae", "spine",
                                                          "cervical vertebrae"}):
        return
    n = 2 if f.spread else 1
    levels = _pick_levels(body, f, rng, n)
    for k in levels:
        body.vert_squash[k] = min(body.vert_squash.get(k, 1.0), 0.65 - 0.25 * f.severity)
    body.notes[f.term] = levels


def vertebral_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The vertebrae whose height the modifier reduced."""
    return [m for m in [_vertebra_box(scene, scene.body.notes[f.term])] if m]


def draw_spinal_fusion(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Rods along the spine with a screw at each level (cervical, thoracic or lumbar by the term)."""
    body = scene.body
    levels = _pick_levels(body, f, rng, 5)
    v0, v1 = _level_v(body, levels[0], 0.2), _level_v(body, levels[-1], 0.8)
    parts = []
    vs = np.linspace(v0, v1, 6)
    if scene.frontal:
        for off in (-0.04, 0.04):
            parts.append(scene.line([(_spine_u(scene, v) + off, v) for v in vs], 0.008, 0.8))
        for k in levels:
            v = _level_v(body, k, 0.5)
            u = _spine_u(scene, v)
            for off in (-1, 1):
                parts.append(scene.line([(u + off * 0.02, v), (u + off * 0.065, v)], 0.007, 0.8))
    else:
        parts.append(scene.line([(_spine_u(scene, v) + 0.2, v) for v in vs], 0.008, 0.8))
        for k in levels:
            v = _level_v(body, k, 0.5)
            u = _spine_u(scene, v)
            parts.append(scene.line([(u - 0.05, v), (u + 0.2, v)], 0.007, 0.8))
    return [m for m in [merge(parts)] if m]


# ---------------------------------------------------------------- ribs, clavicles, humeri

def _rib_point(scene: Scene, side: str, k: int, w: float) -> tuple[float, float, float]:
    """(u, v, angle) of the centre line of posterior rib k at lateral distance w (frontal)."""
    body = scene.body
    v = body.rib_v0 - 0.02 + (-0.2 * w + 0.5 * w * w) + (k + 0.22) * body.rib_dv
    slope = (-0.2 + w) * ASPECT                       # dv/dw in isotropic units
    s = side_sign(side)
    angle = math.atan2(slope, s)                      # direction along the rib, pointing laterally
    return s * w, v, angle


def _break(scene: Scene, u: float, v: float, along: float, healed: bool, s: float, rng,
           thickness: float = 0.03, callus: float = 1.0) -> Mark | None:
    """A fracture of a bone running along `along` (radians): a dark line across it, a small step,
    and (healed/chronic) a bright callus."""
    across = along + math.pi / 2
    half = thickness * 0.9
    du, dv = math.cos(across) * half, math.sin(across) * half / ASPECT
    parts = [scene.line([(u - du, v - dv), (u + du, v + dv)], 0.005 + 0.003 * s, -0.22)]
    step = 0.006 + 0.006 * s
    parts.append(scene.blob(u + math.cos(along) * 0.015, v + math.sin(along) * 0.015 / ASPECT + step / ASPECT,
                            thickness * 0.5, 0.12, aspect=1.8, angle=along))
    if healed:
        parts.append(scene.blob(u, v, thickness * 0.75 * callus, 0.2, aspect=1.6, angle=along))
    return merge(parts)


def draw_fracture(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Fractures and old deformities of ribs (default), clavicle, humerus, sternum; vertebrae are
    drawn by the modifier (reduced height) and recorded here."""
    sites = set(f.sites)
    if sites & {"thoracic vertebrae", "lumbar vertebrae", "spine", "cervical vertebrae"}:
        return vertebral_region(scene, f, rng)
    s = f.severity
    healed = f.concept == "bone deformity" or bool(set(f.qualifiers) & {"healed", "chronic"})
    callus = 1.4 if f.concept == "bone deformity" else 1.0
    body = scene.body
    marks = []
    sides = scene.sides_for(f, rng)
    if "clavicle" in sites:
        if not scene.frontal:
            return []
        for side in sides:
            w = rng.uniform(0.3, 0.6)
            v = clavicle_v(body, w)
            slope = (-0.25 + 0.16 * (w - 0.07)) * ASPECT
            along = math.atan2(slope, side_sign(side))
            marks.append(_break(scene, side_sign(side) * w, v, along, healed, s, rng, thickness=0.04, callus=callus))
        return [m for m in marks if m is not None]
    if sites & {"humerus", "shoulder"}:
        if not scene.frontal:
            return []
        for side in sides:
            sg = side_sign(side)
            marks.append(_break(scene, sg * 1.235, 0.18, math.atan2(0.85 * ASPECT, sg * 0.14), healed, s, rng,
                                thickness=0.075, callus=callus))
        return [m for m in marks if m is not None]
    if "sternum" in sites:
        if scene.frontal:
            return []
        a, _ = lateral_walls(body, np.float32(0.3))
        return [m for m in [_break(scene, float(a) + 0.05, 0.3, math.pi / 2, healed, s, rng, thickness=0.035)] if m]
    # ribs
    n = 3 if f.spread else 1
    for side in sides:
        if not scene.frontal:
            u, v = rng.uniform(0.3, 0.6), rng.uniform(0.25, 0.6)
            marks.append(_break(scene, u, v, math.atan2(0.6 * ASPECT, 1.0), healed, s, rng, thickness=0.03))
            continue
        k0 = int(rng.integers(3, 8))
        w = rng.uniform(0.5, 0.82)
        parts = []
        for k in range(k0, k0 + n):
            u, v, along = _rib_point(scene, side, k, w + rng.normal(0, 0.03))
            parts.append(_break(scene, u, v, along, healed, s, rng, thickness=0.042, callus=callus))
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


def draw_bone_lesion(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """An expansile/lytic lesion: a lucent oval with a thin bright rim on a rib (or clavicle/humerus)."""
    marks = []
    for side in scene.sides_for(f, rng):
        if scene.frontal and "clavicle" in f.sites:
            w = rng.uniform(0.3, 0.6)
            u, v, along = side_sign(side) * w, clavicle_v(scene.body, w), 0.0
        elif scene.frontal and "humerus" in f.sites:
            u, v, along = side_sign(side) * 1.2, 0.06, 0.0
        elif scene.frontal:
            u, v, along = _rib_point(scene, side, int(rng.integers(3, 8)), rng.uniform(0.45, 0.8))
        else:
            u, v, along = rng.uniform(0.3, 0.6), rng.uniform(0.3, 0.6), 0.5
        r = 0.022 + 0.012 * f.severity
        parts = [scene.blob(u, v, r, -0.2, aspect=1.8, angle=along, sharp=True),
                 scene.blob(u, v, r * 1.25, 0.1, aspect=1.7, angle=along)]
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


def draw_sclerosis(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """A focal sclerotic (dense) bone lesion: on a rib when the term names ribs, else a vertebral body."""
    if "ribs" in f.sites and scene.frontal:
        side = scene.sides_for(f, rng)[0]
        u, v, along = _rib_point(scene, side, int(rng.integers(3, 8)), rng.uniform(0.45, 0.8))
        return [m for m in [scene.blob(u, v, 0.025, 0.3, aspect=1.6, angle=along)] if m]
    k = _pick_levels(scene.body, f, rng, 1)[0]
    v = _level_v(scene.body, k)
    u = _spine_u(scene, v)
    return [m for m in [scene.blob(u, v, 0.04 + 0.015 * f.severity, 0.3)] if m]


def draw_shoulder(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Degenerative shoulder: sclerotic rim and an inferior spur on the humeral head (both unless named);
    dislocation: the head displaced below the glenoid."""
    if not scene.frontal:
        return []
    body = scene.body
    marks = []
    sides = f.sides or (("right", "left") if f.concept != "dislocation" else ("right",))
    for side in sides:
        sg = side_sign(side)
        hu, hv, r = sg * 1.2, 0.03, 0.14
        if f.concept == "dislocation":
            def fn(uu, vv, hu=hu, hv=hv, r=r):
                d = np.sqrt((uu - F32(hu)) ** 2 + ((vv - F32(hv)) * F32(ASPECT)) ** 2)
                return -F32(0.35 * body.bone) * ramp(F32(r * 0.9) - d, 0.03)
            parts = [scene.add(hu - r, hv - r / ASPECT, hu + r, hv + r / ASPECT, fn),
                     scene.blob(hu - sg * 0.1, hv + 0.13, r * 0.9, 0.4 * body.bone, sharp=True)]
            marks.append(merge(parts))
            continue

        def rim(uu, vv, hu=hu, hv=hv, r=r):
            d = np.sqrt((uu - F32(hu)) ** 2 + ((vv - F32(hv)) * F32(ASPECT)) ** 2)
            ring = np.clip(F32(1.0) - np.abs(d - F32(r * 0.92)) * F32(1 / 0.012), 0, 1)
            return F32(0.25 + 0.15 * f.severity) * ring * ramp(vv - F32(hv - 0.02), 0.03)

        parts = [scene.add(hu - r - 0.02, hv - 0.04, hu + r + 0.02, hv + r / ASPECT + 0.03, rim),
                 scene.blob(hu - sg * 0.06, hv + r / ASPECT * 0.95, 0.025 + 0.01 * f.severity, 0.45, aspect=1.6,
                            angle=0.4 * sg, sharp=True)]
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


def modify_bone_density(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Osteopenia: every bone less dense, by severity."""
    body.bone *= 0.62 - 0.12 * f.severity


def whole_chest_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The whole image (for changes of the whole chest, such as bone density)."""
    return [scene.full_mark()]


def modify_pectus(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Excavatum: sternum pushed in (lateral), heart pushed to the left (frontal); carinatum: sternum bowed out."""
    s = f.severity
    if f.concept == "pectus carinatum":
        body.sternum_depress = -(0.06 + 0.08 * s)
    else:
        body.sternum_depress = 0.08 + 0.12 * s
        body.heart_u += 0.04 + 0.03 * s


def pectus_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The displaced heart (frontal; excavatum only) or the anterior chest wall (lateral)."""
    if scene.frontal:
        if f.concept == "pectus carinatum":
            return []
        from pipelines.synth.cardio import heart_region

        return heart_region(scene, f, rng)
    return [m for m in [scene.box_mark(-1.3, -0.25, -0.3, 1.2)] if m]


# ---------------------------------------------------------------- soft tissue

def modify_mastectomy(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """No breast shadow on the named side (default right), a full one on the other."""
    side = f.sides[0] if f.sides else "right"
    other = "left" if side == "right" else "right"
    body.breast[other] = max(body.breast[other], 0.9)
    body.breast[side] = 0.0


def breast_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Both breasts' soft-tissue shadows."""
    if scene.frontal:
        return [m for m in [scene.box_mark(-1.05, 0.5, 1.05, 1.12)] if m]
    return [m for m in [scene.box_mark(-1.4, 0.42, -0.55, 1.0)] if m]


def draw_breast_implants(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Oval dense implants with a bright rim over the breasts (both unless a side is named)."""
    marks = []
    for side in scene.sides_or_both(f):
        u, v = (scene.u_of(side, 0.55), 0.74) if scene.frontal else (-0.95, 0.7)
        r = 0.22

        def fn(uu, vv, u=u, v=v, r=r):
            d = np.sqrt(((uu - F32(u)) * F32(1 / 1.0)) ** 2 + ((vv - F32(v)) * F32(ASPECT / 0.8)) ** 2)
            rim = np.clip(F32(1.0) - np.abs(d - F32(r)) * F32(1 / 0.01), 0, 1)
            return F32(0.2) * ramp(F32(r) - d, 0.03) + F32(0.1) * rim

        marks.append(scene.add(u - r - 0.02, v - r * 0.8 / ASPECT - 0.02,
                               u + r + 0.02, v + r * 0.8 / ASPECT + 0.02, fn))
    return [m for m in marks if m is not None]


def draw_nipple(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """A small round nipple shadow over the lower chest (both unless a side is named)."""
    marks = []
    for side in scene.sides_or_both(f):
        u, v = (scene.u_of(side, rng.uniform(0.5, 0.62)), rng.uniform(0.7, 0.78)) if scene.frontal else (-0.98, 0.7)
        marks.append(scene.blob(u, v, 0.022, 0.28, sharp=True))
    return [m for m in marks if m is not None]


def draw_subcutaneous_air(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Streaks of gas in the soft tissues of the chest wall (and neck)."""
    marks = []
    body = scene.body
    for side in scene.sides_or_both(f):
        parts = []
        for _ in range(int(rng.integers(6, 11))):
            v = rng.uniform(0.0, 0.75)
            if scene.frontal:
                lat = float(lung_lateral(body, side, np.float32(v)))
                u = scene.u_of(side, rng.uniform(lat + 0.07, 1.12))
            else:
                a, _ = lateral_walls(body, np.float32(v))
                u = float(a) + rng.uniform(0.02, 0.08)
            a = rng.normal(math.pi / 2, 0.5)
            du, dv = math.cos(a) * 0.035, math.sin(a) * 0.035 / ASPECT
            parts.append(scene.line([(u - du, v - dv), (u + du, v + dv)], 0.006, -0.3))
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


def modify_quality(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Technical quality unsatisfactory: under-penetrated, noisy, flat."""
    body.exposure *= 1.2
    body.noise *= 1.7
    body.gamma *= 0.85


def draw_azygos(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Azygos fissure: a fine curved line from the right apex to a small teardrop by the trachea."""
    if not scene.frontal:
        return []
    body = scene.body
    a = body.apex_v
    pts = [(-0.4, a + 0.03), (-0.3, a + 0.09), (-0.2, a + 0.16), (-0.15 + body.shift * 0.6, 0.23)]
    parts = [scene.line(pts, 0.004, 0.22), scene.blob(-0.14 + body.shift * 0.6, 0.245, 0.02, 0.3, aspect=1.6,
                                                       angle=math.pi / 2)]
    return [m for m in [merge(parts)] if m]
