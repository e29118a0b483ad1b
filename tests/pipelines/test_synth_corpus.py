"""The synthetic corpus on disk: CLI end to end, skipping done work, marker, regions, the image loader."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pipelines.cli import main
from pipelines.manifest import ManifestEntry, write_manifest
from pipelines.sources.images import MARKER_NAME, ImageLoadError, image_path, is_synthetic, list_image_ids, load_image
from pipelines.synth.corpus import (
    REGIONS_NAME,
    CorpusItem,
    SynthError,
    items_from_manifest,
    read_regions,
    render_corpus,
)
from pipelines.synth.render import GENERATOR_VERSION, render

ITEMS = [
    CorpusItem("CXR1_IM-0001-1001", ("Calcified Granuloma/lung/upper lobe/right",), "frontal"),
    CorpusItem("CXR1_IM-0001-2001", ("Calcified Granuloma/lung/upper lobe/right",), "lateral"),
    CorpusItem("CXR2_IM-0002-1001", ("normal",), "frontal"),
    CorpusItem("CXR3_IM-0003-1001", ("Frobnication/lung", "Cardiomegaly/mild"), "frontal"),
]


def test_cli_synth_end_to_end_then_skips_then_contact_sheet(tmp_path, make_reports, capsys, monkeypatch):
    monkeypatch.setenv("CXRSEARCH_DATA", str(tmp_path / "data"))
    reports = str(make_reports())
    # the fixture reports 1-10 are normal, 11-14 have calcified granulomas (2 images each)
    assert main(["data", "synth", "--reports", reports, "--limit", "28", "--size", "128", "--workers", "2",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "data" / "images" / "synthetic" / "NLMCXR_png"
    assert "rendered 28, skipped 0" in out and "synthetic stand-ins" in out
    ids = list_image_ids(folder)
    assert len(ids) == 28 and ids[0].startswith("CXR")
    img = load_image(image_path(folder, ids[0]))
    assert img.dtype == np.uint8 and img.shape == (128, 128)
    assert is_synthetic(folder)
    marker = json.loads((folder / MARKER_NAME).read_text())
    assert marker["synthetic"] is True and marker["count"] == 28 and marker["size"] == 128
    assert marker["version"] == GENERATOR_VERSION and "not radiographs" in marker["statement"]
    regions = read_regions(folder)
    assert set(regions) == set(ids)
    term = "Calcified Granuloma/lung/upper lobe/right"
    right_upper = [r for rs in regions.values() for r in rs
                   if r.term == term and regions_view(folder, r.image_id) == "frontal"]
    assert right_upper and all(r.box[2] <= 64 for r in right_upper)   # patient's right: the image's left half

    # nothing to do the second time
    assert main(["data", "synth", "--reports", reports, "--limit", "28", "--size", "128", "--no-progress"]) == 0
    assert "rendered 0, skipped 28" in capsys.readouterr().out

    sheet = tmp_path / "sheet.png"
    assert main(["data", "contact-sheet", "-n", "6", "--columns", "3", "--tile", "96", "--boxes",
                 "--term", "granuloma", "--out", str(sheet)]) == 0
    assert "contact sheet" in capsys.readouterr().out
    with Image.open(sheet) as im:
        assert im.mode == "RGB" and im.width == 3 * 96 and im.height > 96


def regions_view(folder, image_id: str) -> str:
    from pipelines.synth.corpus import read_records

    return read_records(folder)[image_id]["view"]


def test_corpus_counts_unknown_terms_and_writes_one_record_per_image(tmp_path):
    summary = render_corpus(ITEMS, tmp_path / "png", size=96, workers=1, progress=False)
    assert summary.rendered == 4 and summary.skipped == 0 and not summary.failed
    assert summary.not_drawn == {"frobnication/lung": 1}
    assert "frobnication/lung" in summary.format()
    lines = (tmp_path / "png" / REGIONS_NAME).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["image_id"] for r in records] == sorted(i.image_id for i in ITEMS)
    normal = next(r for r in records if r["image_id"] == "CXR2_IM-0002-1001")
    assert normal["regions"] == [] and normal["terms"] == ["normal"]


def test_corpus_png_is_exactly_the_rendered_image(tmp_path):
    render_corpus(ITEMS[:1], tmp_path, size=96, workers=1, progress=False)
    item = ITEMS[0]
    expected, _ = render(item.image_id, item.terms, item.view, 96)
    assert np.array_equal(load_image(image_path(tmp_path, item.image_id)), expected)


def test_changed_size_or_terms_render_again_and_force_renders_all(tmp_path):
    render_corpus(ITEMS[:2], tmp_path, size=96, workers=1, progress=False)
    again = render_corpus(ITEMS[:2], tmp_path, size=96, workers=1, progress=False)
    assert (again.rendered, again.skipped) == (0, 2)
    bigger = render_corpus(ITEMS[:2], tmp_path, size=112, workers=1, progress=False)
    assert bigger.rendered == 2 and load_image(image_path(tmp_path, ITEMS[0].image_id)).shape == (112, 112)
    changed = [CorpusItem(ITEMS[0].image_id, ("Pleural Effusion/left",), "frontal"), ITEMS[1]]
    assert render_corpus(changed, tmp_path, size=112, workers=1, progress=False).rendered == 1
    assert render_corpus(changed, tmp_path, size=112, workers=1, progress=False, force=True).rendered == 2
    assert len((tmp_path / REGIONS_NAME).read_text().splitlines()) == 2


def test_refuses_to_write_into_a_folder_of_real_images(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "CXR1_IM-0001-1001.png")
    with pytest.raises(SynthError, match="real image archive"):
        render_corpus(ITEMS[:1], tmp_path, size=96, workers=1, progress=False)
    assert not is_synthetic(tmp_path)


def test_items_from_manifest(tmp_path):
    path = tmp_path / "manifest.jsonl"
    write_manifest(path, [ManifestEntry("CXR5_IM-0005-1001", "5", "train", "nodule", "nodule", ("nodule", "lung"),
                                        "lateral", ("Nodule/lung/upper lobe/left",))])
    assert items_from_manifest(path) == [CorpusItem("CXR5_IM-0005-1001", ("Nodule/lung/upper lobe/left",), "lateral")]


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB"])
def test_load_image_reads_real_png_modes_as_grayscale_uint8(tmp_path, mode):
    gray = (np.arange(64 * 48) % 256).astype(np.uint8).reshape(48, 64)
    if mode == "L":
        Image.fromarray(gray).save(tmp_path / "a.png")
    elif mode == "I;16":
        Image.fromarray(gray.astype(np.uint16) * 257).save(tmp_path / "a.png")
    else:
        Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "a.png")
    img = load_image(tmp_path / "a.png")
    assert img.dtype == np.uint8 and img.shape == (48, 64)
    assert np.abs(img.astype(int) - gray).max() <= 1


def test_load_image_names_a_missing_or_broken_file(tmp_path):
    with pytest.raises(ImageLoadError, match="no such image"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ImageLoadError, match="bad.png"):
        load_image(tmp_path / "bad.png")


def test_is_synthetic_needs_a_marker_that_says_so(tmp_path):
    assert not is_synthetic(tmp_path)
    (tmp_path / MARKER_NAME).write_text('{"synthetic": false}')
    assert not is_synthetic(tmp_path)
    (tmp_path / MARKER_NAME).write_text("{broken")
    assert not is_synthetic(tmp_path)
    (tmp_path / MARKER_NAME).write_text('{"synthetic": true}')
    assert is_synthetic(tmp_path)
