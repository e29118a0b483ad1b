"""Annotate radiographs with a trained cascade: annotation, label probabilities, embedding, context vector."""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm import tqdm

from pipelines.errors import PipelineError
from pipelines.settings import data_dir

SUFFIXES = (".png", ".jpg", ".jpeg")


class AnnotateError(PipelineError):
    """The annotate job cannot start (no checkpoint, no input)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch annotate", description=__doc__)
    p.add_argument("images", nargs="*", help="image files (PNG/JPEG); the file stem is the image id")
    p.add_argument("--dir", action="append", default=[], help="annotate every PNG/JPEG in this folder (repeatable)")
    p.add_argument("--checkpoint", help="cascade checkpoint (default <data>/models/tiny/cascade.pt)")
    p.add_argument("--out", required=True, help="output folder: annotations.jsonl, embeddings.npy, "
                   "context_vectors.npy, findings.npy, skipped.jsonl")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--top", type=int, default=0, help="keep only the top N label probabilities (0 = all)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--data-dir", help="data directory (for the default checkpoint)")
    p.add_argument("--no-progress", action="store_true")
    return p


def collect_inputs(files: list[str], folders: list[str]) -> list[Path]:
    """Explicit files (kept even when odd, so they are reported) and the images of each folder."""
    paths = [Path(f) for f in files]
    for folder in folders:
        folder_path = Path(folder)
        if not folder_path.is_dir():
            raise AnnotateError(f"--dir {folder}: not a folder")
        paths += sorted(p for p in folder_path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES)
    return list(dict.fromkeys(paths))


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from models.cascade import Cascade
    from models.errors import CheckpointError
    from pipelines.train.runtime import pick_device

    paths = collect_inputs(args.images, args.dir)
    if not paths:
        raise AnnotateError("no input images: give IMAGES... or --dir DIR")
    if args.checkpoint:
        checkpoint = Path(args.checkpoint)
    else:
        checkpoint = data_dir(args.data_dir) / "models" / "tiny" / "cascade.pt"
    try:
        cascade = Cascade.load(checkpoint, pick_device(args.device))
    except CheckpointError as e:
        raise AnnotateError(f"{e} (train one with `cxrsearch train --preset tiny`)") from e
    summary = annotate_files(cascade, paths, Path(args.out), args.batch_size, args.top, progress=not args.no_progress)
    print(f"annotated {summary['done']} of {len(paths)} images with {checkpoint} "
          f"(iteration {cascade.iteration}); skipped {summary['skipped']}"
          + (f": {dict(summary['reasons'])}" if summary["reasons"] else "") + f" -> {args.out}")
    return 0 if summary["done"] else 1


def annotate_files(cascade, paths: list[Path], out: Path, batch_size: int = 64, top: int = 0,
                   progress: bool = True) -> dict:
    """Annotate `paths` in batches; unusable images are skipped with a reason. Writes the outputs."""
    from models.errors import UnusableImageError
    from models.preprocess import prepare

    out.mkdir(parents=True, exist_ok=True)
    embeddings, contexts, findings = [], [], []
    reasons: Counter = Counter()
    done = 0
    with open(out / "annotations.jsonl", "w", encoding="utf-8") as fh, \
            open(out / "skipped.jsonl", "w", encoding="utf-8") as skipped:
        bar = tqdm(total=len(paths), desc="annotate", unit="img", disable=not progress)
        for start in range(0, len(paths), batch_size):
            batch, arrays = [], []
            for path in paths[start:start + batch_size]:
                try:
                    arrays.append(prepare(path, cascade.config.cnn))
                    batch.append(path)
                except UnusableImageError as e:
                    reasons[e.reason] += 1
                    skipped.write(json.dumps({"path": str(path), "reason": e.reason, "detail": e.detail}) + "\n")
            if arrays:
                for path, result in zip(batch, cascade.annotate(np.stack(arrays))):
                    fh.write(json.dumps(record(path, result, cascade.label_names, done, top,
                                               cascade.concept_names)) + "\n")
                    embeddings.append(result.embedding)
                    contexts.append(result.context_vector)
                    findings.append(result.findings)
                    done += 1
            bar.update(len(paths[start:start + batch_size]))
        bar.close()
    dim_e, dim_h = cascade.cnn.embedding_dim, cascade.decoders[cascade.config.context_rnn].hidden_size
    np.save(out / "embeddings.npy", np.stack(embeddings).astype(np.float32) if embeddings
            else np.zeros((0, dim_e), np.float32))
    np.save(out / "context_vectors.npy", np.stack(contexts).astype(np.float32) if contexts
            else np.zeros((0, dim_h), np.float32))
    np.save(out / "findings.npy", np.stack(findings).astype(np.float32) if findings   # models.findings.vector
            else np.zeros((0, 0), np.float32))
    return {"done": done, "skipped": sum(reasons.values()), "reasons": reasons}


def record(path: Path, result, label_names: list[str], row: int, top: int = 0,
           concept_names: list[str] | None = None) -> dict:
    """One JSONL line: `row` indexes embeddings.npy, context_vectors.npy and findings.npy.

    `label` may be an iteration-1 cluster (`opacity#4`); `finding` is its base label (`opacity`).
    `concept_probabilities` has every concept key of the checkpoint's concept head ({} without one).
    """
    from models.relabel import base_label

    order = np.argsort(-result.probabilities)
    if top > 0:
        order = order[:top]
    return {"image_id": path.stem, "path": str(path), "row": row, "label": result.label,
            "finding": base_label(result.label),
            "annotation": " ".join(result.words), "words": result.words, "by_rnn": result.words_by_rnn,
            "label_probabilities": {label_names[i]: round(float(result.probabilities[i]), 6) for i in order},
            "concept_probabilities": {k: round(float(p), 4) for k, p in zip(concept_names or [],
                                                                             result.concept_probabilities)}}


if __name__ == "__main__":
    sys.exit(main())
