"""Fetch the real Open-i reports and DICOM metadata (checksummed, cached, done once)."""
from __future__ import annotations

import argparse

from pipelines.settings import data_dir
from pipelines.sources.fetch import fetch


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch data fetch", description=__doc__)
    p.add_argument("--from", dest="from_path", metavar="PATH",
                   help="local NLMCXR_reports.tgz or folder of report XML files (default: the PyPI wheel "
                        "torchxrayvision==1.5.7, read as a zip)")
    p.add_argument("--metadata", metavar="PATH", help="local nlmcxr_dicom_metadata.csv.gz")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--no-verify", action="store_true", help="accept a local archive whose sha256 differs")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    root = data_dir(args.data_dir)
    done = fetch(root, from_path=args.from_path, metadata_path=args.metadata, verify=not args.no_verify)
    print(f"data directory: {root}")
    for what, how in done.items():
        print(f"  {what}: {how}")
    return 0
