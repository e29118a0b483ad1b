"""The normal frontal (PA) chest drawn as density: soft tissue, lungs, mediastinum, vessels, airways, bones.

Frontal view: the PATIENT'S RIGHT IS ON THE IMAGE LEFT (u < 0). Every structure is drawn inside
its own window of the reduced-size canvas (see `canvas.py`); shapes come from `body.py`.
"""
from __future__ import annotations

import numpy as np

from pipelines.synth import textures
from pipelines.synth.body import (
    ASPECT,
    EDGE,
    SIDES,
    Body,
    clavicle_v,
    heart_field,
    lung_field,
    rib_band,
    spine_offset,
    vertebrae,
)
from pipelines.synth.canvas import Canvas
from pipelines.synth.geometry import F32, ellipse, ramp, segment_distance, side_sign, smoothstep


def draw_frontal(body: Body, cv: Canvas, rng: np.random.Generator) -> None:
    """Draw the normal frontal anatomy of `body` into the canvas (adds to `cv.D`, sets `cv.air`)."""
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
    tex = textures.vessel_map(body, cv.frame)
    hil = np.zeros_like(D)
    for side in SIDES:
        s = side_sign(side)
        hu, hv = s * 0.21 + body.shift, (0.43 if side == "right" else 0.40)
        win = cv.window(hu - 0.15, hv - 0.12, hu + 0.15, hv + 0.12)
        if win is not None:
            sl, uu, vv = win
            hil[sl] += F32(body.hila[side]) * ellipse(uu, vv * F32(ASPECT), hu, hv * ASPECT, 0.07, 0.13, edge=0.8)
    mottle = textures.mottle("frontal", n, rng)
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
    cv.gas_bubble(gu, gv, 0.12 * k, 0.05 * k, 0.42)

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

    _ribs(body, cv)
    _clavicles(body, cv)
    _spine(body, cv)
    for side in SIDES:
        s = side_sign(side)
        lo, hi = sorted((s * 1.0, s * 1.6))
        win = cv.window(lo, -0.15, hi, 1.0)
        if win is not None:
            sl, uu, vv = win
            head = ellipse(uu, vv * F32(ASPECT), s * 1.2, 0.03 * ASPECT, 0.14, 0.15, edge=0.1)
            shaft = ramp(F32(0.075) - segment_distance(uu, vv, (s * 1.24, 0.1), (s * 1.38, 0.95)), 0.02)
            D[sl] += F32(0.42 * body.bone) * np.maximum(head, shaft)


def _ribs(body: Body, cv: Canvas) -> None:
    """Posterior ribs (bright, up-and-out from the spine) and fainter anterior ribs, inside the rib cage."""
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
        post = rib_band(t, 0.44) * ramp(t, 0.05) * ramp(F32(10.5) - t, 0.1)
        # anterior ribs: from the chest wall down and in towards the sternum, fainter
        ta = (vv - F32(body.rib_v0 + 0.03) - F32(0.42) * (F32(1.0) - w)) * F32(1 / (body.rib_dv * 1.2))
        ant = rib_band(ta, 0.36) * ramp(ta, 0.05) * ramp(F32(6.5) - ta, 0.1) * ramp(w - F32(0.3), 0.12)
        cv.D[sl] += F32(body.bone) * (F32(0.19) * post + F32(0.07) * ant) * inside


def _clavicles(body: Body, cv: Canvas) -> None:
    """Both clavicles: bands along `clavicle_v`, denser at their cortical edges."""
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


def _spine(body: Body, cv: Canvas) -> None:
    """The spine seen through the mediastinum: column, vertebral bodies, pedicles, spinous processes."""
    reach = abs(body.scoliosis) + 0.12
    win = cv.window(-reach + body.shift * 0.2, -0.5, reach + body.shift * 0.2, 1.4)
    if win is None:
        return
    sl, uu, vv = win
    us = spine_offset(body, vv) + F32(0.005 + body.shift * 0.2)
    du = np.abs(uu - us)
    column = ramp(F32(0.08) - du, 0.015)
    q, idx, vert = vertebrae(body, vv)
    dense = np.zeros_like(q)
    for i, factor in body.vert_squash.items():
        dense = np.where(idx == F32(i), F32(0.6 * (1.0 - factor)), dense)   # a compressed body looks denser
    vert = vert * (F32(1.0) + dense * F32(4.0))
    ped = np.abs(np.sqrt(((du - F32(0.05)) * F32(1 / 0.017)) ** 2 + ((q - F32(0.35)) * F32(1 / 0.15)) ** 2) - F32(1.0))
    pedicle = ramp(F32(0.4) - ped, 0.3) * ramp(F32(0.075) - du, 0.01)
    spinous = ellipse(du * F32(ASPECT), q, 0.0, 0.66, 0.02, 0.13, edge=0.5)
    thorax = F32(0.35) + F32(0.65) * smoothstep(-0.25, 0.05, vv) * (F32(1.0) - smoothstep(0.85, 1.15, vv))
    bone = column * (F32(0.06) + F32(0.07) * vert) + F32(0.06) * pedicle + F32(0.035) * spinous
    cv.D[sl] += F32(body.bone) * thorax * bone
