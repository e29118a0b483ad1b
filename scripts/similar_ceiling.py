"""The ceiling of the similar-image metric: P@10 of 'same mined label' when the vectors are the true concepts.

    python scripts/similar_ceiling.py [--manifest data/manifest.jsonl] [--noise 0 0.1 0.2 0.3]

Each image's vector is its 0/1 concept targets from the real MeSH terms (the keys the concept head
learns, >= 30 training images), plus Gaussian noise of the given scale; the score is
`pipelines.train.analysis.similar_precision`, the one `cxrsearch evaluate --similar` reports. No image is
read: this says what a perfect (and a noisy) reader could reach, not what the cascade reaches.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    import numpy as np

    from pipelines.manifest import read_manifest
    from pipelines.train.analysis import similar_precision
    from pipelines.train.concepts import image_concepts, select_concepts, target_matrix
    from pipelines.train.data import Corpus

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--manifest", type=Path, default=ROOT / "data" / "manifest.jsonl")
    p.add_argument("--noise", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    p.add_argument("--min-positives", type=int, default=30)
    args = p.parse_args(argv)
    entries = read_manifest(args.manifest)
    corpus = Corpus(entries, np.zeros((len(entries), 0, 0), np.uint8), {})
    keys = image_concepts(entries)
    names = select_concepts(keys, [i for i, e in enumerate(entries) if e.split == "train"], args.min_positives)
    targets = target_matrix(keys, names).numpy()
    rng = np.random.default_rng(0)
    print(f"{len(names)} concept keys; abnormal test images; P@10 of 'same mined label'")
    print("| noise | pool all | pool labelled |\n|---|---|---|")
    for noise in args.noise:
        vectors = targets + noise * rng.standard_normal(targets.shape).astype(np.float32) + 1e-3
        cells = [similar_precision(vectors, corpus, 10, "test", pool)["precision"] for pool in ("all", "labelled")]
        print(f"| {noise} | {cells[0]:.3f} | {cells[1]:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
