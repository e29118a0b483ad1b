"""A contact sheet: a grid of radiographs with their annotations as captions (and drawn regions), to look at."""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pipelines.sources.images import image_path, load_image

CAPTION_LINES = 3


@dataclass(frozen=True)
class Tile:
    """One cell of the sheet: an image id, its caption and optional region boxes (pixels of the image)."""

    image_id: str
    caption: str
    boxes: tuple[tuple[int, int, int, int], ...] = ()


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


def contact_sheet(folder: str | Path, tiles: Sequence[Tile], columns: int = 4, tile_size: int = 256,
                  title: str | None = None) -> Image.Image:
    """Lay out the images of `folder` named by `tiles` in a grid, captions under each image.

    Region boxes are drawn in red, scaled from the image's own size to the tile size.
    """
    if not tiles:
        raise ValueError("no images to put on the contact sheet")
    columns = max(1, min(columns, len(tiles)))
    rows = -(-len(tiles) // columns)
    font = _font(max(10, tile_size // 22))
    line_h = max(12, tile_size // 18)
    cap_h = line_h * CAPTION_LINES + 6
    title_h = line_h + 10 if title else 0
    sheet = Image.new("RGB", (columns * tile_size, title_h + rows * (tile_size + cap_h)), (16, 16, 16))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((6, 4), title, fill=(255, 210, 80), font=font)
    chars = max(12, int(tile_size / (line_h * 0.52)))
    for k, tile in enumerate(tiles):
        x = (k % columns) * tile_size
        y = title_h + (k // columns) * (tile_size + cap_h)
        arr = load_image(image_path(folder, tile.image_id))              # (H, W) uint8
        h, w = arr.shape
        img = Image.fromarray(arr).resize((tile_size, tile_size), Image.BILINEAR).convert("RGB")
        sheet.paste(img, (x, y))
        sx, sy = tile_size / w, tile_size / h
        for x0, y0, x1, y1 in tile.boxes:
            left, top = x + x0 * sx, y + y0 * sy
            right, bottom = max(left, x + x1 * sx - 1), max(top, y + y1 * sy - 1)
            draw.rectangle([left, top, right, bottom], outline=(255, 64, 64))
        lines = textwrap.wrap(f"{tile.image_id}: {tile.caption}", chars)[:CAPTION_LINES]
        for i, line in enumerate(lines):
            draw.text((x + 4, y + tile_size + 3 + i * line_h), line, fill=(230, 230, 230), font=font)
    return sheet

