"""Evaluations beyond BLEU: concept AUC, pointing game of class activation maps, similar-image precision."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.cam import box_area_fraction, class_activation_map, pointing_hit
from models.cascade import Cascade
from pipelines.train.cnn_train import concept_probabilities
from pipelines.train.concepts import auc_summary, auc_table, image_concepts, target_matrix
from pipelines.train.data import Corpus


@dataclass
class CorpusVectors:
    """The cascade's outputs for every corpus row, as the index would hold them."""

    probs: torch.Tensor          # (N, L) label probabilities
    embeddings: np.ndarray       # (N, E) CNN embeddings as the index stores them (Cascade.search_embedding)
    contexts: np.ndarray         # (N, H) context vectors of the generated annotation (what reindex stores)
    concepts: np.ndarray         # (N, K) concept probabilities ((N, 0) without a head)
    generated: list[list[str]]   # the context RNN's annotation of every row
    findings: np.ndarray | None = None   # (N, M + 1) 'findings' vectors as the index stores them (models.findings)


@torch.no_grad()
def corpus_vectors(cascade: Cascade, corpus: Corpus, device: torch.device, batch: int = 500) -> CorpusVectors:
    """Run the cascade over every row like `Cascade.annotate` does (context from the generated words)."""
    from pipelines.train.cascade import infer

    probs, emb, generated = infer(cascade, corpus, device)
    words = generated[cascade.config.context_rnn]
    contexts = []
    for start in range(0, len(words), batch):
        chunk = [w or ["<unk>"] for w in words[start:start + batch]]
        contexts.append(cascade.context(emb[start:start + batch].to(device), chunk).cpu().numpy())
    concepts = concept_probabilities(cascade.cnn, emb).numpy()
    search = cascade.search_embedding(emb)
    findings = cascade.findings_vectors(search, torch.from_numpy(concepts), probs)
    return CorpusVectors(probs, search.numpy(), np.concatenate(contexts), concepts, words, findings)


def findings_scores(findings: np.ndarray):
    """`similar_precision`'s scores function for the 'findings' kind: the search the index makes
    (indexer.vectors.base.findings_query: the query's remainder coordinate set to 0, then cosine)."""
    from indexer.vectors.base import findings_query

    unit = _normalise(np.asarray(findings, dtype=np.float32))
    return lambda q: unit @ findings_query(unit[q:q + 1])[0]


def concept_auc(cascade: Cascade, corpus: Corpus, concepts: np.ndarray, split: str = "test") -> dict:
    """Per-concept ROC AUC of the concept head on one split, with a summary."""
    if not cascade.concept_names:
        return {"summary": auc_summary([]), "table": [], "note": "this checkpoint has no concept head"}
    rows = [i for i, e in enumerate(corpus.entries) if e.split == split]
    targets = target_matrix(image_concepts(corpus.entries), cascade.concept_names).numpy()
    table = auc_table(concepts[rows], targets[rows], cascade.concept_names)
    return {"split": split, "images": len(rows), "summary": auc_summary(table), "table": table}


def _normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def shares_finding(label: str, mesh: Sequence[str]) -> bool:
    """Whether one of a report's MeSH terms carries the mined label's finding.

    'lung/hypoinflation' is carried by 'Lung/hypoinflation/mild'; 'nodule' by 'Nodule/lung/base/left'
    (every '/'-part of the label among one term's parts, case-insensitive). So an image whose report
    lists the finding beside others (and has no mined label of its own) still shares it. Not
    `pipelines.labels.term_of`, which names a term by its head and first subheading for label mining:
    it would miss 'Lung/bilateral/hypoinflation' (73 image-label pairs of the corpus differ).
    """
    parts = set(label.lower().split("/"))
    return any(parts <= set(term.lower().split("/")) for term in mesh)


def similar_precision(vectors: np.ndarray, corpus: Corpus, k: int = 10, split: str = "test",
                      pool: str = "all", normal_label: str = "normal", scores=None) -> dict:
    """P@k of 'same mined label' for abnormal `split` images, neighbours by cosine from other reports.

    Beside it, P@k of 'shares the finding': the neighbour's report MeSH terms carry the query's mined
    label (`shares_finding`), which also credits neighbours whose report lists the finding among others.
    Both come from the reports' MeSH terms, never from generated text.

    Args:
        vectors: (N, D) one vector per corpus row.
        pool: 'all' (every indexed image; an image without a mined label never counts as a match) or
            'labelled' (only images with a mined label are candidates).
        scores: optional `scores(q) -> (N,)` similarity of every row to row q, in place of the cosine of
            `vectors` (a probe of another ranking, e.g. scripts/probe_reader.py's re-ranking).
    Returns:
        {'precision': mean P@k, 'prior': mean share of same-label candidates, 'shares': mean P@k of
         'shares the finding', 'shares_prior': its prior, 'same_view': mean share of the k neighbours with
         the query's view (frontal / lateral), 'queries': n,
         'per_label': {label: {'precision', 'prior', 'shares', 'shares_prior', 'queries'}}}
    """
    entries = corpus.entries
    candidates = np.array([pool == "all" or bool(e.label) for e in entries])
    queries = [i for i, e in enumerate(entries) if e.split == split and e.label and e.label != normal_label]
    unit = _normalise(np.asarray(vectors, dtype=np.float32))
    labels = np.array([e.label or "" for e in entries])
    reports = np.array([e.report_id for e in entries])
    views = np.array([getattr(e, "view", "") or "" for e in entries])
    carriers = {label: np.array([shares_finding(label, e.mesh) for e in entries])
                for label in {labels[q] for q in queries}}
    per_label: dict[str, list[tuple[float, float, float, float]]] = defaultdict(list)
    for q in queries:
        allowed = candidates & (reports != reports[q])
        similarity = np.array(scores(q), dtype=np.float64) if scores is not None else unit @ unit[q]   # (N,)
        similarity[~allowed] = -np.inf
        top = np.argpartition(-similarity, k)[:k]
        carries = carriers[labels[q]]
        per_label[labels[q]].append((float((labels[top] == labels[q]).mean()),
                                     float((labels[allowed] == labels[q]).mean()),
                                     float(carries[top].mean()), float(carries[allowed].mean()),
                                     float((views[top] == views[q]).mean())))
    rows = [r for group in per_label.values() for r in group]

    def mean(group: list, column: int, digits: int) -> float | None:
        return round(float(np.mean([r[column] for r in group])), digits) if group else None

    return {"k": k, "pool": pool, "queries": len(rows),
            "precision": mean(rows, 0, 4), "prior": mean(rows, 1, 4),
            "shares": mean(rows, 2, 4), "shares_prior": mean(rows, 3, 4), "same_view": mean(rows, 4, 4),
            "per_label": {label: {"precision": mean(group, 0, 3), "prior": mean(group, 1, 4),
                                  "shares": mean(group, 2, 3), "shares_prior": mean(group, 3, 4),
                                  "queries": len(group)}
                          for label, group in sorted(per_label.items())}}


def read_regions(image_dir: Path) -> dict[str, dict]:
    """image id -> its regions.jsonl record (boxes of each drawn finding) of a synthetic corpus folder."""
    path = Path(image_dir) / "regions.jsonl"
    if not path.is_file():
        return {}
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                record = json.loads(line)
                out[record["image_id"]] = record
    return out


def pointing_game(cascade: Cascade, corpus: Corpus, regions: dict[str, dict], split: str = "test",
                  tolerance: float = 0.0, normal_label: str = "normal", target: str = "truth") -> dict:
    """Pointing game per finding: share of images whose CAM peak falls inside the drawn region.

    Images: `split` images with a mined (single-term) label other than normal, so every drawn box of
    the image belongs to that finding; images where the renderer drew nothing (a finding with nothing
    to show in that view) are counted apart. target 'truth': the map of the true label; 'predicted':
    of the CNN's predicted label. `chance` is the mean share of the image the boxes cover (a random
    point's hit rate).
    """
    per: dict[str, dict] = defaultdict(lambda: {"images": 0, "hits": 0, "chance": 0.0, "nothing_drawn": 0})
    for i, entry in enumerate(corpus.entries):
        if entry.split != split or not entry.label or entry.label == normal_label:
            continue
        record = regions.get(entry.image_id)
        row = per[entry.label]
        boxes = [r["box"] for r in (record or {}).get("regions", [])]
        if not boxes:
            row["nothing_drawn"] += 1
            continue
        cam = class_activation_map(cascade, corpus.images[i], entry.label if target == "truth" else None)
        size = int(record.get("size", 256))
        row["images"] += 1
        row["hits"] += int(pointing_hit(cam, boxes, size, tolerance))
        row["chance"] += box_area_fraction(boxes, size, tolerance)
    table = {}
    for label, row in sorted(per.items()):
        n = row["images"]
        table[label] = {"images": n, "hits": row["hits"], "accuracy": round(row["hits"] / n, 3) if n else None,
                        "chance": round(row["chance"] / n, 3) if n else None, "nothing_drawn": row["nothing_drawn"]}
    n = sum(r["images"] for r in table.values())
    return {"split": split, "tolerance_px": tolerance, "target": target, "images": n,
            "accuracy": round(sum(r["hits"] for r in table.values()) / n, 3) if n else None,
            "chance": round(sum((r["chance"] or 0) * r["images"] for r in table.values()) / n, 3) if n else None,
            "per_finding": table}


def label_confusion(probs: torch.Tensor, corpus: Corpus, label_names: Sequence[str], split: str = "test") -> dict:
    """Per mined label: images, correct, and the most common wrong predictions (base labels)."""
    from models.relabel import base_label

    out: dict[str, dict] = {}
    predicted = [base_label(label_names[j]) for j in probs.argmax(1).tolist()]
    for i, e in enumerate(corpus.entries):
        if e.split != split or not e.label:
            continue
        row = out.setdefault(e.label, {"images": 0, "correct": 0, "wrong": Counter()})
        row["images"] += 1
        if predicted[i] == e.label:
            row["correct"] += 1
        else:
            row["wrong"][predicted[i]] += 1
    return {label: {"images": r["images"], "correct": r["correct"], "accuracy": round(r["correct"] / r["images"], 3),
                    "confused_with": dict(r["wrong"].most_common(3))} for label, r in sorted(out.items())}
