"""Reading radiographs safely and building CNN input."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from models.config import CNNConfig
from models.errors import UnusableImageError
from models.preprocess import load_radiograph, prepare, stored_size, to_input


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_grey_8_and_16_bit_and_grey_rgb_are_read(tmp_path):
    grey = (np.arange(100 * 80) % 251).astype(np.uint8).reshape(100, 80)
    assert np.array_equal(load_radiograph(png(Image.fromarray(grey))), grey)
    wide = (np.linspace(1000, 60000, 100 * 80)).astype(np.uint16).reshape(100, 80)
    out = load_radiograph(png(Image.fromarray(wide)))
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255
    rgb = Image.merge("RGB", [Image.fromarray(grey)] * 3)
    assert np.array_equal(load_radiograph(png(rgb)), grey)
    path = tmp_path / "x.png"
    path.write_bytes(png(Image.fromarray(grey)))
    assert load_radiograph(path).shape == (100, 80)


@pytest.mark.parametrize("data, reason", [
    (b"not an image at all", "unreadable"),
    (png(Image.fromarray(np.random.default_rng(0).integers(0, 256, (100, 100), dtype=np.uint8)))[:400],
     "unreadable"),                                                        # truncated
    (png(Image.new("RGB", (100, 100), (200, 10, 10))), "wrong_mode"),      # colour
    (png(Image.new("P", (100, 100))), "wrong_mode"),                       # palette
    (png(Image.new("1", (100, 100))), "wrong_mode"),                       # bilevel
    (png(Image.new("L", (20, 300))), "too_small"),
])
def test_unusable_inputs_name_their_reason(data, reason):
    with pytest.raises(UnusableImageError) as err:
        load_radiograph(data)
    assert err.value.reason == reason


def test_huge_and_missing(tmp_path):
    with pytest.raises(UnusableImageError) as err:
        load_radiograph(png(Image.new("L", (3000, 3000))), max_pixels=1_000_000)
    assert err.value.reason == "too_large"
    with pytest.raises(UnusableImageError) as err:
        load_radiograph(tmp_path / "absent.png")
    assert err.value.reason == "missing"


def test_no_crop_and_random_crop_inputs():
    none = CNNConfig(resize=72, input_size=64, crop="none")
    crop = CNNConfig(resize=72, input_size=64, crop="random")
    assert stored_size(none) == 64 and stored_size(crop) == 72
    img = np.random.default_rng(0).integers(0, 256, (130, 100), dtype=np.uint8)
    stored = prepare(img, crop)
    assert stored.shape == (72, 72)
    batch = np.stack([stored, stored])
    x = to_input(batch, crop, train=True, generator=torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 64, 64)
    centre = to_input(batch, crop)
    assert torch.equal(centre[0], to_input(stored[4:68, 4:68][None], none)[0])
    assert abs(float(to_input(np.full((1, 64, 64), 128, np.uint8), none).mean()) - (128 / 255 - 0.5) / 0.25) < 1e-5


def test_shift_and_intensity_augmentation_move_and_rescale_without_flipping():
    from models.config import CNNConfig
    from models.preprocess import random_shift

    cfg = CNNConfig(arch="nin", input_size=32, resize=32)
    image = np.zeros((1, 32, 32), np.uint8)
    image[0, 8, 4] = 255                                              # a bright dot on the image's left
    gen = torch.Generator().manual_seed(0)
    shifted = random_shift(torch.as_tensor(image).float(), 3, gen)
    y, x = divmod(int(shifted[0].argmax()), 32)
    assert abs(y - 8) <= 3 and abs(x - 4) <= 3                         # moved a little, still on the left
    plain = to_input(image, cfg, train=True, generator=torch.Generator().manual_seed(1))
    jitter = to_input(np.full((4, 32, 32), 128, np.uint8), cfg, train=True,
                      generator=torch.Generator().manual_seed(1), intensity=0.3)
    assert plain.shape == jitter.shape[1:] or plain.shape == (1, 1, 32, 32)
    assert len({round(float(v), 4) for v in jitter.mean(dim=(1, 2, 3))}) > 1   # per-image brightness differs
    same = to_input(image, cfg, train=False, shift=3, intensity=0.3)           # no augmentation at eval time
    assert torch.equal(same, to_input(image, cfg))
