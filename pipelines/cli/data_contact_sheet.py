"""Write a contact sheet: a PNG grid of chosen or random images with their annotations as captions."""
from __future__ import annotations

import argparse
import random
from pathlib import Path

from pipelines.errors import DataNotPreparedError
from pipelines.settings import data_dir, manifest_path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch data contact-sheet", description=__doc__)
    p.add_argument("--folder", metavar="DIR", help="image folder (default: DATA/images/synthetic/NLMCXR_png)")
    p.add_argument("--ids", nargs="+", metavar="ID", help="these image ids (default: a random choice)")
    p.add_argument("--term", metavar="TEXT", help="choose among images whose annotation contains TEXT "
                                                  "(case-insensitive, e.g. 'effusion' or 'upper lobe/right')")
    p.add_argument("-n", "--count", type=int, default=16, help="how many images (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random choice seed (default 0)")
    p.add_argument("--columns", type=int, default=4, help="grid columns (default 4)")
    p.add_argument("--tile", type=int, default=256, help="tile size in pixels (default 256)")
    p.add_argument("--boxes", action="store_true", help="draw the recorded finding regions (synthetic folders)")
    p.add_argument("--out", metavar="PATH", help="output PNG (default: DATA/contact_sheet.png)")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    return p


def _captions(folder: Path, root: Path) -> tuple[dict[str, str], dict[str, list]]:
    """Captions (annotations) and regions per image id: from regions.jsonl, else from the manifest."""
    from pipelines.synth.corpus import read_records

    records = read_records(folder)
    if records:
        captions = {iid: "; ".join(rec.get("terms", [])) or "normal" for iid, rec in records.items()}
        boxes = {iid: [tuple(r["box"]) for r in rec.get("regions", [])] for iid, rec in records.items()}
        return captions, boxes
    if manifest_path(root).is_file():
        from pipelines.manifest import read_manifest

        return {e.image_id: "; ".join(e.mesh) for e in read_manifest(manifest_path(root))}, {}
    return {}, {}


def main(argv: list[str]) -> int:
    from pipelines.cli.data_synth import default_out
    from pipelines.sources.images import is_synthetic, list_image_ids, read_marker
    from pipelines.synth.sheet import Tile, contact_sheet

    args = parser().parse_args(argv)
    root = data_dir(args.data_dir)
    folder = Path(args.folder) if args.folder else default_out(root)
    if not folder.is_dir():
        raise DataNotPreparedError(f"{folder}: no image folder; run `cxrsearch data synth` first or pass --folder")
    available = set(list_image_ids(folder))
    captions, boxes = _captions(folder, root)
    if args.ids:
        missing = [i for i in args.ids if i not in available]
        if missing:
            raise DataNotPreparedError(f"no image file for {', '.join(missing[:5])} in {folder}")
        chosen = list(args.ids)
    else:
        pool = sorted(available)
        if args.term:
            needle = args.term.lower()
            pool = [i for i in pool if needle in captions.get(i, "").lower()]
            if not pool:
                raise DataNotPreparedError(f"no image in {folder} has an annotation containing {args.term!r}")
        chosen = random.Random(args.seed).sample(pool, min(args.count, len(pool)))
    tiles = [Tile(i, captions.get(i, ""), tuple(boxes.get(i, [])) if args.boxes else ()) for i in chosen]
    synthetic = is_synthetic(folder)
    title = None
    if synthetic:
        marker = read_marker(folder) or {}
        title = (f"SYNTHETIC stand-in images ({marker.get('generator', '')} {marker.get('version', '')}), "
                 "not radiographs of patients")
    sheet = contact_sheet(folder, tiles, columns=args.columns, tile_size=args.tile, title=title)
    out = Path(args.out) if args.out else root / "contact_sheet.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    print(f"contact sheet: {out} ({len(tiles)} images from {folder}{', synthetic' if synthetic else ''})")
    return 0
