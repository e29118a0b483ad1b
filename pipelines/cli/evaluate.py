"""Evaluate a trained cascade checkpoint: accuracy and BLEU, concept AUC, pointing game, similar-image precision."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipelines.errors import PipelineError
from pipelines.settings import data_dir, manifest_path


class EvaluateError(PipelineError):
    """The evaluation cannot run (no checkpoint, manifest or images)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch evaluate", description=__doc__)
    p.add_argument("--checkpoint", help="cascade checkpoint (default <data>/models/tiny/cascade.pt)")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--images", help="folder of <image_id>.png (default <data>/images/synthetic/NLMCXR_png)")
    p.add_argument("--manifest", help="manifest JSONL (default <data>/manifest.jsonl)")
    p.add_argument("--out", help="write results.json and results.md here (default: print only)")
    p.add_argument("--max-images", type=int, default=0, help="a deterministic subset of N images")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--no-progress", action="store_true")
    extra = p.add_argument_group("other evaluations (any of these replaces the accuracy/BLEU tables unless --bleu)")
    extra.add_argument("--concepts", action="store_true", help="per-concept ROC AUC of the concept head")
    extra.add_argument("--pointing", action="store_true",
                       help="pointing game: class activation map peak inside the drawn region (regions.jsonl)")
    extra.add_argument("--similar", action="store_true",
                       help="P@k of 'same mined label' among the nearest images of other reports, per vector kind")
    extra.add_argument("--confusion", action="store_true", help="per-label accuracy and the labels confused with")
    extra.add_argument("--bleu", action="store_true", help="also the accuracy/BLEU tables")
    extra.add_argument("--split", default="test", choices=("train", "val", "test"))
    extra.add_argument("--k", type=int, default=10, help="neighbours for --similar")
    extra.add_argument("--tolerance", type=float, default=0.0, help="--pointing: box margin in pixels (256 px frame)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from models.cascade import Cascade
    from models.errors import CheckpointError
    from models.preprocess import stored_size
    from pipelines.cli.train import subset
    from pipelines.manifest import read_manifest
    from pipelines.sources.images import is_synthetic
    from pipelines.train.cascade import Iteration, infer
    from pipelines.train.data import Corpus, default_image_dir, load_image_set
    from pipelines.train.evaluate import bleu_report, iteration_metrics, to_markdown, write_results
    from pipelines.train.runtime import machine, pick_device

    root = data_dir(args.data_dir)
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
    synthetic = is_synthetic(images)
    note = ("SYNTHETIC corpus (rendered stand-ins; not a clinical measurement)" if synthetic
            else f"images from {images}")
    out = Path(args.out) if args.out else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
    if args.concepts or args.pointing or args.similar or args.confusion:
        extra_evaluations(args, cascade, corpus, images, device, note, out)
        if not args.bleu:
            return 0
    probs, embeddings, generated = infer(cascade, corpus, device)
    names = set(cascade.label_names)
    labels = {i: e.label for i, e in enumerate(corpus.entries) if e.label in names}
    it = Iteration(cascade.iteration, cascade, labels, probs, embeddings, generated)
    max_words = max(cascade.config.lstm.max_words, cascade.config.gru.max_words)
    it.metrics = iteration_metrics(it, corpus, max_words)
    results = bleu_report([it], corpus, max_words)
    results.update({"preset": cascade.config.name, "checkpoint": str(checkpoint), "machine": machine(),
                    "corpus": note, "images": {"used": len(corpus.entries), "skipped": len(image_set.skipped)}})
    if out:
        json_path, md_path = write_results(results, out)
        print(f"wrote {json_path} and {md_path}")
    print(to_markdown(results))
    return 0


def extra_evaluations(args: argparse.Namespace, cascade, corpus, images: Path, device, note: str,
                      out: Path | None) -> None:
    """--concepts / --pointing / --similar / --confusion: print markdown, write <name>.json/.md into `out`."""
    from pipelines.train import analysis, reports

    header = f"Checkpoint `{args.checkpoint or 'data/models/tiny/cascade.pt'}` (iteration {cascade.iteration}); {note}."
    vectors = analysis.corpus_vectors(cascade, corpus, device) if (args.concepts or args.similar
                                                                   or args.confusion) else None
    done: dict[str, tuple[dict, str]] = {}
    if args.concepts:
        result = analysis.concept_auc(cascade, corpus, vectors.concepts, args.split)
        done["concept_auc"] = (result, reports.concept_auc_markdown(result, header))
    if args.pointing:
        regions = analysis.read_regions(images)
        if not regions:
            raise EvaluateError(f"{images}: no regions.jsonl (the pointing game needs the synthetic corpus's "
                                "drawn regions; render it with `cxrsearch data synth`)")
        result = {"truth": analysis.pointing_game(cascade, corpus, regions, args.split, args.tolerance),
                  "predicted": analysis.pointing_game(cascade, corpus, regions, args.split, args.tolerance,
                                                      target="predicted")}
        done["pointing_game"] = (result, reports.pointing_markdown(result, header))
    if args.similar:
        kinds = {"findings": (vectors.findings, analysis.findings_scores(vectors.findings)),
                 "embedding": (vectors.embeddings, None), "context": (vectors.contexts, None)}
        if vectors.concepts.shape[1]:
            kinds["concepts"] = (vectors.concepts, None)
        result = {pool: {kind: analysis.similar_precision(v, corpus, args.k, args.split, pool, scores=scores)
                         for kind, (v, scores) in kinds.items()} for pool in ("all", "labelled")}
        done["similar"] = (result, reports.similar_markdown(result, header))
    if args.confusion:
        result = analysis.label_confusion(vectors.probs, corpus, cascade.label_names, args.split)
        done["confusion"] = (result, reports.confusion_markdown(result, header, args.split))
    for name, (result, markdown) in done.items():
        print(markdown)
        if out:
            (out / f"{name}.json").write_text(json.dumps(result, indent=1) + "\n")
            (out / f"{name}.md").write_text(markdown)
            print(f"wrote {out / name}.json and .md")


if __name__ == "__main__":
    raise SystemExit(main())
