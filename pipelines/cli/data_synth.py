"""Render the synthetic radiograph corpus (one labelled stand-in PNG per real image id)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.errors import DataNotPreparedError
from pipelines.settings import data_dir, manifest_path, reports_dir

METADATA_NAME = "nlmcxr_dicom_metadata.csv.gz"


def default_out(root: Path) -> Path:
    """Where the synthetic corpus goes: laid out like Open-i's NLMCXR_png."""
    return root / "images" / "synthetic" / "NLMCXR_png"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch data synth", description=__doc__ + (
        " Each image is drawn from its real MeSH annotation (finding, location, side, severity, view); "
        "images already rendered by the same generator version at the same size are skipped."))
    p.add_argument("--manifest", metavar="PATH", help="image manifest (default: DATA/manifest.jsonl when present)")
    p.add_argument("--reports", metavar="PATH", help="report XML folder or NLMCXR_reports.tgz, used when there is "
                                                     "no manifest (default: the fetched reports)")
    p.add_argument("--metadata", metavar="PATH", help=f"DICOM metadata for views (default: DATA/raw/{METADATA_NAME})")
    p.add_argument("--out", metavar="DIR", help="output folder (default: DATA/images/synthetic/NLMCXR_png)")
    p.add_argument("--size", type=int, default=256, help="image width and height in pixels (default 256)")
    p.add_argument("--limit", type=int, help="render only the first N images")
    p.add_argument("--workers", type=int, default=2, help="processes (default 2)")
    p.add_argument("--force", action="store_true", help="render again even when an up-to-date image exists")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    return p


def load_items(root: Path, manifest: str | None, reports: str | None, metadata: str | None):
    """(items, description of the input): the manifest when there is one, else the reports."""
    from pipelines.synth.corpus import items_from_manifest, items_from_reports

    if manifest or (reports is None and manifest_path(root).is_file()):
        path = Path(manifest) if manifest else manifest_path(root)
        items = items_from_manifest(path)
        return items, f"manifest {path}"
    from pipelines.sources.openi import load_reports
    from pipelines.sources.views import load_view_positions

    source = Path(reports) if reports else reports_dir(root)
    if not source.exists():
        raise DataNotPreparedError(f"{source}: no reports and no manifest; run `cxrsearch data fetch` "
                                   "(and `cxrsearch data prepare`) first, or pass --manifest/--reports")
    loaded, _ = load_reports(source)
    meta = Path(metadata) if metadata else root / "raw" / METADATA_NAME
    positions = load_view_positions(meta) if meta.is_file() else {}
    views = "DICOM view positions" if positions else "views from image order"
    return items_from_reports(loaded, positions), f"reports {source} ({len(loaded)} reports, {views})"


def main(argv: list[str]) -> int:
    from pipelines.synth.corpus import render_corpus

    args = parser().parse_args(argv)
    if args.size < 64:
        parser().error(f"--size must be at least 64, not {args.size}")
    root = data_dir(args.data_dir)
    items, what = load_items(root, args.manifest, args.reports, args.metadata)
    out = Path(args.out) if args.out else default_out(root)
    print(f"input: {what}: {len(items)} images")
    summary = render_corpus(items, out, size=args.size, workers=args.workers, limit=args.limit,
                            force=args.force, progress=not args.no_progress)
    print(summary.format())
    return 1 if summary.failed else 0
