"""Uploaded radiographs: type sniffed from the bytes, caps on bytes and pixels, a temp file deleted after use,
decoded to grey.

PNG and JPEG go through `models.preprocess.load_radiograph` (16-bit rescaled; RGB/RGBA whose
channels are equal read as grey; colour refused). DICOM goes through pydicom: the VOI LUT or
window centre/width is applied (`apply_voi_lut`), MONOCHROME1 is inverted so bone is bright,
multi-frame files use their first frame.
"""
from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search_web.errors import UploadRejected, UploadTooLarge

KINDS = ("png", "jpeg", "dicom")


def sniff(head: bytes) -> str | None:
    """'png', 'jpeg' or 'dicom' from the first bytes of a file (never from its name or Content-Type)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(head) >= 132 and head[128:132] == b"DICM":
        return "dicom"
    return None


@dataclass
class DecodedUpload:
    """A decoded upload: the grey image and what it was."""

    grey: np.ndarray      # (H, W) uint8
    kind: str             # png | jpeg | dicom
    width: int
    height: int
    bytes: int


@contextlib.contextmanager
def temp_upload(storage, upload_dir: Path, max_bytes: int) -> Iterator[Path]:
    """Write a werkzeug FileStorage into a private temp file (at most max_bytes) and delete it afterwards."""
    upload_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=".bin", dir=upload_dir)
    path = Path(name)
    try:
        written = 0
        with os.fdopen(fd, "wb") as out:
            while True:
                block = storage.stream.read(1 << 16)
                if not block:
                    break
                written += len(block)
                if written > max_bytes:
                    raise UploadTooLarge(f"the upload is larger than {max_bytes:,} bytes")
                out.write(block)
        if written == 0:
            raise UploadRejected("the uploaded file is empty")
        yield path
    finally:
        path.unlink(missing_ok=True)


def decode(path: Path, max_pixels: int) -> DecodedUpload:
    """Decode an uploaded file into a grey uint8 image, refusing unknown types and pixel bombs."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(132)
    kind = sniff(head)
    if kind is None:
        raise UploadRejected("the file is not a PNG, JPEG or DICOM image (its content says otherwise, whatever "
                             "its name); upload a radiograph in one of those formats")
    grey = _decode_dicom(path, max_pixels) if kind == "dicom" else _decode_raster(path, max_pixels)
    return DecodedUpload(grey, kind, int(grey.shape[1]), int(grey.shape[0]), size)


def _decode_raster(path: Path, max_pixels: int) -> np.ndarray:
    from models.errors import UnusableImageError
    from models.preprocess import load_radiograph

    try:
        return load_radiograph(path, max_pixels=max_pixels)
    except UnusableImageError as e:
        raise _rejection(e.reason, str(e), max_pixels) from e


def _rejection(reason: str, message: str, max_pixels: int) -> UploadRejected:
    if reason == "too_large" or "DecompressionBomb" in message:
        return UploadTooLarge(f"the image has too many pixels ({message}); at most {max_pixels:,} are allowed")
    if reason == "wrong_mode":
        return UploadRejected(f"the image is not greyscale ({message}); upload the radiograph as a grey image")
    if reason == "too_small":
        return UploadRejected(f"the image is too small ({message})")
    return UploadRejected(f"the image cannot be read ({message})")


def _decode_dicom(path: Path, max_pixels: int) -> np.ndarray:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, force=False)
    except (InvalidDicomError, OSError, ValueError, EOFError) as e:
        raise UploadRejected(f"the DICOM file cannot be read: {type(e).__name__}: {e}") from e
    rows, cols = int(getattr(ds, "Rows", 0) or 0), int(getattr(ds, "Columns", 0) or 0)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    if "PixelData" not in ds or rows == 0 or cols == 0:
        raise UploadRejected("the DICOM file has no image (no pixel data)")
    if rows * cols > max_pixels or rows * cols * frames > 4 * max_pixels:
        raise UploadTooLarge(f"the DICOM image has too many pixels ({cols}x{rows}x{frames} frames); "
                             f"at most {max_pixels:,} per frame are allowed")
    try:
        pixels = ds.pixel_array
    except Exception as e:  # noqa: BLE001 - pydicom raises many types for unsupported transfer syntaxes
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        raise UploadRejected(f"the DICOM pixel data cannot be decoded (transfer syntax {syntax}): "
                             f"{type(e).__name__}: {e}") from e
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    if frames > 1:
        pixels = pixels[0]
    if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") or pixels.ndim == 3:
        colour = pixels.astype(np.int32)
        if colour.ndim != 3 or np.abs(colour - colour[..., :1]).mean() > 2.0:
            raise UploadRejected(f"the DICOM image is in colour ({photometric}); a radiograph must be greyscale")
        pixels = pixels[..., 0]
        photometric = "MONOCHROME2"
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    values = apply_modality_lut(pixels, ds)
    values = apply_voi_lut(values, ds, index=0) if _has_voi(ds) else values
    values = np.asarray(values, dtype=np.float64)
    if not np.isfinite(values).all():
        raise UploadRejected("the DICOM image has non-finite pixel values")
    low, high = float(values.min()), float(values.max())
    grey = np.zeros(values.shape, np.uint8) if high <= low else np.round(255.0 * (values - low) / (high - low))
    grey = np.asarray(grey, dtype=np.uint8)
    if photometric == "MONOCHROME1":  # low values are white: invert so bone is bright as in MONOCHROME2
        grey = 255 - grey
    from models.preprocess import MIN_SIDE

    if min(grey.shape) < MIN_SIDE:
        raise UploadRejected(f"the image is too small ({grey.shape[1]}x{grey.shape[0]}, need sides >= {MIN_SIDE})")
    return np.ascontiguousarray(grey)


def _has_voi(ds) -> bool:
    return "VOILUTSequence" in ds or ("WindowCenter" in ds and "WindowWidth" in ds)


def data_url_png(grey: np.ndarray, max_side: int = 512) -> str:
    """A small PNG data: URL of the upload, so the result page can show it without storing the file."""
    import base64

    from PIL import Image

    img = Image.fromarray(grey)
    img.thumbnail((max_side, max_side), Image.BILINEAR)
    out = io.BytesIO()
    img.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")
