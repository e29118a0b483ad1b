"""The synthetic radiograph renderer: determinism, findings inside their regions, sides, zones, severity, views."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from indexer.records import MeshTerm
from pipelines.synth.findings import CONCEPTS
from pipelines.synth.geometry import side_sign
from pipelines.synth.render import render, render_image
from pipelines.synth.terms import parse_finding
from tests.pipelines.synth_fixtures import IMAGE_ID, SIZE, centroid_x, centroid_y, diff, region_mask, render_pair


def png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


# ---------------------------------------------------------------- determinism

def test_same_id_gives_same_bytes_and_other_ids_differ():
    terms = ["Calcified Granuloma/lung/upper lobe/right", "Cardiomegaly/mild"]
    a, ra = render(IMAGE_ID, terms, "frontal", SIZE)
    b, rb = render(IMAGE_ID, terms, "frontal", SIZE)
    assert a.dtype == np.uint8 and a.shape == (SIZE, SIZE)
    assert png_bytes(a) == png_bytes(b)
    assert [r.box for r in ra] == [r.box for r in rb]
    c, _ = render("CXR9999_IM-0001-1001", terms, "frontal", SIZE)
    assert diff(a, c).mean() > 2


def test_rendering_does_not_depend_on_python_hash_seed():
    code = ("import hashlib,sys; from pipelines.synth.render import render; "
            f"img,_=render({IMAGE_ID!r}, ['Nodule/lung/upper lobe/left'], 'lateral', 96); "
            "sys.stdout.write(hashlib.sha256(img.tobytes()).hexdigest())")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    img, _ = render(IMAGE_ID, ["Nodule/lung/upper lobe/left"], "lateral", 96)
    assert out == hashlib.sha256(img.tobytes()).hexdigest()


def test_a_finding_does_not_move_the_anatomy_or_another_finding():
    one, r1 = render(IMAGE_ID, ["Nodule/lung/upper lobe/right"], "frontal", SIZE)
    two, r2 = render(IMAGE_ID, ["Nodule/lung/upper lobe/right", "Pleural Effusion/left/small"], "frontal", SIZE)
    assert r1[0].box == r2[0].box
    outside = ~region_mask([r for r in r2 if r.concept == "pleural effusion"], one.shape)
    assert diff(one, two)[outside].max() == 0


# ---------------------------------------------------------------- what can be drawn

# A real Open-i term for each of the 17 mined labels and each of the 40 most frequent head terms.
REAL_TERMS = [
    "Opacity/lung/base/left", "Cardiomegaly/mild", "Calcinosis/aorta", "Lung/hypoinflation",
    "Calcified Granuloma/lung/upper lobe/right", "Thoracic Vertebrae/degenerative/mild", "Lung/hyperdistention",
    "Spine/degenerative", "Catheters, Indwelling/right", "Granulomatous Disease", "Nodule/lung/lingula",
    "Surgical Instruments/mediastinum", "Scoliosis/thoracic vertebrae", "Osteophyte/thoracic vertebrae/multiple",
    "Spondylosis/thoracic vertebrae", "Fractures, Bone/ribs/left/healed", "Pulmonary Atelectasis/base/bilateral",
    "Cicatrix/lung/base/left", "Markings/bronchovascular", "Pleural Effusion/bilateral/small", "Aorta/tortuous",
    "Diaphragm/right/elevated", "Density/lung/base/left", "Atherosclerosis/aorta", "Airspace Disease/lung/base/left",
    "Deformity/thoracic vertebrae", "Aorta, Thoracic/tortuous/mild", "Costophrenic Angle/right/blunted",
    "Pulmonary Congestion", "Infiltrate/lung/lower lobe/right", "Emphysema", "Cardiac Shadow/enlarged",
    "Granuloma/lung/upper lobe/left", "Thickening/pleura/apex/bilateral", "Implanted Medical Device/left",
    "Pulmonary Disease, Chronic Obstructive", "Pulmonary Edema/interstitial/mild", "Hernia, Hiatal/large",
    "Technical Quality of Image Unsatisfactory", "Deformity/ribs/right/multiple",
]


def test_every_mined_label_and_frequent_open_i_term_is_drawn():
    for term in REAL_TERMS:
        r = render_image(IMAGE_ID, [term], "frontal", SIZE)
        assert r.drawn == [term] and r.regions and not r.not_drawn, term


def test_terms_are_read_for_finding_side_zone_and_severity():
    f = parse_finding("Calcified Granuloma/lung/upper lobe/right")
    assert (f.concept, f.sides, f.zone, f.site) == ("calcified granuloma", ("right",), "upper", "lung")
    assert parse_finding("Lung/hypoinflation/mild").concept == "hypoinflation"
    assert parse_finding("Lung/hypoinflation/mild").severity < parse_finding("Lung/hypoinflation/severe").severity
    assert parse_finding("Aorta/tortuous").concept == "tortuous aorta"
    d = parse_finding("Diaphragm/right/elevated")
    assert (d.concept, d.sides) == ("elevated diaphragm", ("right",))
    assert parse_finding("Thoracic Vertebrae/degenerative").concept == "degenerative spine"
    assert parse_finding("Spine/degenerative").concept == "degenerative spine"
    e = parse_finding("Pleural Effusion/bilateral/small")
    assert (e.concept, e.sides, e.severity_word) == ("pleural effusion", ("right", "left"), "small")
    assert parse_finding("Opacity/lung/lingula").sides == ("left",)          # the lingula is left-sided
    assert parse_finding("Opacity/lung/middle lobe").sides == ("right",)     # the middle lobe is right-sided
    assert parse_finding("Deformity/ribs/right").concept == "bone deformity"
    assert parse_finding("normal") is None and parse_finding("Frobnication/lung") is None


# ---------------------------------------------------------------- every concept draws inside its region

CASES = [(name, view) for name, c in sorted(CONCEPTS.items()) for view in c.views]


@pytest.mark.parametrize("name,view", CASES, ids=[f"{n}-{v}" for n, v in CASES])
def test_each_concept_changes_pixels_inside_its_region_and_barely_outside(name, view):
    concept = CONCEPTS[name]
    finding = parse_finding(concept.example)
    assert finding is not None and finding.concept == name, f"example {concept.example!r} does not parse to {name}"
    base, img, regions = render_pair(concept.example, view)
    assert regions, f"{concept.example} drew no region in the {view} view"
    assert all(r.concept == name and r.term == concept.example for r in regions)
    d = diff(base, img)
    inside = region_mask(regions, d.shape)
    assert d[inside].max() >= 6, f"{name}: no visible change inside its region"
    total = d.sum()
    assert d[~inside].sum() <= 0.05 * total, f"{name}: {d[~inside].sum() / total:.0%} of the change is outside"


def test_region_masks_fit_their_boxes():
    _, regions = render(IMAGE_ID, ["Calcified Granuloma/lung/upper lobe/right", "Opacity/lung/base/left"],
                        "frontal", SIZE)
    with_masks = [r for r in regions if r.mask is not None]
    assert with_masks
    for r in with_masks:
        x0, y0, x1, y1 = r.box
        assert r.mask.shape == (y1 - y0, x1 - x0) and r.mask.any()
        assert r.mask[0].any() and r.mask[-1].any() and r.mask[:, 0].any() and r.mask[:, -1].any()


# ---------------------------------------------------------------- sides and zones

@pytest.mark.parametrize("image_id", [IMAGE_ID, "CXR2001_IM-0640-1001", "CXR77_IM-2300-1001"])
def test_patients_right_is_drawn_on_the_image_left_in_frontal_views(image_id):
    """Radiological convention: a PA film shows the patient's right on the viewer's left."""
    assert side_sign("right") == -1 and side_sign("left") == 1
    for term, left_half in (("Nodule/lung/upper lobe/right", True), ("Nodule/lung/upper lobe/left", False),
                            ("Pleural Effusion/right/small", True), ("Pleural Effusion/left/small", False)):
        base, img, regions = render_pair(term, image_id=image_id)
        cx = centroid_x(diff(base, img))
        box_cx = np.mean([(r.box[0] + r.box[2]) / 2 for r in regions])
        if left_half:
            assert cx < SIZE / 2 and box_cx < SIZE / 2, term
        else:
            assert cx > SIZE / 2 and box_cx > SIZE / 2, term


@pytest.mark.parametrize("image_id", [IMAGE_ID, "CXR2001_IM-0640-1001"])
def test_upper_lobe_findings_land_above_lower_lobe_ones(image_id):
    for view in ("frontal", "lateral"):
        ys = {}
        for zone in ("upper lobe", "lower lobe"):
            base, img, _ = render_pair(f"Nodule/lung/{zone}/right", view, image_id=image_id)
            ys[zone] = centroid_y(diff(base, img))
        assert ys["upper lobe"] < ys["lower lobe"] - 0.12 * SIZE, (view, ys)
    base, img, _ = render_pair("Cicatrix/lung/apex/left", image_id=image_id)
    assert centroid_y(diff(base, img)) < 0.4 * SIZE


def test_bilateral_draws_both_sides():
    base, img, regions = render_pair("Pleural Effusion/bilateral/small")
    centres = sorted((r.box[0] + r.box[2]) / 2 for r in regions)
    assert len(regions) == 2 and centres[0] < SIZE / 2 < centres[1]


# ---------------------------------------------------------------- severity

def _area(term: str, view: str = "frontal") -> int:
    base, img, _ = render_pair(term, view)
    return int((diff(base, img) > 4).sum())


def test_severity_scales_the_finding():
    assert _area("Pleural Effusion/right/large") > 1.5 * _area("Pleural Effusion/right/small")
    assert _area("Cardiomegaly/severe") > 1.3 * _area("Cardiomegaly/mild")
    assert _area("Opacity/lung/upper lobe/right/severe") > _area("Opacity/lung/upper lobe/right/mild")
    mild = render_image(IMAGE_ID, ["Cardiomegaly/mild"], "frontal", SIZE).regions[0].box
    severe = render_image(IMAGE_ID, ["Cardiomegaly/severe"], "frontal", SIZE).regions[0].box
    assert severe[2] - severe[0] > mild[2] - mild[0]


def test_multiple_and_scattered_draw_more_lesions():
    one = render_image(IMAGE_ID, ["Calcified Granuloma/lung/upper lobe/right"], "frontal", SIZE).regions
    many = render_image(IMAGE_ID, ["Calcified Granuloma/scattered/multiple"], "frontal", SIZE).regions
    assert len(one) == 1 and len(many) >= 3


# ---------------------------------------------------------------- views, normal, unknown terms

def test_lateral_differs_from_frontal():
    frontal, _ = render(IMAGE_ID, [], "frontal", SIZE)
    lateral, _ = render(IMAGE_ID, [], "lateral", SIZE)
    assert diff(frontal, lateral).mean() > 15
    # the frontal view is roughly left-right symmetric about the spine, the lateral one is not
    def asymmetry(img):
        return diff(img, img[:, ::-1]).mean()
    assert asymmetry(lateral) > 1.2 * asymmetry(frontal)


def test_normal_annotation_draws_no_finding():
    plain, _ = render(IMAGE_ID, [], "frontal", SIZE)
    for terms in (["normal"], ["No Indexing"], [MeshTerm.parse("normal")]):
        r = render_image(IMAGE_ID, terms, "frontal", SIZE)
        assert r.regions == [] and r.not_drawn == [] and r.drawn == []
        assert np.array_equal(r.image, plain)


def test_unknown_terms_are_not_drawn_and_are_reported():
    plain, _ = render(IMAGE_ID, [], "frontal", SIZE)
    r = render_image(IMAGE_ID, ["Frobnication/lung/upper lobe/right", "Abdomen/enlarged/mild", "normal"],
                     "frontal", SIZE)
    assert r.not_drawn == ["frobnication/lung/upper lobe/right", "abdomen/enlarged/mild"]
    assert r.regions == [] and np.array_equal(r.image, plain)


def test_many_findings_that_raise_the_diaphragm_still_render_in_the_lower_zones():
    # a real annotation (CXR2676): hypoinflation and an elevated dome leave little room for 'base'
    terms = ["Tube, Inserted", "Lung/hypoinflation", "Cardiac Shadow/enlarged", "Atherosclerosis/aorta, thoracic",
             "Diaphragm/right/elevated", "Diaphragm/left/obscured", "Pulmonary Atelectasis/base/bilateral",
             "Cardiomegaly"]
    for view in ("frontal", "lateral"):
        r = render_image("CXR2676_IM-1151-2001", terms, view, SIZE)
        assert "Pulmonary Atelectasis/base/bilateral" in r.drawn and not r.not_drawn


def test_bad_arguments_are_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="frontal"):
        render(IMAGE_ID, [], "oblique", SIZE)
    with pytest.raises(ValueError, match="at least 64"):
        render(IMAGE_ID, [], "frontal", 16)


def test_other_sizes_render_the_same_picture_scaled():
    small, rs = render(IMAGE_ID, ["Nodule/lung/upper lobe/right"], "frontal", 96)
    big, rb = render(IMAGE_ID, ["Nodule/lung/upper lobe/right"], "frontal", 192)
    assert big.shape == (192, 192)
    shrunk = np.asarray(Image.fromarray(big).resize((96, 96), Image.BILINEAR))
    assert diff(shrunk, small).mean() < 12
    assert abs(rb[0].box[0] / 2 - rs[0].box[0]) <= 3
