"""The normal lateral chest drawn as density: soft tissue, both lungs overlapped, heart, aorta, vessels, bones.

Lateral view: the patient faces the image left (anterior u < 0); the two lungs, hemidiaphragms
and breasts overlap. Every structure is drawn inside its own window of the reduced-size canvas
(see `canvas.py`); shapes come from `body.py`.
"""
from __future__ import annotations

import numpy as np

from pipelines.synth import textures
from pipelines.synth.body import (
    ASPECT,
    Body,
    lateral_floor,
    lateral_lung_field,
    lateral_spine_u,
    lateral_walls,
    rib_band,
    vertebrae,
)
from pipelines.synth.canvas import Canvas
from pipelines.synth.geometry import F32, ellipse, polyline_distance, ramp, segment_distance, smoothstep


def draw_lateral(body: Body, cv: Canvas, rng: np.random.Generator) -> None:
    """Draw the normal lateral anatomy of `body` into the canvas (adds to `cv.D`, sets `cv.air`)."""
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

    tex = textures.vessel_map(body, cv.frame)
    hil = np.zeros_like(D)
    win = cv.window(-0.2, 0.28, 0.35, 0.58)
    if win is not None:
        sl, uu, vv = win
        hil[sl] = ellipse(uu, vv * F32(ASPECT), 0.07, 0.43 * ASPECT, 0.14, 0.13, edge=0.8)
    mottle = textures.mottle("lateral", n, rng)
    hila = 0.5 * (body.hila["right"] + body.hila["left"])
    D += (F32(0.12 * body.vessels) * tex + F32(0.12 * hila) * hil + F32(0.035) * mottle) * lung

    # stomach bubble under the left hemidiaphragm, anteriorly
    gu, gv = -0.2, float(lateral_floor(body, "left", np.float32(-0.2))) + 0.06
    k = body.bubble ** 0.5
    cv.gas_bubble(gu, gv, 0.12 * k, 0.045 * k, 0.35)
    breast = 0.5 * (body.breast["right"] + body.breast["left"])   # both breasts overlap in a lateral view
    if breast > 0:
        win = cv.window(-1.3, 0.5, -0.65, 0.95)
        if win is not None:
            sl, uu, vv = win
            a, _ = lateral_walls(body, vv)
            br = ellipse(uu, vv * F32(ASPECT), -0.92, 0.72 * ASPECT, 0.2, 0.2, edge=0.3)
            D[sl] += F32(0.35 * breast) * br * ramp(uu - a + F32(0.12), 0.08)

    _spine(body, cv)
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
        ribs = rib_band(t, 0.35) * ramp(uu - F32(0.1), 0.25) * ramp(p - uu - F32(0.03), 0.04) \
            * ramp(vv + F32(0.05), 0.05) * ramp(F32(0.95) - vv, 0.1)
        scap = ellipse(uu, vv * F32(ASPECT), 0.62, 0.26 * ASPECT, 0.22, 0.42, edge=0.1)
        D[sl] += F32(0.08 * body.bone) * ribs + F32(0.06 * body.bone) * scap


def _spine(body: Body, cv: Canvas) -> None:
    """The thoracic spine in profile: vertebral bodies with cortical rims, posterior elements, kyphosis."""
    win = cv.window(0.25, -0.5, 1.05, 1.4)
    if win is None:
        return
    sl, uu, vv = win
    du = uu - lateral_spine_u(body, vv)
    q, _, vert = vertebrae(body, vv)
    column = ramp(F32(0.11) - np.abs(du), 0.02)
    cortex = column * vert * (ramp(np.abs(du) - F32(0.08), 0.03) + ramp(np.abs(q - F32(0.47)) - F32(0.34), 0.05))
    posterior = ramp(F32(0.09) - np.abs(du - F32(0.22)), 0.06) * (F32(0.6) + F32(0.4) * vert)
    fade = F32(1.0) - F32(0.35) * smoothstep(0.1, 0.95, vv)
    bone = column * (F32(0.22) + F32(0.26) * vert) + F32(0.12) * cortex + F32(0.08) * posterior
    cv.D[sl] += F32(body.bone) * bone * fade
