"""Parse the reports, mine the labels, split by report and write the image manifest."""
from __future__ import annotations

import argparse
import json

from pipelines.corpus import build_manifest, load_corpus
from pipelines.manifest import write_manifest
from pipelines.settings import data_dir, manifest_path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch data prepare", description=__doc__)
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad report, naming file and problem")
    p.add_argument("--min-cases", type=int, default=30,
                   help="images a single-term pattern needs to become a label (30)")
    p.add_argument("--seed", type=int, default=0, help="split seed (0)")
    p.add_argument("--images", metavar="DIR",
                   help="keep only image ids with a <id>.png in DIR (e.g. Open-i's NLMCXR_png)")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    if args.min_cases < 1:
        parser().error(f"--min-cases must be >= 1, got {args.min_cases}")
    root = data_dir(args.data_dir)
    corpus = load_corpus(root, strict=args.strict, progress=True, images=args.images)
    print(corpus.summary.format())
    entries, labels = build_manifest(corpus, min_cases=args.min_cases, seed=args.seed)
    path = manifest_path(root)
    n = write_manifest(path, entries)
    labels_doc = {"min_cases": args.min_cases, "seed": args.seed, "labels": labels}
    (root / "labels.json").write_text(json.dumps(labels_doc, indent=2))
    print(f"wrote {path}: {n} images, {len(labels)} labels, "
          f"{sum(1 for e in entries if e.label)} labelled images")
    return 0
