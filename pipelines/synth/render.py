"""Render one synthetic chest radiograph from an image id, its MeSH terms and its view (pure, deterministic).

`render(image_id, terms, view, size)` -> (uint8 image (size, size), regions). Everything random is
drawn from streams seeded by a stable hash of the image id (`geometry.rng_for`), so the same id,
terms, view and size give the same bytes on every run. Each finding draws from its own stream, so
adding a finding never moves the anatomy, the noise or another finding.

Radiological convention: frontal images are shown as PA films, the PATIENT'S RIGHT ON THE IMAGE
LEFT. A term `.../right` is drawn on the left half of the image.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from indexer.records import MeshTerm
from pipelines.synth import textures
from pipelines.synth.body import VIEWS, Body, sample_body, sample_frame
from pipelines.synth.canvas import Canvas, Drawn, anatomy_frame
from pipelines.synth.findings import CONCEPTS
from pipelines.synth.frontal import draw_frontal
from pipelines.synth.geometry import F32, Frame, rng_for
from pipelines.synth.lateral import draw_lateral
from pipelines.synth.scene import Scene
from pipelines.synth.terms import Finding, is_no_finding, parse_finding

# Bump when the pictures change: the corpus re-renders images made by another version.
GENERATOR_VERSION = "1.0"
GENERATOR = "cxrsearch-synth"
DEFAULT_SIZE = 256


@dataclass(frozen=True)
class Region:
    """Where one finding was drawn: pixel box (x0, y0, x1, y1), end-exclusive, and optionally a mask.

    `mask` (bool, shape (y1 - y0, x1 - x0)) covers the box only; it is kept in memory, not written
    to regions.jsonl.
    """

    image_id: str
    concept: str
    term: str
    box: tuple[int, int, int, int]
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {"concept": self.concept, "term": self.term, "box": list(self.box)}

    @classmethod
    def from_dict(cls, image_id: str, data: dict) -> Region:
        return cls(image_id=image_id, concept=data["concept"], term=data["term"], box=tuple(data["box"]))


@dataclass
class Rendered:
    """A rendered image with what was drawn and what was not."""

    image_id: str
    view: str
    image: np.ndarray                        # (size, size) uint8
    regions: list[Region]
    drawn: list[str]                         # raw terms that were drawn
    not_drawn: list[str]                     # raw terms the renderer does not know (term.key)
    invisible: list[str] = field(default_factory=list)  # known terms with nothing to show in this view


def plan(terms: Sequence[MeshTerm | str]) -> tuple[list[Finding], list[str]]:
    """Parse terms into findings; returns (findings, keys of unknown terms). 'normal' is neither."""
    findings: list[Finding] = []
    unknown: list[str] = []
    for t in terms:
        term = MeshTerm.parse(t) if isinstance(t, str) else t
        if is_no_finding(term):
            continue
        finding = parse_finding(term)
        if finding is None or finding.concept not in CONCEPTS:
            unknown.append(term.key)
        else:
            findings.append(finding)
    return findings, unknown


def render_image(image_id: str, terms: Sequence[MeshTerm | str], view: str, size: int = DEFAULT_SIZE) -> Rendered:
    """Render with full bookkeeping (used by the corpus builder)."""
    if view not in VIEWS:
        raise ValueError(f"view must be 'frontal' or 'lateral', not {view!r}")
    if size < 64:
        raise ValueError(f"size must be at least 64 pixels, not {size}")
    findings, unknown = plan(terms)
    rng = rng_for(image_id, "anatomy")
    body = sample_body(image_id, view, rng)
    frame = sample_frame(size, view, rng)
    base = body.copy()  # unmodified copy: modifiers record what they changed against it
    seen: dict[str, int] = {}
    streams = []
    for f in findings:
        k = seen.get(f.term, 0)
        seen[f.term] = k + 1
        streams.append(rng_for(image_id, "finding", f.term, str(k)))
    for f, frng in zip(findings, streams):
        modify = CONCEPTS[f.concept].modify
        if modify is not None:
            modify(body, f, frng)
    drawn = draw_anatomy(body, frame, rng)
    scene = Scene(image_id=image_id, body=body, base=base, frame=frame, density=drawn.density, air=drawn.air)
    regions: list[Region] = []
    drawn: list[str] = []
    invisible: list[str] = []
    for f, frng in zip(findings, streams):
        marks = CONCEPTS[f.concept].draw(scene, f, frng)
        if not marks:
            invisible.append(f.term)
            continue
        drawn.append(f.term)
        for m in marks:
            regions.append(Region(image_id=image_id, concept=f.concept, term=f.term, box=m.box, mask=m.mask))
    image = to_uint8(scene.density, body, rng_for(image_id, "noise"))
    return Rendered(image_id=image_id, view=view, image=image, regions=regions, drawn=drawn,
                    not_drawn=unknown, invisible=invisible)


def render(image_id: str, terms: Sequence[MeshTerm | str], view: str, size: int = DEFAULT_SIZE
           ) -> tuple[np.ndarray, list[Region]]:
    """Render one synthetic radiograph.

    Args:
        image_id: the Open-i image id (the seed: same id, same picture).
        terms: the image's MeSH major terms (MeshTerm or raw strings); 'normal' draws no finding.
        view: 'frontal' (PA, patient's right on the image left) or 'lateral' (patient facing left).
        size: output width and height in pixels.

    Returns:
        (image (size, size) uint8 grayscale, regions of the drawn findings).
    """
    r = render_image(image_id, terms, view, size)
    return r.image, r.regions


def draw_anatomy(body: Body, frame: Frame, rng: np.random.Generator) -> Drawn:
    """The normal anatomy of `body.view`, drawn on a reduced-size canvas and brought to `frame.size`."""
    canvas = Canvas(anatomy_frame(frame))
    if body.view == "frontal":
        draw_frontal(body, canvas, rng)
    else:
        draw_lateral(body, canvas, rng)
    return canvas.drawn(frame.size)


def warm_up(size: int = DEFAULT_SIZE) -> None:
    """Build every cached texture and noise bank for `size` (call before forking worker processes)."""
    textures.warm_caches()
    _noise_bank(size)


# ---------------------------------------------------------------- density -> pixels

@lru_cache(maxsize=4)
def _noise_bank(size: int) -> np.ndarray:
    """Unit Gaussian noise, larger than one image; each image takes a crop at its own offset."""
    n = size + 97
    return rng_for("noise-bank", str(size)).standard_normal((n, n), dtype=np.float32)


LUT_STEPS = 2048          # density levels of the tone curve
LUT_MAX = 4.0             # densities above this are white anyway


def _tone_lut(body: Body) -> np.ndarray:
    """Density -> brightness (0..1) for one image: 1 - exp(-exposure * d), windowed, gamma."""
    d = np.linspace(0.0, LUT_MAX, LUT_STEPS, dtype=np.float64)
    b = 1.0 - np.exp(-d * body.exposure)
    p = np.clip((b - 0.02) / 0.93, 0.0, 1.0) ** body.gamma
    return (p * 255.0).astype(F32)


def to_uint8(density: np.ndarray, body: Body, rng: np.random.Generator) -> np.ndarray:
    """Attenuation -> brightness (bright bone, dark lung), exposure/contrast, detector noise, 8 bit."""
    size = density.shape[0]
    idx = density * F32((LUT_STEPS - 1) / LUT_MAX)
    np.clip(idx, 0, LUT_STEPS - 1, out=idx)
    p = _tone_lut(body)[idx.astype(np.int32)]              # (S, S) 0..255
    bank = _noise_bank(size)
    y, x = rng.integers(0, bank.shape[0] - size + 1, size=2)
    p += bank[y:y + size, x:x + size] * F32(255.0 * body.noise)
    p += F32(0.5)
    np.clip(p, 0, 255, out=p)
    return p.astype(np.uint8)
