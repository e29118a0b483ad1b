"""Evaluate a trained cascade checkpoint on a manifest and its images (CNN accuracy, BLEU-1..4)."""
from __future__ import annotations

import argparse
from pathlib import Path

from pipelines.errors import PipelineError
from pipelines.settings import data_dir, manifest_path


class EvaluateError(PipelineError):
    """The evaluation cannot run (no checkpoint, manifest or images)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch evaluate", description=__doc__)
    p.add_argument("--checkpoint", help="cascade checkpoint (default <data>/models/tiny/cascade.pt)")
    p.add_argument("--data", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--images", help="folder of <image_id>.png (default <data>/images/synthetic/NLMCXR_png)")
    p.add_argument("--manifest", help="manifest JSONL (default <data>/manifest.jsonl)")
    p.add_argument("--out", help="write results.json and results.md here (default: print only)")
    p.add_argument("--max-images", type=int, default=0, help="a deterministic subset of N images")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from models.cascade import Cascade
    from models.errors import CheckpointError
    from models.preprocess import stored_size
    from pipelines.cli.train import subset
    from pipelines.manifest import read_manifest
    from pipelines.train.cascade import Iteration, infer
    from pipelines.sources.images import is_synthetic
    from pipelines.train.data import Corpus, default_image_dir, load_image_set
    from pipelines.train.evaluate import bleu_report, iteration_metrics, to_markdown, write_results
    from pipelines.train.runtime import machine, pick_device

    root = data_dir(args.data)
    checkpoint = Path(args.checkpoint) if args.checkpoint else root / "models" / "tiny" / "cascade.pt"
    device = pick_device(args.device)
    try:
        cascade = Cascade.load(checkpoint, device)
    except CheckpointError as e:
        raise EvaluateError(str(e)) from e
    images = Path(args.images) if args.images else default_image_dir(root)
    manifest = Path(args.manifest) if args.manifest else manifest_path(root)
    entries = subset(read_manifest(manifest), args.max_images)
    image_set = load_image_set([e.image_id for e in entries], images, stored_size(cascade.config.cnn),
                               progress=not args.no_progress)
    corpus = Corpus.build(entries, image_set)
    probs, embeddings, generated = infer(cascade, corpus, device)
    names = set(cascade.label_names)
    labels = {i: e.label for i, e in enumerate(corpus.entries) if e.label in names}
    it = Iteration(cascade.iteration, cascade, labels, probs, embeddings, generated)
    max_words = max(cascade.config.lstm.max_words, cascade.config.gru.max_words)
    it.metrics = iteration_metrics(it, corpus, max_words)
    results = bleu_report([it], corpus, max_words)
    results.update({"preset": cascade.config.name, "checkpoint": str(checkpoint), "machine": machine(),
                    "corpus": ("SYNTHETIC corpus (rendered stand-ins; not a clinical measurement)"
                               if is_synthetic(images) else f"images from {images}"),
                    "images": {"used": len(corpus.entries), "skipped": len(image_set.skipped)}})
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        json_path, md_path = write_results(results, out)
        print(f"wrote {json_path} and {md_path}")
    print(to_markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
