"""Fit the findings head (models.findings) of a trained cascade: mined label, or OTHER (several findings).

`cxrsearch train` fits it at the end of every run; this module's command refits it on an existing
checkpoint (rewritten in place, float16 weights kept as they were):

    python -m pipelines.train.findings --checkpoint models/checkpoints/tiny/cascade.pt

The head is a multinomial logistic regression (scikit-learn, L-BFGS) on the train and validation
images, each labelled with its mined label or OTHER; test images are never seen. Its two settings were
chosen on the validation split with the head fitted on train only (`python scripts/probe_reader.py
findings`, the table in models/presets/VARIANTS.md section 4): C = 300 (weak regularisation: the
CNN's embeddings separate the training images) and concept weight 0.1.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from models.findings import OTHER, FindingsHead

C = 300.0
CONCEPT_WEIGHT = 0.1
FIT_SPLITS = ("train", "val")


def class_names(entries: Sequence) -> list[str]:
    """Each entry's class for the head: its mined label, or OTHER."""
    return [e.label or OTHER for e in entries]


def fit_findings_head(search: np.ndarray, concepts: np.ndarray | None, entries: Sequence,
                      splits: Sequence[str] = FIT_SPLITS, c: float = C,
                      concept_weight: float = CONCEPT_WEIGHT) -> FindingsHead:
    """The head fitted on the `splits` rows of (N, E) search embeddings and (N, K) concept probabilities.

    Raises:
        ValueError: fewer than two classes among those rows, or no row with a mined label.
    """
    from sklearn.linear_model import LogisticRegression

    rows = np.array([e.split in splits for e in entries])
    names = np.array(class_names(entries))
    labels = sorted({str(n) for n in names[rows] if n != OTHER})
    if not labels or len(set(names[rows])) < 2:
        raise ValueError(f"the findings head needs images of at least two classes in {list(splits)}; "
                         f"found {sorted(set(names[rows]))}")
    concepts = None if concepts is None or concepts.shape[1] == 0 else np.asarray(concepts, dtype=np.float64)
    mean = concepts[rows].mean(0) if concepts is not None else np.zeros(0)
    scale = np.maximum(concepts[rows].std(0), 1e-6) if concepts is not None else np.zeros(0)
    n = len(labels) + 1
    head = FindingsHead(classes=[*labels, OTHER], weight=torch.zeros(n, 1), bias=torch.zeros(n),
                        concept_mean=torch.tensor(mean, dtype=torch.float32),
                        concept_scale=torch.tensor(scale, dtype=torch.float32), concept_weight=concept_weight)
    x = head.features(torch.tensor(search, dtype=torch.float32),
                      None if concepts is None else torch.tensor(concepts, dtype=torch.float32)).numpy()
    x, y = x[rows], names[rows]        # a class absent here (OTHER in a fully labelled corpus) gets ~0 below
    model = LogisticRegression(C=c, max_iter=5000).fit(x.astype(np.float64), y)
    fitted = list(model.classes_)
    weight = np.zeros((len(labels) + 1, x.shape[1]))
    bias = np.full(len(labels) + 1, -30.0)       # a class absent from the fit: probability ~0
    coef = model.coef_ if len(fitted) > 2 else np.vstack([-model.coef_ / 2, model.coef_ / 2])
    intercept = model.intercept_ if len(fitted) > 2 else np.array([-model.intercept_[0] / 2, model.intercept_[0] / 2])
    for i, name in enumerate([*labels, OTHER]):
        if name in fitted:
            weight[i], bias[i] = coef[fitted.index(name)], intercept[fitted.index(name)]
    head.weight = torch.tensor(weight, dtype=torch.float32)
    head.bias = torch.tensor(bias, dtype=torch.float32)
    return head


def head_accuracy(head: FindingsHead, search: np.ndarray, concepts: np.ndarray | None, entries: Sequence,
                  split: str) -> dict:
    """Accuracy of the head's top class (a mined label or OTHER) on one split's images."""
    rows = [i for i, e in enumerate(entries) if e.split == split]
    if not rows:
        return {"split": split, "images": 0, "accuracy": None}
    probs = head.probabilities(torch.tensor(search[rows], dtype=torch.float32),
                               None if concepts is None else torch.tensor(concepts[rows], dtype=torch.float32))
    top = [head.classes[i] for i in probs.argmax(1).tolist()]
    truth = class_names([entries[i] for i in rows])
    return {"split": split, "images": len(rows),
            "accuracy": round(100.0 * float(np.mean([a == b for a, b in zip(top, truth)])), 2)}


def attach_findings_head(cascade, search: np.ndarray, concepts: np.ndarray | None, entries: Sequence) -> dict:
    """Fit the head (`fit_findings_head`), set it on `cascade` with its summary in `cascade.metrics`; -> the summary.

    Raises ValueError as `fit_findings_head` does."""
    head = fit_findings_head(search, concepts, entries)
    cascade.findings_head = head
    summary = {"accuracy": {s: head_accuracy(head, search, concepts, entries, s)["accuracy"]
                            for s in ("train", "val", "test")},
               "c": C, "concept_weight": CONCEPT_WEIGHT, "fit_splits": list(FIT_SPLITS)}
    cascade.metrics["findings_head"] = summary
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipelines.train.findings", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="cascade.pt to refit (rewritten in place)")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    args = p.parse_args(argv)

    from models.cascade import Cascade
    from models.preprocess import stored_size
    from pipelines.manifest import read_manifest
    from pipelines.settings import data_dir, manifest_path
    from pipelines.train.cnn_train import concept_probabilities, predict
    from pipelines.train.data import Corpus, default_image_dir, load_image_set

    torch.set_num_threads(2)
    path = Path(args.checkpoint)
    cascade = Cascade.load(path, torch.device("cpu")).eval()
    root = data_dir(args.data_dir)
    entries = read_manifest(manifest_path(root))
    images = load_image_set([e.image_id for e in entries], default_image_dir(root), stored_size(cascade.config.cnn),
                            progress=False)
    corpus = Corpus.build(entries, images)
    _, embeddings = predict(cascade.cnn, corpus.images, cascade.config.cnn, torch.device("cpu"), 500)
    search = cascade.search_embedding(embeddings).numpy()
    concepts = concept_probabilities(cascade.cnn, embeddings).numpy()     # (N, K); (N, 0) without a concept head
    accuracy = attach_findings_head(cascade, search, concepts, corpus.entries)["accuracy"]
    stored = torch.load(path, map_location="cpu", weights_only=True)["cnn"].values()
    half = any(t.dtype == torch.float16 for t in stored)
    cascade.save(path, half=half)
    print(f"{path}: findings head over {len(cascade.findings_head.labels)} mined labels + {OTHER}, fitted on "
          f"{'+'.join(FIT_SPLITS)}; top-class accuracy (labels and {OTHER}) " +
          ", ".join(f"{s} {a}%" for s, a in accuracy.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
