"""Class activation maps: shape and range, the target they follow, the overlay PNG and the pointing game."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from models.cam import box_area_fraction, class_activation_map, overlay_png, peak, pointing_hit
from models.cascade import Cascade
from models.config import apply_overrides, load_config
from models.errors import ModelError
from models.vocab import WordVocabulary
from tests.models.conftest import ANNOTATIONS

LABELS = ["calcified granuloma", "cardiomegaly#1", "cardiomegaly#2", "normal"]


@pytest.fixture
def cascade() -> Cascade:
    cfg = apply_overrides(load_config("tiny"), ["cnn.arch=resnet", "cnn.width=0.125", "cnn.depth=1",
                                                "cnn.input_size=64", "cnn.resize=64", "lstm.word_dim=8",
                                                "gru.word_dim=8"])
    first = {label: label.split("#")[0] for label in LABELS}
    return Cascade.build(cfg, WordVocabulary.build(ANNOTATIONS), LABELS, first,
                         concept_names=["findings:opacity", "laterality:left"]).eval()


def test_map_has_the_image_shape_and_lies_in_0_1(cascade):
    image = np.random.default_rng(0).integers(0, 256, (80, 80), dtype=np.uint8)   # any size: resized inside
    for target in (None, "calcified granuloma", 1, "cardiomegaly", "findings:opacity"):
        cam = class_activation_map(cascade, image, target)
        assert cam.shape == (80, 80) and cam.dtype == np.float32
        assert cam.min() >= 0.0 and cam.max() <= 1.0
        assert cam.max() == pytest.approx(1.0) or cam.max() == 0.0


def test_map_is_the_heads_weights_on_the_last_maps(cascade, monkeypatch):
    """Hand-made maps: channel 0 lights the lower-left cell, channel 1 the upper-right one; each label's
    head reads one channel, so each label's map peaks where its channel does."""
    E = cascade.cnn.embedding_dim
    maps = torch.zeros(1, E, 4, 4)
    maps[0, 0, 3, 0] = 5.0                                             # lower left
    maps[0, 1, 0, 3] = 5.0                                             # upper right
    monkeypatch.setattr(cascade.cnn, "feature_maps", lambda x: maps.expand(len(x), -1, -1, -1))
    with torch.no_grad():
        cascade.cnn.fc.weight.zero_()
        cascade.cnn.fc.weight[0, 0] = 1.0                              # calcified granuloma <- channel 0
        cascade.cnn.fc.weight[2, 1] = 2.0                              # cardiomegaly#2 <- channel 1
    image = np.zeros((64, 64), np.uint8)
    y, x = peak(class_activation_map(cascade, image, "calcified granuloma"))
    assert y >= 48 and x < 16
    y, x = peak(class_activation_map(cascade, image, "cardiomegaly"))   # base label: its best cluster (#2)
    assert y < 16 and x >= 48
    y, x = peak(class_activation_map(cascade, image))                   # predicted: cardiomegaly#2 scores highest
    assert y < 16 and x >= 48


def test_unknown_targets_are_clear_errors(cascade):
    image = np.zeros((64, 64), np.uint8)
    with pytest.raises(ModelError, match="unknown label 'pneumonia'"):
        class_activation_map(cascade, image, "pneumonia")
    with pytest.raises(ModelError, match="unknown concept 'findings:mass'"):
        class_activation_map(cascade, image, "findings:mass")
    with pytest.raises(ModelError, match="out of range"):
        class_activation_map(cascade, image, 9)
    with pytest.raises(ModelError, match=r"\(H, W\) uint8"):
        class_activation_map(cascade, np.zeros((2, 64, 64), np.uint8))


def test_overlay_is_an_rgb_png_of_the_image_size_and_marks_the_peak():
    image = np.full((50, 60), 100, np.uint8)
    cam = np.zeros((50, 60), np.float32)
    cam[10, 20] = 1.0
    png = overlay_png(image, cam)
    picture = np.asarray(Image.open(io.BytesIO(png)))
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and picture.shape == (50, 60, 3)
    assert tuple(picture[10, 20]) == (255, 255, 255)                   # the peak's cross
    assert tuple(picture[40, 50]) == (100, 100, 100)                   # untouched where the map is 0
    with pytest.raises(ModelError, match="same shape"):
        overlay_png(image, np.zeros((10, 10)))


def test_pointing_game_hit_miss_and_scaling():
    cam = np.zeros((64, 64), np.float32)
    cam[16, 48] = 1.0                                                  # peak at (y=16, x=48) of 64
    box = [180, 50, 210, 80]                                           # x0, y0, x1, y1 in a 256 px frame
    assert pointing_hit(cam, [box], 256)                               # (48.5*4, 16.5*4) = (194, 66): inside
    assert not pointing_hit(cam, [[10, 10, 40, 40]], 256)
    assert not pointing_hit(cam, [[200, 70, 230, 90]], 256)            # just outside ...
    assert pointing_hit(cam, [[200, 70, 230, 90]], 256, tolerance=8)   # ... within a margin
    assert box_area_fraction([[0, 0, 128, 256]], 256) == pytest.approx(0.5)
    assert box_area_fraction([[0, 0, 128, 256], [0, 0, 128, 256]], 256) == pytest.approx(0.5)  # union


def test_chance_rate_grows_with_the_margin():
    assert box_area_fraction([[100, 100, 110, 110]], 256, tolerance=5) == pytest.approx(400 / 256 ** 2)
