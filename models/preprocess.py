"""Reading a radiograph safely and turning it into CNN input (shared by training, CLI and web)."""
from __future__ import annotations

import io
import os
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from models.config import CNNConfig
from models.errors import UnusableImageError

MIN_SIDE = 64                 # smaller images are not radiographs we can read
MAX_PIXELS = 60_000_000       # larger ones (e.g. 8000 x 8000) are refused before decoding
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25   # fixed input normalisation of [0, 1] grey values
GREY_MODES = ("L", "I", "I;16", "I;16B", "I;16L", "F", "LA")

Source = str | os.PathLike | bytes | BinaryIO


def load_radiograph(source: Source, min_side: int = MIN_SIDE, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode a grey radiograph into a (H, W) uint8 array, or raise UnusableImageError.

    Reasons: `missing` (no such file), `unreadable` (corrupt or not an image), `wrong_mode` (colour, palette,
    bilevel or CMYK), `too_small` (a side < min_side), `too_large` (> max_pixels pixels).
    16-bit and float images are rescaled min-max to 8 bits; RGB(A) files whose channels
    are equal (grey saved as colour) are accepted.
    """
    if isinstance(source, (str, os.PathLike)) and not os.path.isfile(source):
        raise UnusableImageError("missing", f"no file {os.fspath(source)}")
    try:
        handle = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(handle) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise UnusableImageError("too_large", f"{width}x{height} > {max_pixels} pixels")
            if min(width, height) < min_side:
                raise UnusableImageError("too_small", f"{width}x{height}, need sides >= {min_side}")
            mode = img.mode
            if mode not in GREY_MODES + ("RGB", "RGBA"):
                raise UnusableImageError("wrong_mode", f"mode {mode}, need greyscale")
            img.load()
            array = np.asarray(img)
    except UnusableImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise UnusableImageError("unreadable", f"{type(e).__name__}: {e}") from e
    return _to_grey_uint8(array, mode)


def _to_grey_uint8(array: np.ndarray, mode: str) -> np.ndarray:
    if mode in ("RGB", "RGBA", "LA"):
        if mode == "LA":
            array = array[..., :1]
        colour = array[..., :3].astype(np.int16)
        if mode != "LA" and np.abs(colour - colour[..., :1]).mean() > 2.0:
            raise UnusableImageError("wrong_mode", f"colour image ({mode}), need greyscale")
        array = array[..., 0]
    if array.dtype == np.uint8:
        return np.ascontiguousarray(array)
    array = array.astype(np.float64)
    low, high = float(array.min()), float(array.max())
    if not np.isfinite([low, high]).all():
        raise UnusableImageError("unreadable", "non-finite pixel values")
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    return np.round(255.0 * (array - low) / (high - low)).astype(np.uint8)


def stored_size(cfg: CNNConfig) -> int:
    """Side of the square image kept in memory: `resize` for random crops, else `input_size`."""
    return cfg.resize if cfg.crop == "random" else cfg.input_size


def resize_square(grey: np.ndarray, size: int) -> np.ndarray:
    """(H, W) uint8 -> (size, size) uint8, bilinear (aspect ratio not kept, as in the paper)."""
    if grey.shape == (size, size):
        return grey
    return np.array(Image.fromarray(grey).resize((size, size), Image.BILINEAR))


def prepare(source: Source | np.ndarray, cfg: CNNConfig) -> np.ndarray:
    """Load (unless already an array) and resize to the stored size: -> (S, S) uint8."""
    grey = source if isinstance(source, np.ndarray) else load_radiograph(source)
    return resize_square(grey, stored_size(cfg))


def to_input(batch: np.ndarray | torch.Tensor, cfg: CNNConfig, train: bool = False,
             generator: torch.Generator | None = None, shift: int = 0, intensity: float = 0.0) -> torch.Tensor:
    """(B, S, S) uint8 stored images -> (B, C, input_size, input_size) normalised float.

    crop='random': random crops when training, the centre crop otherwise; crop='none':
    the whole image (the paper's no-crop variant). No flips: laterality is in the labels.
    When training, `shift` > 0 translates each image by up to +-shift pixels (edges repeated)
    and `intensity` > 0 jitters its contrast and brightness by up to +-intensity (exposure varies).
    """
    x = torch.as_tensor(batch if isinstance(batch, torch.Tensor) or batch.flags.writeable else batch.copy())
    if x.dim() == 2:
        x = x.unsqueeze(0)
    B, S, _ = x.shape
    size = cfg.input_size
    if S > size:
        if train:   # an independent crop per image
            offsets = torch.randint(0, S - size + 1, (B, 2), generator=generator).tolist()
            x = torch.stack([x[i, top:top + size, left:left + size] for i, (top, left) in enumerate(offsets)])
        else:
            top = (S - size) // 2
            x = x[:, top:top + size, top:top + size]
    x = x.float().div(255.0)                                                # (B, size, size) in [0, 1]
    if train and shift > 0:
        x = random_shift(x, shift, generator)
    if train and intensity > 0:
        gain = 1.0 + (torch.rand(B, 1, 1, generator=generator) * 2 - 1) * intensity   # contrast
        bias = (torch.rand(B, 1, 1, generator=generator) * 2 - 1) * intensity * 0.5   # brightness
        mean = x.mean(dim=(1, 2), keepdim=True)
        x = ((x - mean) * gain + mean + bias).clamp(0.0, 1.0)
    x = x.sub(PIXEL_MEAN).div(PIXEL_STD).unsqueeze(1)                      # (B, 1, size, size)
    if cfg.in_channels == 3:
        x = x.expand(-1, 3, -1, -1)
    return x.contiguous()


def random_shift(x: torch.Tensor, shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Translate each (S, S) image of (B, S, S) by its own (dy, dx) in [-shift, shift], repeating the edges."""
    B, S, _ = x.shape
    padded = torch.nn.functional.pad(x.unsqueeze(1), (shift, shift, shift, shift), mode="replicate")[:, 0]
    offsets = torch.randint(0, 2 * shift + 1, (B, 2), generator=generator).tolist()   # (B, 2) top-left corners
    return torch.stack([padded[i, top:top + S, left:left + S] for i, (top, left) in enumerate(offsets)])
