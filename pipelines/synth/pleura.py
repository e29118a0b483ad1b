"""Findings of the pleura: effusions and blunted angles, pleural thickening, pneumothorax and hydropneumothorax.

Every drawer has the signature `draw(scene, finding, rng) -> list[Mark]` and draws on the side the
term names (else a random side; frontal: the patient's right is the image left). Fluid fills the
lung's air (`scene.air()`) from the base up; a pneumothorax removes the lung markings outside the
visceral pleural line.
"""
from __future__ import annotations

import numpy as np

from pipelines.synth.body import ASPECT, lateral_lung_field, lung_edge
from pipelines.synth.geometry import F32, ramp, side_sign, smoothstep
from pipelines.synth.scene import Mark, Scene, merge
from pipelines.synth.terms import Finding


def _fluid(scene: Scene, side: str, height: float, lateral_only: bool = False, flat: bool = False) -> Mark | None:
    """Pleural fluid at the base of one hemithorax: fills the lung below a meniscus (frontal) or the
    posterior sulcus (lateral). `flat`: a straight air-fluid level (hydropneumothorax)."""
    body = scene.body
    air_map = scene.air()
    if scene.frontal:
        s = side_sign(side)
        W = body.lung_width(side)
        top = body.dome_v[side] - height
        box = scene.lung_box(side)
        box = (box[0], top - 0.05, box[2], box[3])

        def fn(uu, vv, sl):
            w = uu * F32(s)
            t = np.clip((w - F32(0.15)) * F32(1 / (W - 0.15)), 0, 1)
            level = F32(top) if flat else F32(body.dome_v[side]) - F32(height) * (F32(0.45) + F32(0.55) * t ** 1.5)
            fill = smoothstep(-0.015, 0.03, vv - level) if not flat else ramp(vv - level, 0.006)
            if lateral_only:
                fill = fill * smoothstep(0.45, 0.75, w)
            return air_map[sl] * fill * ramp(w, 0.02)

        return scene.add(*box, fn, with_slice=True)

    top = max(body.dome_v.values()) - height * 1.2
    share = F32(0.55)  # one hemithorax of the two overlapped in a lateral view

    def fn(uu, vv, sl):
        dome = F32(body.dome_v[side] - 0.04) + F32(0.22) * ((uu + F32(0.35)) * F32(1 / 1.1)) ** 2
        level = dome - F32(height) * (F32(0.3) + F32(0.9) * smoothstep(-0.3, 0.8, uu))
        fill = smoothstep(-0.015, 0.03, vv - level) if not flat else ramp(vv - level, 0.006)
        if lateral_only:
            fill = fill * smoothstep(0.2, 0.6, uu)
        return share * air_map[sl] * fill

    return scene.add(-0.95, top - 0.05, 0.9, max(body.dome_v.values()) + 0.25, fn, with_slice=True)


def draw_effusion(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Pleural effusion: meniscus, blunted costophrenic angle; height by severity (small .. large)."""
    s = f.severity
    marks = []
    for side in scene.sides_for(f, rng):
        if f.concept == "blunted costophrenic angle":
            marks.append(_fluid(scene, side, 0.05 + 0.04 * s, lateral_only=True))
        else:
            marks.append(_fluid(scene, side, 0.06 + 0.3 * s ** 1.3))
    return [m for m in marks if m is not None]


def draw_pleural_thickening(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Pleural thickening along the lateral chest wall, or an apical cap (zone apex)."""
    body = scene.body
    t = 0.012 + 0.015 * f.severity
    marks = []
    for side in scene.sides_for(f, rng):
        if not scene.frontal:
            u, v = scene.point(rng, side, f.zone or "upper")
            marks.append(scene.blob(u, v, t, 0.3, aspect=6, angle=0.3))
            continue
        zone = f.zone
        if zone == "apex":
            v0, v1 = body.apex_v - 0.02, body.apex_v + 0.12
        elif zone is None:
            v0, v1 = 0.15, body.dome_v[side]
        else:
            z = scene.zone_box(side, zone)
            v0, v1 = z[1], z[3]
        box = scene.lung_box(side)
        box = (box[0], v0 - 0.03, box[2], v1 + 0.03)

        def fn(uu, vv, side=side, v0=v0, v1=v1):
            mask, edge = lung_edge(body, uu, vv, side)
            band = ramp(F32(t) - edge, 0.01)
            span = smoothstep(v0, v0 + 0.03, vv) * (F32(1.0) - smoothstep(v1 - 0.03, v1, vv))
            return F32(0.45) * band * mask * span

        marks.append(scene.add(*box, fn))
    return [m for m in marks if m is not None]


def draw_pneumothorax(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Pneumothorax: a thin visceral pleural line with no lung markings beyond it (apical-lateral);
    hydropneumothorax adds a straight air-fluid level."""
    s = f.severity
    body = scene.body
    marks = []
    tex = scene.vessel_field()
    for side in scene.sides_for(f, rng):
        gap = 0.05 + 0.16 * s
        if scene.frontal:
            box = scene.lung_box(side)
            air_map = scene.air()

            def fn(uu, vv, sl, side=side, gap=gap, air_map=air_map):  # scene.add calls it at once
                mask, edge = lung_edge(body, uu, vv, side)
                air = air_map[sl]
                g = F32(gap) * (F32(1.0) - F32(0.7) * smoothstep(0.3, 0.85, vv))
                outside = ramp(g - edge, 0.01) * mask
                line = np.clip(F32(1.0) - np.abs(edge - g) * F32(1 / 0.005), 0, 1) * mask
                return -(F32(0.17 * body.vessels) * tex[sl] + F32(0.04) + F32(0.1) * air) * outside + F32(0.22) * line

            parts = [scene.add(*box, fn, with_slice=True)]
        else:
            def fn(uu, vv, sl=None, gap=gap):
                mask, air = lateral_lung_field(body, uu, vv)
                top = F32(body.apex_v) + F32(0.5) * (uu - F32(0.2)) ** 2
                edge = (vv - top) * F32(ASPECT)
                outside = ramp(F32(gap) - edge, 0.01) * mask
                line = np.clip(F32(1.0) - np.abs(edge - F32(gap)) * F32(1 / 0.005), 0, 1) * mask
                return -(F32(0.05) + F32(0.1) * air) * outside + F32(0.2) * line

            parts = [scene.add(-0.9, body.apex_v - 0.02, 0.9, body.apex_v + gap + 0.2, fn)]
        if f.concept == "hydropneumothorax":
            parts.append(_fluid(scene, side, 0.1 + 0.1 * s, flat=True))
        marks.append(merge(parts))
    return [m for m in marks if m is not None]
