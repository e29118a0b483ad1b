"""Benchmark the synthetic corpus: render every image from scratch and print images/s and total time.

Usage:
    .venv/bin/python scripts/bench_synth.py [--reports PATH | --manifest PATH] [--metadata PATH]
                                            [--size 256] [--workers 2] [--limit N] [--out DIR]

Renders into a fresh temporary folder (deleted afterwards unless --out is given) so nothing is
skipped, and prints one line for the README. Other processes on the machine slow it down: the
line reports the load average before and after so a reader can judge the number.
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.cli.data_synth import load_items  # noqa: E402
from pipelines.settings import data_dir  # noqa: E402
from pipelines.synth.corpus import render_corpus  # noqa: E402

BUDGET_S = 120.0


def _cpu_seconds() -> float:
    """User + system CPU time of this process and its finished worker processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", help="image manifest (default: DATA/manifest.jsonl when present)")
    p.add_argument("--reports", help="report folder or NLMCXR_reports.tgz (used when there is no manifest)")
    p.add_argument("--metadata", help="nlmcxr_dicom_metadata.csv.gz (views)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int)
    p.add_argument("--out", help="keep the rendered corpus here (default: a temporary folder, deleted)")
    p.add_argument("--data-dir")
    args = p.parse_args(argv)

    items, what = load_items(data_dir(args.data_dir), args.manifest, args.reports, args.metadata)
    if args.limit:
        items = items[:args.limit]
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_synth_"))
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    cpu0 = _cpu_seconds()
    summary = render_corpus(items, out, size=args.size, workers=args.workers, force=True, progress=True)
    seconds = time.perf_counter() - t0
    cpu = _cpu_seconds() - cpu0
    load_after = os.getloadavg()[0]
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    rate = summary.rendered / seconds if seconds else 0.0
    verdict = "within" if seconds <= BUDGET_S or len(items) < 7000 else "OVER"
    print(summary.format())
    print(f"input: {what}")
    print(f"{summary.rendered} synthetic images at {args.size}x{args.size} in {seconds:.1f} s "
          f"({rate:.1f} images/s) with {args.workers} workers on {os.cpu_count()} CPUs; "
          f"load average {load_before:.1f} before, {load_after:.1f} after; "
          f"{verdict} the {BUDGET_S:.0f} s budget for the full corpus; CPU {cpu:.0f} s in all "
          f"({cpu / max(1, summary.rendered) * 1000:.1f} ms per image, {cpu / args.workers:.0f} s of wall time "
          f"on {args.workers} otherwise idle cores)"
          + (f"; FAILED {len(summary.failed)}" if summary.failed else ""))
    return 1 if summary.failed else 0


if __name__ == "__main__":
    sys.exit(main())
