"""The renderer's pictures pinned by hash: any change to the synthetic corpus's pixels or regions is caught.

The synthetic corpus must not change without re-measuring everything measured on it. If one of these
fails after a deliberate change to the pictures, bump `GENERATOR_VERSION` in `pipelines/synth/render.py`
(the corpus then renders again), re-pin the hashes below and re-run the measurements. If it fails with
no change to the renderer, look first at the numpy and Pillow versions (float32 maths and resampling).
The pins held across numpy's CPU dispatch levels X86_V2 and X86_V3.
"""
from __future__ import annotations

import hashlib
import json

import pytest

from pipelines.synth.render import GENERATOR_VERSION, render_image

# (case, image id, terms, view, size): both views, both anatomy paths (drawn at full size up to 128 px,
# at half size and upsampled above), modifiers, overlays, devices, pleura, an unknown term.
CASES = [
    ("frontal-normal-96", "CXR1_1_IM-0001-3001", ("normal",), "frontal", 96),
    ("frontal-heart-fluid-line-160", "CXR2_IM-0652-1001",
     ("Cardiomegaly/moderate", "Pleural Effusion/right/small", "Catheters, Indwelling/right",
      "Calcified Granuloma/lung/upper lobe/left"), "frontal", 160),
    ("frontal-spine-bones-device-128", "CXR3_IM-1384-1001",
     ("Scoliosis/thoracic vertebrae/right/severe", "Deformity/thoracic vertebrae/severe", "Fractures, Bone/ribs/left",
      "Implanted Medical Device/left", "Lung/hyperdistention"), "frontal", 128),
    ("lateral-nodule-spine-air-128", "CXR4_IM-2050-2001",
     ("Nodule/lung/upper lobe/left", "Thoracic Vertebrae/degenerative/severe", "Pneumothorax/right"), "lateral", 128),
    ("lateral-opacity-hernia-kyphosis-192", "CXR5_IM-2117-2001",
     ("Opacity/lung/base/left/patchy", "Hernia, Hiatal/large", "Kyphosis/severe", "Pulmonary Congestion",
      "Frobnication/lung"), "lateral", 192),
]

# case -> (sha256 of the pixels, sha256 of the regions as regions.jsonl records them), first 32 hex digits
PINNED = {
    "frontal-normal-96": ("bc68f0520ebd1a7a0362999de57ca2f6", "a683096011db3975a1e401e33b0047d1"),
    "frontal-heart-fluid-line-160": ("57ce08108c8d03dd315a1a22e985fc4b", "0e822800a324c415b9ed17df8c8bdb2b"),
    "frontal-spine-bones-device-128": ("629649e64369da874f8a0c8110657680", "85ac4155c0672cc9b353f7a8e349f2ac"),
    "lateral-nodule-spine-air-128": ("80c6a15e0f9291babe2e475f0a5580a8", "66a10b97d1cb24d8dbece61299bcc90e"),
    "lateral-opacity-hernia-kyphosis-192": ("8842544485fb191b2036876375d5bd66", "78a8487686eafbaecfea5d2438072e22"),
}


def _digest(text: bytes) -> str:
    return hashlib.sha256(text).hexdigest()[:32]


def test_the_pins_belong_to_this_generator_version():
    assert GENERATOR_VERSION == "1.0", "re-pin the hashes below for the new generator version"
    assert set(PINNED) == {c[0] for c in CASES}


@pytest.mark.parametrize("case,image_id,terms,view,size", CASES, ids=[c[0] for c in CASES])
def test_rendered_pixels_and_regions_are_pinned(case, image_id, terms, view, size):
    r = render_image(image_id, terms, view, size)
    assert r.image.shape == (size, size)
    regions = [[g.concept, g.term, list(g.box)] for g in r.regions] + [r.not_drawn, r.invisible]
    got = (_digest(r.image.tobytes()), _digest(json.dumps(regions).encode("utf-8")))
    assert got == PINNED[case], (f"{case}: the renderer's output changed (pixels, regions) = {got}; "
                                 "bump GENERATOR_VERSION and re-pin if that was meant (see this module's docstring)")
