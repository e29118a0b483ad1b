"""The whole recurrent neural cascade run: iteration 0, context vectors, relabel, iteration 1."""
from __future__ import annotations

import copy
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.cascade import Cascade
from models.cnn import CascadeCNN, build_cnn
from models.config import CascadeConfig
from models.relabel import RelabelResult, base_label, relabel
from models.rnn import build_decoder
from models.vocab import WordVocabulary
from pipelines.train.cnn_train import concept_probabilities, predict, train_cnn
from pipelines.train.concepts import image_concepts, select_concepts, target_matrix
from pipelines.train.data import Corpus
from pipelines.train.evaluate import bleu_report, iteration_metrics
from pipelines.train.rnn_train import generate, train_decoder
from pipelines.train.runtime import Timer

logger = logging.getLogger(__name__)


@dataclass
class Iteration:
    """What one round of the cascade produced."""

    number: int
    cascade: Cascade
    labels: dict[int, str]                       # corpus row -> label this round trained on
    probs: torch.Tensor                          # (N, L) over cascade.label_names, every corpus row
    embeddings: torch.Tensor                     # (N, E)
    generated: dict[str, list[list[str]]]        # cell -> annotation of every corpus row
    concepts: torch.Tensor | None = None         # (N, K) concept probabilities of every row (None: no head)
    history: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)


def first_words(corpus: Corpus, labels: dict[int, str], rows: list[int]) -> dict[str, str]:
    """Each label's most common first annotation word among `rows` (the sampling start word)."""
    counts: dict[str, Counter] = {}
    for r in rows:
        counts.setdefault(labels[r], Counter())[corpus.entries[r].words[0]] += 1
    return {label: c.most_common(1)[0][0] for label, c in counts.items()}


@dataclass
class ConceptTargets:
    """The concept head's keys and the (N, K) 0/1 targets of every corpus row."""

    names: list[str]
    targets: torch.Tensor


def concept_targets(cfg: CascadeConfig, corpus: Corpus) -> ConceptTargets | None:
    """Concept keys with >= cfg.concept_min_positives training images, and every row's targets.

    None when the head is off (cnn_train.concept_weight = 0) or no key has enough positives.
    """
    if cfg.cnn_train.concept_weight <= 0:
        return None
    keys = image_concepts(corpus.entries)
    train_rows = [i for i, e in enumerate(corpus.entries) if e.split == "train"]
    names = select_concepts(keys, train_rows, cfg.concept_min_positives)
    return ConceptTargets(names, target_matrix(keys, names)) if names else None


def run_iteration(number: int, cfg: CascadeConfig, corpus: Corpus, vocab: WordVocabulary, labels: dict[int, str],
                  device: torch.device, timer: Timer, init_cnn: CascadeCNN | None = None,
                  progress: bool = True, concepts: ConceptTargets | None = None,
                  init_names: Sequence[str] = ()) -> Iteration:
    """Train the CNN (from scratch, or fine-tuned from `init_cnn`, whose labels are `init_names`), then both
    decoders, then generate."""
    train_rows = sorted(r for r in labels if corpus.entries[r].split == "train")
    val_rows = sorted(r for r in labels if corpus.entries[r].split == "val")
    names = sorted({labels[r] for r in train_rows})
    torch.manual_seed(cfg.seed + number)
    if init_cnn is None:
        cnn, epochs, scale = build_cnn(cfg.cnn, len(names)), cfg.cnn_train.epochs, 1.0
        cap = cfg.cnn_train.max_per_label
        if concepts is not None:
            cnn.add_concept_head(len(concepts.names))
    else:
        cnn = copy.deepcopy(init_cnn)
        epochs, scale = cfg.cnn_train.finetune_epochs, cfg.cnn_train.finetune_body_lr_scale
        cap = cfg.cnn_train.finetune_max_per_label
        cap = cfg.cnn_train.max_per_label if cap < 0 else cap
        parents = None
        if cfg.cnn_train.finetune_head_init == "parent":
            old = {name: i for i, name in enumerate(init_names)}
            parents = [old.get(base_label(name)) for name in names]
        cnn.replace_head(len(names), parents)
    extra_rows = []
    if concepts is not None and cfg.cnn_train.concept_extra > 0:    # training images without a label this round
        extra_rows = [r for r, e in enumerate(corpus.entries) if e.split == "train" and r not in labels]
    with timer(f"iteration {number}: cnn"):
        cnn_history = train_cnn(cnn, corpus.images[train_rows], [labels[r] for r in train_rows], names, cfg.cnn,
                                cfg.cnn_train, epochs=epochs, seed=cfg.seed + number, device=device,
                                body_lr_scale=scale, normal_label=cfg.normal_label,
                                desc=f"iter {number} CNN ({len(names)} labels)", progress=progress,
                                max_per_label=cap,
                                concept_targets=None if concepts is None else concepts.targets[train_rows],
                                extra_images=corpus.images[extra_rows] if extra_rows else None,
                                extra_concepts=concepts.targets[extra_rows] if extra_rows else None)
        probs, embeddings = predict(cnn, corpus.images, cfg.cnn, device, cfg.eval_batch_size)
        concept_probs = None if concepts is None else concept_probabilities(cnn, embeddings)
    decoders, rnn_history = {}, {}
    for cell in ("lstm", "gru"):
        rnn_cfg = cfg.rnn(cell)
        torch.manual_seed(cfg.seed + number)
        decoder = build_decoder(rnn_cfg, len(vocab), cnn.embedding_dim)
        with timer(f"iteration {number}: {cell}"):
            h = train_decoder(decoder, vocab, embeddings[train_rows], [corpus.entries[r].words for r in train_rows],
                              rnn_cfg, seed=cfg.seed + number, device=device,
                              val=(embeddings[val_rows], [corpus.entries[r].words for r in val_rows]),
                              desc=f"iter {number} {cell.upper()}", progress=progress)
        decoders[cell], rnn_history[cell] = decoder, h.__dict__
    cascade = Cascade(cfg, cnn, decoders, vocab, names, first_words(corpus, labels, train_rows), number,
                      concept_names=[] if concepts is None else list(concepts.names))
    text_rows = [r for r, e in enumerate(corpus.entries) if e.split == "train" and e.words]
    cascade.set_text_means(embeddings[text_rows], [corpus.entries[r].words for r in text_rows])
    with timer(f"iteration {number}: generate"):
        _, _, generated = infer(cascade, corpus, device, embeddings=(probs, embeddings))
    history = {"cnn": cnn_history.__dict__, "rnn": rnn_history}
    return Iteration(number, cascade, labels, probs, embeddings, generated, concept_probs, history)


def infer(cascade: Cascade, corpus: Corpus, device: torch.device,
          embeddings: tuple[torch.Tensor, torch.Tensor] | None = None
          ) -> tuple[torch.Tensor, torch.Tensor, dict[str, list[list[str]]]]:
    """Label probabilities (N, L), embeddings (N, E) and each decoder's annotation of every row.

    Sampling starts from the first word of the CNN's predicted label (paper section 6.3).
    """
    if embeddings is None:
        embeddings = predict(cascade.cnn, corpus.images, cascade.config.cnn, device, cascade.config.eval_batch_size)
    probs, emb = embeddings
    first = cascade.first_word_ids(probs.argmax(1))
    generated = {cell: generate(d, cascade.vocab, emb, first, device) for cell, d in cascade.decoders.items()}
    return probs, emb, generated


def base_labels_for_relabel(cfg: CascadeConfig, corpus: Corpus) -> tuple[dict[int, str], str]:
    """Train + val rows and their iteration-1 base label, and the scope actually used.

    'first_term' (paper section 7): the first-mentioned term of every annotated image, terms
    with fewer than `min_label_cases` images left out; 'label': the mined single labels. When
    first_term leaves fewer than two labels (a tiny corpus) the mined labels are used.
    """
    rows = [i for i, e in enumerate(corpus.entries) if e.split in ("train", "val") and e.words]
    mined = {r: corpus.entries[r].label for r in rows if corpus.entries[r].label}
    if cfg.relabel_scope == "label":
        return mined, "label"
    counts = Counter(corpus.entries[r].first_term for r in rows)
    ignored = set(cfg.ignore_terms)
    terms = {r: corpus.entries[r].first_term for r in rows
             if corpus.entries[r].first_term and corpus.entries[r].first_term not in ignored
             and counts[corpus.entries[r].first_term] >= cfg.min_label_cases}
    if len({t for r, t in terms.items() if corpus.entries[r].split == "train"}) < 2:
        return mined, "label"
    return terms, "first_term"


@torch.no_grad()
def context_for_rows(iteration: Iteration, corpus: Corpus, rows: list[int], batch: int = 500) -> np.ndarray:
    """(len(rows), H) joint image/text context vectors from the true annotations (eq. 12)."""
    device = iteration.cascade.device
    out = []
    for start in range(0, len(rows), batch):
        chunk = rows[start:start + batch]
        out.append(iteration.cascade.context(iteration.embeddings[chunk].to(device),
                                             [corpus.entries[r].words for r in chunk]).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), dtype=np.float32)


def run_cascade(cfg: CascadeConfig, corpus: Corpus, out_dir: Path, device: torch.device,
                progress: bool = True, corpus_note: str = "") -> dict:
    """Run the cascade, write checkpoints, results JSON/markdown and the context map; return results."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timer = Timer()
    max_words = max(cfg.lstm.max_words, cfg.gru.max_words)
    vocab = WordVocabulary.build(e.words[:max_words] for e in corpus.entries if e.split == "train")
    labels0 = {i: e.label for i, e in enumerate(corpus.entries) if e.label and e.words}
    concepts = concept_targets(cfg, corpus)
    logger.info(f"iteration 0: {len(labels0)} labelled images, {len(set(labels0.values()))} labels, "
        f"vocabulary {len(vocab)} words, {0 if concepts is None else len(concepts.names)} concepts, device {device}")
    iterations = [run_iteration(0, cfg, corpus, vocab, labels0, device, timer, progress=progress, concepts=concepts)]
    results: dict = {"relabel": None, "context_map": None}
    if cfg.iterations > 1:
        with timer("relabel"):
            labels1, results["relabel"], results["context_map"] = relabel_stage(
                cfg, corpus, iterations[0], out_dir, corpus_note)
        iterations.append(run_iteration(1, cfg, corpus, vocab, labels1, device, timer,
                                        init_cnn=iterations[0].cascade.cnn, progress=progress, concepts=concepts,
                                        init_names=iterations[0].cascade.label_names))
    for it in iterations:
        it.metrics = iteration_metrics(it, corpus, max_words, None if concepts is None else concepts.targets)
        it.cascade.metrics = it.metrics
        it.cascade.save(out_dir / f"cascade_iter{it.number}.pt")
    shipped = shipped_iteration(cfg, iterations)
    with timer("findings head"):
        results["findings_head"] = add_findings_head(shipped, corpus)
    shipped.cascade.save(out_dir / "cascade.pt")
    results.update(bleu_report(iterations, corpus, max_words))
    results["shipped_iteration"] = {"iteration": shipped.number, "rule": cfg.ship}
    results["timings_s"] = dict(timer.seconds, total=timer.total())
    results["cpu_s"] = dict(timer.cpu_seconds, total=timer.cpu_total())
    results["history"] = {f"iteration {it.number}": it.history for it in iterations}
    return results


def add_findings_head(it: Iteration, corpus: Corpus) -> dict:
    """Fit the shipped cascade's findings head (pipelines.train.findings) on its train + val images."""
    from pipelines.train.findings import attach_findings_head

    search = it.cascade.search_embedding(it.embeddings).numpy()                        # (N, E)
    concepts = None if it.concepts is None else it.concepts.numpy()                     # (N, K)
    try:
        return attach_findings_head(it.cascade, search, concepts, corpus.entries)
    except ValueError as e:     # a tiny corpus without two classes: the cascade ships without the head
        logger.warning(f"no findings head: {e}")
        return {"skipped": str(e)}


def shipped_iteration(cfg: CascadeConfig, iterations: list[Iteration]) -> Iteration:
    """The iteration `cascade.pt` holds: the last, or (ship = best_val) the one with the higher validation
    17-label accuracy (predicted label collapsed to its base label), the last on a tie. Test is never looked at."""
    if cfg.ship == "last":
        return iterations[-1]

    def val_accuracy(it: Iteration) -> float:
        return it.metrics.get("mined_label_accuracy", {}).get("val", {}).get("accuracy", float("-inf"))
    return max(reversed(iterations), key=val_accuracy)      # max keeps the first best: the last iteration on a tie


def relabel_stage(cfg: CascadeConfig, corpus: Corpus, it0: Iteration, out_dir: Path,
                  corpus_note: str) -> tuple[dict[int, str], dict, dict | None]:
    """Context vectors of train + val images -> k-means relabelling -> 2-D map of one label.

    Returns the iteration-1 label of every relabelled row, a summary, and the map's description.
    """
    from pipelines.train.plots import plot_context_map  # matplotlib only when a run happens

    base, scope = base_labels_for_relabel(cfg, corpus)
    rows = sorted(base)
    context = context_for_rows(it0, corpus, rows)                                  # (len(rows), H)
    outcome = relabel([base[r] for r in rows], context, cases_per_cluster=cfg.cases_per_cluster,
                      exclude=cfg.split_exclude, seed=cfg.seed)
    logger.info(f"relabel ({scope}): {len(set(base.values()))} base labels -> {len(set(outcome.labels))} "
        f"(threshold n >= {outcome.threshold:.1f}; split {outcome.splits})")
    label = cfg.plot_label if cfg.plot_label in set(base.values()) else ""
    label = label or (max(outcome.splits, key=outcome.splits.get) if outcome.splits else "")
    context_map = None
    if label:
        picked = [i for i, r in enumerate(rows) if base[r] == label]
        png = out_dir / f"context_map_{label.replace('/', '_').replace(' ', '_')}.png"
        plot_context_map(context[picked], [outcome.labels[i] for i in picked],
                         [" ".join(corpus.entries[rows[i]].words) for i in picked], png,
                         method=cfg.plot_method, seed=cfg.seed,
                         title=f"context vectors: {label}" + (f", {corpus_note}" if corpus_note else ""))
        context_map = {"label": label, "png": png.name, "images": len(picked), "method": cfg.plot_method}
    return dict(zip(rows, outcome.labels)), dict(relabel_summary(outcome, base, rows), scope=scope), context_map


def relabel_summary(outcome: RelabelResult, base: dict[int, str], rows: list[int]) -> dict:
    """JSON-ready description of the relabelling."""
    return {"base_labels": len(set(base.values())), "new_labels": len(set(outcome.labels)),
            "threshold": round(outcome.threshold, 2), "splits": outcome.splits, "images": len(rows),
            "sizes": dict(sorted(Counter(outcome.labels).items()))}
