"""Lines, tubes and hardware: central catheters, endotracheal/nasogastric/chest tubes, sternotomy wires,
clips and sutures, pacemakers, ECG electrodes, stents and foreign bodies.

Radiopaque material is much denser than bone. Frontal: the patient's right is the image left,
so a right-sided catheter enters on the image left and runs down the superior vena cava, which
lies to the patient's right of the spine (u < 0).
"""
from __future__ import annotations

import math

import numpy as np

from pipelines.synth.body import ASPECT, lateral_walls
from pipelines.synth.geometry import side_sign
from pipelines.synth.scene import Mark, Scene, merge, ring
from pipelines.synth.terms import Finding

METAL = 1.1


def _svc(scene: Scene) -> float:
    """u of the superior vena cava (right of the spine)."""
    return -0.075 + scene.body.shift * 0.6


def _catheter_path(scene: Scene, side: str, rng) -> list[tuple[float, float]]:
    """Subclavian/jugular entry on `side`, down the SVC to the cavoatrial junction."""
    svc = _svc(scene)
    s = side_sign(side)
    tip = 0.46 + rng.uniform(0.0, 0.08)
    if rng.random() < 0.5:   # subclavian
        pts = [(s * 0.62, 0.0), (s * 0.35, 0.07), (s * 0.14, 0.12)]
    else:                    # internal jugular
        pts = [(s * 0.2, -0.35), (s * 0.14, -0.1), (s * 0.1, 0.08)]
    if side == "left":
        pts += [(0.0, 0.15), (svc, 0.2)]
    pts += [(svc, 0.28), (svc + 0.005, tip)]
    return pts


def draw_catheter(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Central venous catheter (side of entry from the term, default right), with a port at times."""
    marks = []
    for side in scene.sides_for(f, rng, default="right"):
        if scene.frontal:
            pts = _catheter_path(scene, side, rng)
            parts = [scene.line(pts, 0.009, 0.55)]
            if rng.random() < 0.35:
                parts.append(scene.blob(pts[0][0], pts[0][1] + 0.03, 0.04, 0.6, aspect=0.8, sharp=True))
        else:
            pts = [(-0.3, -0.3), (-0.2, 0.05), (-0.25, 0.3), (-0.3, 0.5)]
            parts = [scene.line(pts, 0.009, 0.5)]
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


def draw_tube(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Endotracheal tube (default; tip above the carina), nasogastric tube (abdomen/oesophagus) or a
    chest tube (a side named without the trachea)."""
    sites = set(f.sites)
    body = scene.body
    if sites & {"abdomen", "esophagus"}:
        if scene.frontal:
            pts = [(0.0, -0.5), (0.01, 0.2), (0.04, 0.6), (0.2, body.dome_at("left", 0.2) + 0.03),
                   (0.42, body.dome_at("left", 0.45) + 0.12)]
        else:
            pts = [(0.05, -0.5), (0.2, 0.3), (0.25, 0.7), (0.0, body.dome_v["left"] + 0.12)]
        return [m for m in [scene.line(pts, 0.009, 0.5)] if m]
    if f.sides and not sites & {"trachea", "trachea, carina"}:
        marks = []
        for side in scene.sides_for(f, rng):
            s = side_sign(side)
            if scene.frontal:
                pts = [(s * 1.08, 0.62), (s * 0.8, 0.5), (s * 0.55, 0.25), (s * 0.42, 0.08)]
            else:
                pts = [(0.6, 0.8), (0.3, 0.5), (0.0, 0.15)]
            marks.append(merge([scene.line(pts, 0.022, 0.18), scene.line(pts, 0.005, 0.55)]))
        return [m for m in marks if m is not None]
    if scene.frontal:
        ut = -0.012 + body.shift * 0.6
        tip = 0.31 - 0.05 - rng.uniform(0.0, 0.06)
        pts = [(ut, -0.55), (ut, tip)]
    else:
        tip = 0.36 - 0.06 - rng.uniform(0.0, 0.05)
        pts = [(-0.12 - 0.2 * (0.36 + 0.7) / 1.06 * 0, -0.6), (-0.12 + 0.2 * (tip + 0.7) / 1.06, tip)]
    walls = [scene.line([(x + d, y) for x, y in pts], 0.005, 0.25) for d in (-0.026, 0.026)]
    stripe = scene.line([(x + 0.012, y) for x, y in pts], 0.004, 0.6)
    return [m for m in [merge(walls + [stripe])] if m]


def draw_surgical(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Surgical material by site: sternotomy wires (mediastinum, default), clips (abdomen, neck,
    breast, chest wall), a staple line (lung)."""
    sites = set(f.sites)
    body = scene.body
    if f.concept == "sutures" or "lung" in sites or f.zone:
        marks = []
        for side in scene.sides_for(f, rng):
            u, v = scene.point(rng, side, f.zone or "upper")
            a = rng.normal(0.3, 0.3)
            parts = [scene.blob(u + math.cos(a) * t, v + math.sin(a) * t / ASPECT, 0.007, METAL, aspect=1.8,
                                angle=a + math.pi / 2, sharp=True) for t in np.linspace(-0.08, 0.08, 8)]
            marks.append(merge(parts))
        return [m for m in marks if m is not None]
    if sites & {"abdomen", "neck", "breast", "thorax", "ribs"}:
        side = f.sides[0] if f.sides else "right"
        s = side_sign(side)
        if "abdomen" in sites:
            cu, cv = (s * 0.4, body.dome_at(side, 0.4) + 0.12) if scene.frontal else (-0.3, body.dome_v[side] + 0.12)
        elif "neck" in sites:
            cu, cv = (s * 0.15, -0.3) if scene.frontal else (-0.1, -0.3)
        elif "breast" in sites:
            cu, cv = (s * 0.6, 0.68) if scene.frontal else (-0.9, 0.65)
        else:
            cu, cv = (s * 0.9, 0.45) if scene.frontal else (0.6, 0.45)
        parts = []
        for _ in range(int(rng.integers(3, 7))):
            u, v = cu + rng.normal(0, 0.05), cv + rng.normal(0, 0.03)
            a = rng.uniform(0, math.pi)
            parts.append(scene.line([(u, v), (u + 0.03 * math.cos(a), v + 0.03 * math.sin(a) / ASPECT)], 0.006, METAL))
        return [m for m in [merge(parts)] if m]
    parts = []
    if scene.frontal:
        mid = body.shift * 0.3
        for v in np.linspace(0.12, 0.58, int(rng.integers(5, 8))):
            u = mid + rng.normal(0, 0.008)
            parts.append(_wire(scene, u, float(v), rng))
    else:
        for v in np.linspace(0.08, 0.55, int(rng.integers(5, 8))):
            a, _ = lateral_walls(body, np.float32(v))
            parts.append(scene.blob(float(a) + 0.05, float(v), 0.012, METAL, aspect=2.0, angle=0.0, sharp=True))
    return [m for m in [merge(parts)] if m]


def _wire(scene: Scene, u: float, v: float, rng) -> Mark | None:
    """One twisted sternotomy wire: a small loop with a short twisted tail."""
    r = 0.02
    loop = ring(scene, u, v, r, METAL, 0.009)
    tail = scene.line([(u + r, v), (u + r + 0.03, v + rng.normal(0, 0.005))], 0.008, METAL)
    return merge([loop, tail])


def draw_pacemaker(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Pacemaker/ICD generator in the upper chest (left unless named) with leads to the right heart."""
    side = f.sides[0] if f.sides else "left"
    s = side_sign(side)
    body = scene.body
    if scene.frontal:
        gu, gv = s * 0.58, 0.06
        svc = _svc(scene)
        c = math.cos(body.heart_tilt)
        apex = (body.heart_u + body.shift + body.heart_ru * c * 0.45, body.heart_v + 0.07)
        leads = [[(gu - s * 0.05, gv), (s * 0.25, 0.1), (svc if side == "right" else 0.0, 0.16), (svc, 0.3),
                  (svc + 0.02, 0.5), apex],
                 [(gu - s * 0.05, gv + 0.01), (s * 0.22, 0.12), (svc, 0.3), (svc - 0.03, 0.52)]]
    else:
        gu, gv = -0.88, 0.08
        cu, cv, ru, rv = body.lateral_heart()
        leads = [[(gu + 0.05, gv), (-0.4, 0.15), (-0.15, 0.35), (cu - ru * 0.4, cv + 0.08)]]
    parts = [scene.blob(gu, gv, 0.075, METAL, aspect=0.65, angle=math.pi / 2, sharp=True)]
    for lead in leads:
        parts.append(scene.line(lead, 0.008, 0.7))
    return [m for m in [merge(parts)] if m]


def draw_electrodes(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """ECG electrodes and their wires on the skin (generic 'medical device')."""
    parts = []
    for _ in range(int(rng.integers(3, 6))):
        if scene.frontal:
            u, v = rng.choice([-1, 1]) * rng.uniform(0.3, 0.85), rng.uniform(0.0, 0.7)
        else:
            u, v = rng.uniform(-0.7, 0.6), rng.uniform(0.0, 0.7)
        parts.append(ring(scene, u, v, 0.028, 0.35, 0.007))
        parts.append(scene.blob(u, v, 0.01, 0.7, sharp=True))
        a = rng.uniform(0, 2 * math.pi)
        parts.append(scene.line([(u, v), (u + 0.15 * math.cos(a), v + 0.15 * math.sin(a) / ASPECT)], 0.004, 0.3))
    return [m for m in [merge(parts)] if m]


def draw_stent(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Short dense mesh tubes: over the heart (coronary, default) or along the named structure."""
    body = scene.body
    parts = []
    sites = set(f.sites)
    for _ in range(1 + int(rng.random() < 0.5)):
        if sites & {"trachea", "bronchi", "trachea, carina"}:
            u, v, a = (-0.012 + body.shift * 0.6, 0.25, math.pi / 2) if scene.frontal else (0.05, 0.25, 1.3)
        elif "esophagus" in sites:
            u, v, a = (0.02, 0.5, math.pi / 2) if scene.frontal else (0.3, 0.5, 1.5)
        else:
            x0, v0, x1, v1 = body.heart_box()
            u = rng.uniform(x0 + 0.25 * (x1 - x0), x1 - 0.25 * (x1 - x0))
            v = rng.uniform(v0 + 0.25 * (v1 - v0), v1 - 0.35 * (v1 - v0))
            a = rng.uniform(0, math.pi)
        du, dv = math.cos(a) * 0.035, math.sin(a) * 0.035 / ASPECT
        for off in (-0.006, 0.006):
            ou, ov = -math.sin(a) * off, math.cos(a) * off / ASPECT
            parts.append(scene.line([(u - du + ou, v - dv + ov), (u + du + ou, v + dv + ov)], 0.004, 0.8))
    return [m for m in [merge(parts)] if m]


def draw_foreign_body(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """A small, very dense irregular object in the named zone (or the soft tissue)."""
    marks = []
    for side in scene.sides_for(f, rng):
        if "abdomen" in f.sites:
            u, v = (scene.u_of(side, 0.4), scene.body.dome_v[side] + 0.15) if scene.frontal else (-0.2, 1.0)
        else:
            u, v = scene.point(rng, side, f.zone)
        parts = [scene.blob(u + rng.normal(0, 0.008), v + rng.normal(0, 0.006), 0.012 + 0.01 * rng.random(), METAL,
                            aspect=rng.uniform(1, 2.5), angle=rng.uniform(0, math.pi), sharp=True) for _ in range(3)]
        marks.append(merge(parts))
    return [m for m in marks if m is not None]
