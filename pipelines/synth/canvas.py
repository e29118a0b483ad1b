"""The canvas the normal anatomy is drawn on: a reduced-size density map in body coordinates, windowed per structure.

Speed: the anatomy is smooth, so it is drawn at half the output size (`anatomy_frame`) and
upsampled (`Canvas.drawn`); every structure is computed only inside its own window
(`Canvas.window`), not over the whole image.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from pipelines.synth.geometry import F32, Frame, ellipse, ramp

Window = tuple[tuple[slice, slice], np.ndarray, np.ndarray]   # (slices, u, v) of a sub-view


def anatomy_frame(frame: Frame) -> Frame:
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


class Canvas:
    """Density map `D` with body coordinates (u, v) per pixel; `window(box)` gives a sub-view to draw one structure.

    The view drawers add to `D` and set `air` (the lung air they removed from it).
    """

    def __init__(self, frame: Frame):
        self.frame = frame
        self.u, self.v = frame.body_grid()
        self.D = np.zeros((frame.size, frame.size), F32)
        self.air = self.D

    def window(self, u0: float, v0: float, u1: float, v1: float) -> Window | None:
        """(slices, u, v) of the pixels covering a body-space box, or None if it is off the canvas."""
        x0, y0, x1, y1 = self.frame.box(u0, v0, u1, v1, pad=1.0)
        if x1 <= x0 or y1 <= y0:
            return None
        sl = (slice(y0, y1), slice(x0, x1))
        return sl, self.u[sl], self.v[sl]

    def gas_bubble(self, u: float, v: float, ru: float, rv: float, amp: float) -> None:
        """Subtract a gas bubble over fluid (the stomach): an ellipse of radii (ru, rv) around (u, v), air above
        its fluid level at v + 0.01, `amp` density at its fullest."""
        win = self.window(u - 0.16, v - 0.08, u + 0.16, v + 0.04)
        if win is None:
            return
        sl, uu, vv = win
        bubble = ellipse(uu, vv, u, v, ru, rv, edge=0.2)
        self.D[sl] -= F32(amp) * bubble * ramp(F32(v + 0.01) - vv, 0.01)

    def drawn(self, size: int) -> Drawn:
        """The finished anatomy at the output size (density upsampled bilinearly when drawn smaller)."""
        if self.frame.size == size:
            return Drawn(density=self.D, air_small=self.air, size=size)
        img = Image.fromarray(self.D).resize((size, size), Image.BILINEAR)
        return Drawn(density=np.asarray(img, dtype=F32).copy(), air_small=self.air, size=size)
