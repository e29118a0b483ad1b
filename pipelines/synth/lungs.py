"""Findings of the lungs: opacities, nodules, calcifications, atelectasis, scars, patterns, vessels, volume.

Every drawer has the signature `draw(scene, finding, rng) -> list[Mark]` and places its finding in
the named zone and side (frontal: the patient's right is the image left). Modifier functions
`modify(body, finding, rng)` change the anatomy before it is drawn.
"""
from __future__ import annotations

import math

import numpy as np

from pipelines.synth.body import ASPECT, SIDES, Body
from pipelines.synth.geometry import F32, bump, side_sign, smoothstep
from pipelines.synth.scene import Mark, Scene, cloud, lesion_count, merge, ring
from pipelines.synth.terms import Finding

# ---------------------------------------------------------------- opacities


def _default_zone(f: Finding, side: str, fallback: str | None = None) -> str | None:
    """The zone to draw in; organ words imply one ('heart' obscured -> middle lobe / lingula)."""
    if f.zone:
        return f.zone
    sites = set(f.sites)
    if "heart" in sites or "cardiac shadow" in sites:
        return "middle" if side == "right" else "lingula"
    if sites & {"diaphragm", "costophrenic angle"}:
        return "base"
    if "aorta" in sites:
        return "upper"
    return fallback


def _sides(scene: Scene, f: Finding, rng, default: str | None = None, both_when_spread: bool = False
           ) -> tuple[str, ...]:
    """The term's sides; with `both_when_spread`, both lungs for a spread-out finding with no side; else
    `scene.sides_for` (default, else a random side)."""
    if not f.sides and both_when_spread and f.spread in ("scattered", "diffuse", "multilobar"):
        return scene.sides_or_both(f)
    return scene.sides_for(f, rng, default)


def reticular(scene: Scene, side: str | None, box, amp: float, rng, period: float = 0.05,
              weight=None) -> Mark | None:
    """A fine net of lines (interstitial pattern) inside the lung within a body-space box."""
    u0, v0, u1, v1 = box
    cu, cv = (u0 + u1) / 2, (v0 + v1) / 2
    hu, hv = (u1 - u0) / 2, (v1 - v0) / 2
    ph = rng.uniform(0, 10, 4)
    sides = (side,) if side else ()

    def fn(uu, vv):
        x = uu * F32(1 / period)
        y = vv * F32(ASPECT / period)
        x = x + F32(0.45) * np.sin(y * F32(0.7) + F32(ph[0]))
        y = y + F32(0.45) * np.sin(x * F32(0.6) + F32(ph[1]))
        net = np.maximum(F32(1.0) - np.abs(np.sin(x * F32(math.pi))) * F32(3.0),
                         F32(1.0) - np.abs(np.sin(y * F32(math.pi) + F32(ph[2]))) * F32(3.0))
        net = np.clip(net, 0, 1) * (F32(0.6) + F32(0.4) * np.sin(x * F32(0.37) + y * F32(0.29) + F32(ph[3])))
        fall = bump(((uu - F32(cu)) * F32(1 / hu)) ** 2 + ((vv - F32(cv)) * F32(1 / hv)) ** 2)
        f = F32(amp) * net * np.sqrt(fall) * scene.lung(uu, vv, sides)
        if weight is not None:
            f = f * weight(uu, vv)
        return f

    return scene.add(u0, v0, u1, v1, fn)


def _cluster(scene: Scene, side: str, zone, rng, radius: float, amp: float, n: int,
             spread: float, aspect: tuple[float, float] = (1.0, 1.4), sharp: bool = False) -> Mark | None:
    """An ill-defined opacity made of `n` overlapping soft discs around one point of the zone, kept in the lung."""
    u, v = scene.point(rng, side, zone)
    clip = (side,) if scene.frontal else ()
    centers = [(u + rng.normal(0, spread), v + rng.normal(0, spread) / ASPECT, radius * rng.uniform(0.7, 1.15))
               for _ in range(n)]
    return cloud(scene, centers, amp, clip_sides=clip, seed=float(rng.uniform(0, 100)))


def _bronchograms(scene: Scene, mark: Mark | None, rng, n: int = 3) -> Mark | None:
    """Dark branching air lines inside a consolidation; returns the consolidation's mark grown to hold them."""
    if mark is None:
        return None
    x0, y0, x1, y1 = mark.box
    cu, cv = scene.frame.to_body((x0 + x1) / 2, (y0 + y1) / 2)
    half = (x1 - x0) / scene.frame.sx * 0.3
    parts = [mark]
    for _ in range(n):
        a = rng.uniform(0, 2 * math.pi)
        pts = [(float(cu), float(cv))]
        for _ in range(2):
            a += rng.normal(0, 0.4)
            pu, pv = pts[-1]
            pts.append((pu + math.cos(a) * half * 0.5, pv + math.sin(a) * half * 0.5 / ASPECT))
        parts.append(scene.line(pts, 0.006, -0.12))
    return merge(parts)


def draw_opacity(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Opacity, density, infiltrate, airspace disease, consolidation, pneumonia (by concept and pattern)."""
    s = f.severity
    dense = f.concept in ("consolidation", "pneumonia")
    marks = []
    for side in _sides(scene, f, rng, both_when_spread=True):
        fallback = "lower" if dense else None
        zone = _default_zone(f, side, fallback)
        if f.pattern in ("interstitial", "reticular") or (f.spread == "diffuse" and not dense):
            box = scene.zone_box(side, zone) if f.zone else scene.zone_box(side, None)
            marks.append(reticular(scene, side if scene.frontal else None, box, 0.14 + 0.12 * s, rng))
        elif f.pattern == "streaky":
            u, v = scene.point(rng, side, zone)
            parts = []
            for _ in range(int(rng.integers(3, 6))):
                parts.append(scene.blob(u + rng.normal(0, 0.05), v + rng.normal(0, 0.03), 0.012 + 0.008 * s,
                                        0.3 + 0.15 * s, aspect=rng.uniform(4, 8), angle=rng.normal(0, 0.35),
                                        clip_sides=(side,) if scene.frontal else ()))
            marks.append(merge(parts))
        elif f.pattern == "patchy" or f.concept == "infiltrate":
            u, v = scene.point(rng, side, zone)
            parts = [_cluster(scene, side, zone, rng, 0.04 + 0.03 * s, 0.25 + 0.2 * s, 2, 0.02)
                     for _ in range(int(rng.integers(3, 5)))]
            marks.append(merge(parts))
        elif f.pattern == "round":
            u, v = scene.point(rng, side, zone, margin=0.05)
            marks.append(scene.blob(u, v, 0.05 + 0.04 * s, 0.3 + 0.2 * s, clip_sides=(side,) if scene.frontal else ()))
        else:
            radius = (0.09 + 0.08 * s) if dense else (0.06 + 0.06 * s)
            amp = (0.5 + 0.2 * s) if dense else (0.3 + 0.2 * s)
            if f.concept == "airspace disease":
                amp += 0.08
            m = _cluster(scene, side, zone, rng, radius, amp, int(rng.integers(3, 6)), radius * 0.45)
            if dense:
                m = _bronchograms(scene, m, rng)
            marks.append(m)
    return [m for m in marks if m is not None]


def draw_lesions(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Nodules, masses, granulomas and calcified granulomas: round, well-defined, counted."""
    s = f.severity
    kind = f.concept
    radius, amp = {
        "nodule": (0.028 + 0.02 * s, 0.4),
        "mass": (0.08 + 0.07 * s, 0.55),
        "granuloma": (0.02 + 0.008 * s, 0.6),
        "calcified granuloma": (0.014 + 0.006 * s, 1.1),
    }[kind]
    n = lesion_count(f, rng)
    sides = _sides(scene, f, rng, both_when_spread=True)
    marks = []
    for i in range(n):
        side = sides[i % len(sides)]
        zone = _default_zone(f, side)
        u, v = scene.point(rng, side, zone, margin=radius)
        r = radius * rng.uniform(0.85, 1.15)
        if kind == "mass":
            parts = [scene.blob(u, v, r, amp, sharp=True)]
            for _ in range(2):
                a = rng.uniform(0, 2 * math.pi)
                parts.append(scene.blob(u + math.cos(a) * r * 0.5, v + math.sin(a) * r * 0.5 / ASPECT,
                                        r * 0.6, amp * 0.9, sharp=True))
            marks.append(merge(parts))
        else:
            marks.append(scene.blob(u, v, r, amp, aspect=rng.uniform(1.0, 1.25), angle=rng.uniform(0, math.pi),
                                    sharp=True))
    return [m for m in marks if m is not None]


def draw_calcinosis(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Calcification placed by its named structure: aortic knob, hilar/mediastinal nodes, vessels, heart, lung."""
    sites = set(f.sites)
    body = scene.body
    cardiac = {"coronary vessels", "blood vessels", "heart", "aortic valve", "mitral valve", "heart ventricles"}
    if sites & {"aorta", "aorta, thoracic"} or (f.concept == "atherosclerosis" and not sites & cardiac):
        return [m for m in [_aortic_calcification(scene, rng, f.severity)] if m is not None]
    if sites & cardiac:
        x0, v0, x1, v1 = body.heart_box()
        marks = []
        for _ in range(int(rng.integers(2, 4))):
            u = rng.uniform(x0 + 0.3 * (x1 - x0), x1 - 0.3 * (x1 - x0))
            v = rng.uniform(v0 + 0.3 * (v1 - v0), v1 - 0.3 * (v1 - v0))
            a = rng.uniform(0, math.pi)
            marks.append(scene.line([(u, v), (u + 0.05 * math.cos(a), v + 0.05 * math.sin(a) / ASPECT)], 0.007, 0.5))
        return [m for m in [merge(marks)] if m is not None]
    if "hilum" == f.zone or "lymph nodes" in sites or "mediastinum" in sites:
        marks = []
        if "mediastinum" in sites and f.zone != "hilum":
            for _ in range(int(rng.integers(2, 4))):
                u = body.shift + rng.choice([-1, 1]) * rng.uniform(0.04, 0.11)
                marks.append(scene.blob(u, rng.uniform(0.18, 0.36), 0.018, 0.9, sharp=True, aspect=1.3))
            return [m for m in [merge(marks)] if m is not None]
        for side in _sides(scene, f, rng, default=None):
            parts = []
            u, v = scene.point(rng, side, "hilum")
            for _ in range(int(rng.integers(2, 4))):
                parts.append(scene.blob(u + rng.normal(0, 0.02), v + rng.normal(0, 0.015), 0.016, 0.95, sharp=True,
                                        aspect=rng.uniform(1, 1.6), angle=rng.uniform(0, 3)))
            marks.append(merge(parts))
        return [m for m in marks if m is not None]
    if "breast" in sites:
        marks = []
        for side in _sides(scene, f, rng):
            u = scene.u_of(side, 0.55) if scene.frontal else -0.9
            marks.append(merge([scene.blob(u + rng.normal(0, 0.05), 0.75 + rng.normal(0, 0.03), 0.01, 0.9, sharp=True)
                                for _ in range(3)]))
        return [m for m in marks if m is not None]
    g = Finding(concept="calcified granuloma", term=f.term, sides=f.sides, zone=f.zone, sites=f.sites,
                severity=f.severity, spread=f.spread)
    return draw_lesions(scene, g, rng)


def _aortic_calcification(scene: Scene, rng, s: float) -> Mark | None:
    """A thin bright arc along the rim of the aortic knob (frontal) or the arch (lateral)."""
    body = scene.body
    if scene.frontal:
        ku, kv, r = body.knob_u + body.shift, body.knob_v, body.knob_r * 0.92
        a0 = rng.uniform(math.radians(190), math.radians(230))
        a1 = a0 + rng.uniform(1.3, 2.0)
        pts = [(ku + r * math.cos(a), kv + r * math.sin(a) / ASPECT) for a in np.linspace(a0, a1, 7)]
    else:
        arch = [(-0.2, 0.25), (0.0, 0.15), (0.24, 0.19), (0.38, 0.34)]
        pts = [(pu, pv - 0.03) for pu, pv in arch]
    return scene.line(pts, 0.007 + 0.004 * s, 0.55 + 0.3 * s)


def draw_granulomatous(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Granulomatous disease / tuberculosis: calcified granulomas plus calcified hilar nodes (TB: apical scars)."""
    marks = []
    g = Finding(concept="calcified granuloma", term=f.term, sides=f.sides or ("right", "left"),
                zone=f.zone or ("upper" if f.concept == "tuberculosis" else None), severity=f.severity,
                spread="multiple")
    marks += draw_lesions(scene, g, rng)
    side = ("right", "left")[int(rng.integers(0, 2))]
    u, v = scene.point(rng, side, "hilum")
    marks.append(merge([scene.blob(u + rng.normal(0, 0.02), v + rng.normal(0, 0.015), 0.016, 0.95, sharp=True)
                        for _ in range(2)]))
    if f.concept == "tuberculosis":
        c = Finding(concept="cicatrix", term=f.term, sides=f.sides, zone="apex", severity=f.severity)
        marks += draw_cicatrix(scene, c, rng)
    return [m for m in marks if m is not None]


def draw_atelectasis(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Plate-like (discoid) atelectasis: thin dense bands, roughly horizontal, in the zone (default: base)."""
    s = f.severity
    marks = []
    for side in _sides(scene, f, rng):
        zone = f.zone or "base"
        if zone == "base":
            zone = "lower"
        parts = []
        u, v = scene.point(rng, side, zone, margin=0.06)
        for k in range(1 + int(s > 0.7) + int(f.spread is not None)):
            parts.append(scene.blob(u + rng.normal(0, 0.03), v + k * 0.035 + rng.normal(0, 0.008),
                                    0.014 + 0.012 * s, 0.45 + 0.2 * s, aspect=rng.uniform(5, 8),
                                    angle=rng.normal(0, 0.2), clip_sides=(side,) if scene.frontal else ()))
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


def draw_cicatrix(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Scar: a few irregular linear strands radiating from a small focus (default zone: apex)."""
    marks = []
    for side in _sides(scene, f, rng):
        zone = f.zone or "apex"
        u, v = scene.point(rng, side, zone, margin=0.04)
        clip = (side,) if scene.frontal else ()
        parts = [scene.blob(u, v, 0.02, 0.25, clip_sides=clip)]
        for _ in range(int(rng.integers(3, 5))):
            a = rng.uniform(0, math.pi)
            parts.append(scene.blob(u + math.cos(a) * 0.03, v + math.sin(a) * 0.02, 0.008 + 0.004 * f.severity, 0.32,
                                    aspect=rng.uniform(4, 7), angle=a, clip_sides=clip))
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


# ---------------------------------------------------------------- patterns and vessels

def _vessel_boost(scene: Scene, side: str | None, amp: float, weight=None) -> Mark | None:
    tex = scene.vessel_field()
    box = scene.lung_box(side)
    sides = (side,) if side else ()

    def fn(uu, vv, sl):
        f = F32(amp) * tex[sl] * scene.lung(uu, vv, sides)
        if weight is not None:
            f = f * weight(uu, vv)
        return f

    return scene.add(*box, fn, with_slice=True)


def _lower_zone_weight(uu, vv):
    """Reticular weight for basal-predominant fibrosis: 0.3 at the apex rising to 1 in the lower zones."""
    return F32(0.3) + F32(0.7) * smoothstep(0.35, 0.75, vv)


def _upper_zone_weight(uu, vv):
    """Vessel weight for upper-lobe diversion (congestion): 1 in the upper zones falling to 0.5 below."""
    return F32(0.5) + F32(0.5) * (F32(1.0) - smoothstep(0.2, 0.6, vv))


def draw_markings(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Prominent bronchovascular or interstitial markings (both lungs unless a side is named)."""
    s = f.severity
    sides = scene.sides_or_both(f)
    marks = []
    for side in sides:
        side_arg = side if scene.frontal else None
        if f.pattern in ("interstitial", "reticular") or f.concept in ("interstitial disease", "fibrosis"):
            box = scene.zone_box(side, f.zone) if f.zone else scene.lung_box(side_arg)
            weight = _lower_zone_weight if f.concept == "fibrosis" and not f.zone else None
            marks.append(merge([reticular(scene, side_arg, box, 0.14 + 0.14 * s, rng, weight=weight),
                                _vessel_boost(scene, side_arg, 0.05 + 0.05 * s)]))
        else:
            marks.append(_vessel_boost(scene, side_arg, 0.12 + 0.14 * s))
    return [m for m in marks if m is not None]


def draw_bronchial(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Bronchial wall thickening / bronchiectasis: ring shadows and tram lines near the hila or in the zone."""
    s = f.severity
    marks = []
    ectasis = f.concept in ("bronchiectasis", "cystic fibrosis")
    for side in scene.sides_or_both(f):
        zone = f.zone or ("upper" if f.concept == "cystic fibrosis" else ("lower" if ectasis else "hilum"))
        parts = []
        for _ in range(int(rng.integers(4, 8))):
            u, v = scene.point(rng, side, zone)
            r = (0.022 if ectasis else 0.014) * (0.8 + 0.4 * s)
            parts.append(ring(scene, u, v, r, 0.3 + 0.15 * s, 0.006))
            if ectasis:
                a = rng.uniform(0, math.pi)
                for off in (-r, r):
                    ou, ov = -math.sin(a) * off, math.cos(a) * off / ASPECT
                    end = (u + ou + 0.06 * math.cos(a), v + ov + 0.06 * math.sin(a) / ASPECT)
                    parts.append(scene.line([(u + ou, v + ov), end], 0.004, 0.3))
        marks.append(merge(parts))
    if f.concept == "cystic fibrosis":
        marks += draw_markings(scene, Finding(concept="markings", term=f.term, severity=0.5), rng)
    return [m for m in marks if m is not None]


def draw_edema(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Pulmonary congestion / edema / heart failure: perihilar haze, prominent upper vessels, Kerley lines."""
    s = f.severity
    marks = []
    for side in scene.sides_or_both(f):
        side_arg = side if scene.frontal else None
        parts = []
        if f.concept == "pulmonary congestion" or f.concept == "heart failure":
            parts.append(_vessel_boost(scene, side_arg, 0.16 + 0.14 * s, weight=_upper_zone_weight))
            u, v = scene.point(rng, side, "hilum")
            parts.append(scene.blob(u, v, 0.1 + 0.04 * s, 0.1 + 0.08 * s, aspect=1.3,
                                    clip_sides=(side,) if scene.frontal else ()))
        else:
            hu, hv = scene.point(rng, side, "hilum")
            lateral = side_sign(side) * 0.12 if scene.frontal else 0.0
            parts.append(scene.blob(hu + lateral, hv + 0.02, 0.2 + 0.08 * s, 0.18 + 0.22 * s, aspect=1.3,
                                    angle=math.pi / 2, clip_sides=(side,) if scene.frontal else ()))
            parts.append(_vessel_boost(scene, side_arg, 0.08 + 0.08 * s))
            if f.pattern == "interstitial" or s >= 0.5:
                for _ in range(int(rng.integers(4, 8))):
                    if scene.frontal:
                        w = scene.body.lung_width(side) - rng.uniform(0.02, 0.07)
                        ku, kv = scene.u_of(side, w), scene.body.dome_v[side] - rng.uniform(0.0, 0.12)
                        a = 0.0
                    else:
                        ku, kv, a = rng.uniform(-0.6, -0.3), rng.uniform(0.5, 0.7), 0.0
                    parts.append(scene.line([(ku - 0.025, kv), (ku + 0.025, kv + a)], 0.004, 0.22))
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


def draw_hyperlucency(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Hyperlucent lung, bullae, cysts, lucency: less density (more air) in the lung or zone."""
    s = f.severity
    marks = []
    if f.concept == "lucency" and set(f.sites) & {"ribs", "clavicle", "humerus"}:
        from pipelines.synth.skeleton import draw_bone_lesion

        return draw_bone_lesion(scene, f, rng)
    for side in _sides(scene, f, rng, default=None):
        side_arg = side if scene.frontal else None
        if f.concept == "hyperlucent lung":
            box = scene.lung_box(side_arg)
            tex = scene.vessel_field()
            air_map = scene.air()

            def fn(uu, vv, sl, air_map=air_map, tex=tex):  # scene.add calls it at once
                air = air_map[sl]
                return -(F32(0.12 + 0.12 * s) * air + F32(0.1) * tex[sl] * air)

            marks.append(scene.add(*box, fn, with_slice=True))
            continue
        n = 1 if f.concept == "lucency" else int(rng.integers(2, 4))
        r0 = {"bullae": 0.07 + 0.05 * s, "cysts": 0.03 + 0.015 * s}.get(f.concept, 0.05 + 0.03 * s)
        parts = []
        zone = f.zone or ("upper" if f.concept == "bullae" else None)
        for _ in range(n):
            r = r0 * rng.uniform(0.8, 1.2)
            u, v = scene.point(rng, side, zone, margin=r)
            parts.append(ring(scene, u, v, r, 0.16, 0.007, inner=-0.09))
        marks.append(merge(parts))
    return [m for m in marks if m is not None]


def draw_cavity(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """A thick-walled cavity: dense rim with an air centre."""
    marks = []
    for side in _sides(scene, f, rng):
        r = 0.05 + 0.03 * f.severity
        u, v = scene.point(rng, side, f.zone or "upper", margin=r)
        marks.append(ring(scene, u, v, r, 0.5, 0.02, inner=-0.15))
    return [m for m in marks if m is not None]


def draw_sarcoidosis(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Bilateral hilar lymphadenopathy with upper-zone reticulonodular markings."""
    from pipelines.synth.cardio import draw_nodes

    marks = draw_nodes(scene, Finding(concept="lymphadenopathy", term=f.term, zone="hilum", severity=f.severity), rng)
    for side in (("right", "left") if scene.frontal else ("right",)):
        marks.append(reticular(scene, side if scene.frontal else None, scene.zone_box(side, "upper"), 0.12, rng))
    return [m for m in marks if m is not None]


# ---------------------------------------------------------------- lung volume (modifiers)

def modify_hypoinflation(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Low lung volumes: higher domes, a relatively wider heart, crowded vessels."""
    s = f.severity
    for side in (f.sides or SIDES):
        body.dome_v[side] -= 0.05 + 0.07 * s
    body.heart_ru *= 1 + 0.06 * s
    body.vessels *= 1.15


def modify_hyperinflation(body: Body, f: Finding, rng: np.random.Generator) -> None:
    """Hyperdistention / emphysema / COPD: low flat domes, narrow heart, darker lungs, fewer vessels."""
    s = f.severity
    for side in (f.sides or SIDES):
        body.dome_v[side] += 0.05 + 0.06 * s
        body.dome_depth[side] *= 1 - 0.5 * s
    body.heart_ru *= 1 - 0.1 * s
    if f.concept in ("emphysema", "copd", "cystic fibrosis"):
        body.air *= 1 + 0.15 * s
        body.vessels *= 1 - 0.35 * s


def lungs_region(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """Region of a change of both lungs' volume: the lungs of the base and the changed body."""
    marks = []
    for side in ((f.sides or SIDES) if scene.frontal else ("right",)):
        boxes = [scene.lung_box(side if scene.frontal else None, body) for body in (scene.base, scene.body)]
        u0 = min(b[0] for b in boxes) - 0.04
        v0 = min(b[1] for b in boxes) - 0.03
        u1 = max(b[2] for b in boxes) + 0.04
        v1 = max(b[3] for b in boxes) + 0.04
        marks.append(scene.box_mark(u0, v0, u1, v1))
    return [m for m in marks if m is not None]


def draw_emphysema(scene: Scene, f: Finding, rng: np.random.Generator) -> list[Mark]:
    """The hyperinflated lungs' region (cystic fibrosis adds bronchial changes)."""
    marks = lungs_region(scene, f, rng)
    if f.concept == "cystic fibrosis":
        marks += draw_bronchial(scene, f, rng)
    return marks
