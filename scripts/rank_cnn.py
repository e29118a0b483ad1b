"""Rank CNN variants quickly: train only the iteration-0 CNN on the mined labels and report its accuracy.

    python scripts/rank_cnn.py --name r128 --set cnn.arch=resnet --set cnn.input_size=128 --set cnn.resize=128
    python scripts/rank_cnn.py --name quick --train-fraction 0.5 --set cnn_train.epochs=4

Each run appends one JSON line (config overrides, val/test accuracy, per-label test accuracy,
wall and process CPU seconds, load average) to --log (default models/presets/variants.jsonl), the
raw material of models/presets/VARIANTS.md. Measured on whatever images the folder holds: on the
SYNTHETIC corpus these numbers describe the software, never clinical accuracy.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", required=True, help="variant name for the log")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--train-fraction", type=float, default=1.0, help="use this share of the training images")
    p.add_argument("--log", type=Path, default=ROOT / "models" / "presets" / "variants.jsonl")
    args = p.parse_args(argv)

    import numpy as np
    import torch

    from models.cnn import build_cnn
    from models.config import apply_overrides, load_config
    from models.preprocess import stored_size
    from pipelines.manifest import read_manifest
    from pipelines.settings import data_dir, manifest_path
    from pipelines.train.cascade import concept_targets
    from pipelines.train.cnn_train import concept_probabilities, predict, train_cnn
    from pipelines.train.concepts import auc_summary, auc_table
    from pipelines.train.data import Corpus, default_image_dir, load_image_set
    from pipelines.train.runtime import seed_everything

    cfg = apply_overrides(load_config(args.preset), args.overrides)
    seed_everything(cfg.seed, cfg.num_threads)
    root = data_dir(args.data_dir)
    entries = read_manifest(manifest_path(root))
    image_set = load_image_set([e.image_id for e in entries], default_image_dir(root), stored_size(cfg.cnn),
                               cache_dir=root / "cache" / "rank", progress=False)
    corpus = Corpus.build(entries, image_set)
    rng = np.random.default_rng(0)
    labelled = [bool(e.label and e.words) for e in corpus.entries]
    train_rows = [i for i, e in enumerate(corpus.entries) if e.split == "train" and labelled[i]]
    if args.train_fraction < 1.0:
        train_rows = sorted(rng.choice(train_rows, size=int(len(train_rows) * args.train_fraction), replace=False))
    names = sorted({corpus.entries[r].label for r in train_rows})
    torch.manual_seed(cfg.seed)
    cnn = build_cnn(cfg.cnn, len(names))
    concepts = concept_targets(cfg, corpus)
    extra_rows = []
    if concepts is not None:
        cnn.add_concept_head(len(concepts.names))
        if cfg.cnn_train.concept_extra > 0:
            extra_rows = [i for i, e in enumerate(corpus.entries) if e.split == "train" and not labelled[i]]
    load0 = os.getloadavg()[0]
    w0, c0 = time.perf_counter(), time.process_time()
    history = train_cnn(cnn, corpus.images[train_rows], [corpus.entries[r].label for r in train_rows], names,
                        cfg.cnn, cfg.cnn_train, epochs=cfg.cnn_train.epochs, seed=cfg.seed,
                        device=torch.device("cpu"), progress=False,
                        concept_targets=None if concepts is None else concepts.targets[train_rows],
                        extra_images=corpus.images[extra_rows] if extra_rows else None,
                        extra_concepts=concepts.targets[extra_rows] if extra_rows else None)
    train_wall, train_cpu = time.perf_counter() - w0, time.process_time() - c0
    probs, emb = predict(cnn, corpus.images, cfg.cnn, torch.device("cpu"), cfg.eval_batch_size)
    predicted = [names[i] for i in probs.argmax(1).tolist()]
    result: dict = {"name": args.name, "overrides": args.overrides, "train_fraction": args.train_fraction,
                    "train_images": len(train_rows), "samples": sum(history.samples_per_epoch)}
    for split in ("train", "val", "test"):
        rows = [i for i, e in enumerate(corpus.entries) if e.split == split and labelled[i]]
        result[f"{split}_acc"] = round(100 * sum(predicted[r] == corpus.entries[r].label for r in rows) / len(rows), 1)
    test = [i for i, e in enumerate(corpus.entries) if e.split == "test" and labelled[i]]
    if concepts is not None:
        rows = [i for i, e in enumerate(corpus.entries) if e.split == "test"]
        table = auc_table(concept_probabilities(cnn, emb)[rows].numpy(), concepts.targets[rows].numpy(),
                          concepts.names)
        result["test_concept_auc"] = auc_summary(table)
    totals = Counter(corpus.entries[r].label for r in test)
    hits = Counter(corpus.entries[r].label for r in test if predicted[r] == corpus.entries[r].label)
    result["test_per_label"] = {k: f"{hits[k]}/{n}" for k, n in sorted(totals.items())}
    result.update({"train_wall_s": round(train_wall, 1), "train_cpu_s": round(train_cpu, 1),
                   "total_wall_s": round(time.perf_counter() - w0, 1), "load_avg": [round(load0, 2),
                   round(os.getloadavg()[0], 2)], "threads": torch.get_num_threads(),
                   "loss": [round(x, 3) for x in history.loss]})
    print(json.dumps(result))
    args.log.parent.mkdir(parents=True, exist_ok=True)
    with open(args.log, "a") as fh:
        fh.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
