"""Recompute the paper's Table 1, label and split counts from the reports (`--json` for JSON)."""
from __future__ import annotations

import argparse
import json

from pipelines.corpus import build_manifest, load_corpus
from pipelines.manifest import read_manifest
from pipelines.settings import data_dir, manifest_path
from pipelines.stats import corpus_stats, format_stats


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch stats", description=__doc__)
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--top", type=int, default=20, help="terms in Table 1 (20)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    root = data_dir(args.data_dir)
    corpus = load_corpus(root)
    path = manifest_path(root)
    entries = read_manifest(path) if path.is_file() else build_manifest(corpus)[0]
    stats = corpus_stats(corpus, entries, top=args.top)
    print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    return 0
