"""Evaluation tables of a cascade run (paper Tables 2-5) and the results JSON / markdown files."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from models.bleu import bleu_table
from models.relabel import base_label
from pipelines.train.cnn_train import accuracy
from pipelines.train.data import Corpus

if TYPE_CHECKING:
    from pipelines.train.cascade import Iteration

SPLITS = ("train", "val", "test")
# "labelled": images with a mined single label (the paper's Table 4 domain), the same images
# in both iterations; "all": every image with an annotation.
EVAL_SETS = ("labelled", "all")


def eval_rows(corpus: Corpus, split: str, subset: str) -> list[int]:
    """Rows of `split` in an evaluation subset ('labelled' or 'all')."""
    return [i for i, e in enumerate(corpus.entries)
            if e.split == split and e.words and (subset == "all" or e.label)]


def bleu_for(generated: Sequence[Sequence[str]], corpus: Corpus, rows: Sequence[int], max_words: int) -> dict:
    """BLEU-1..4 (percent) and case counts of generated vs true annotations (truncated to max_words)."""
    table = bleu_table([list(corpus.entries[r].words[:max_words]) for r in rows], [generated[r] for r in rows])
    return {"bleu": [None if s.score is None else round(s.score, 2) for s in table.values()],
            "cases": [s.cases for s in table.values()]}


def concept_metrics(it: Iteration, corpus: Corpus, targets=None) -> dict | None:
    """Per-split mean/median AUC of the concept head and the test split's per-concept table (None: no head)."""
    from pipelines.train.concepts import auc_summary, auc_table, image_concepts, target_matrix

    names = it.cascade.concept_names
    if it.concepts is None or not names:
        return None
    if targets is None:
        targets = target_matrix(image_concepts(corpus.entries), names)
    out: dict = {"names": len(names)}
    for split in SPLITS:
        rows = [i for i, e in enumerate(corpus.entries) if e.split == split]
        if rows:
            table = auc_table(it.concepts[rows].numpy(), targets[rows].numpy(), names)
            out[split] = auc_summary(table)
            if split == "test":
                out["test_table"] = table
    return out


def iteration_metrics(it: Iteration, corpus: Corpus, max_words: int, concept_targets=None) -> dict:
    """CNN accuracy per split (on the labels this iteration trained on), BLEU tables and concept AUCs."""
    acc = {}
    for split in SPLITS:
        rows = [r for r in sorted(it.labels) if corpus.entries[r].split == split]
        if rows:
            value = accuracy(it.probs[rows], [it.labels[r] for r in rows], it.cascade.label_names)
            acc[split] = {"accuracy": round(100 * value, 2), "images": len(rows)}
    base = {}
    # predicted label collapsed to its base label vs the mined label: comparable across iterations
    for split in SPLITS:
        rows = eval_rows(corpus, split, "labelled")
        if rows:
            predicted = [base_label(it.cascade.label_names[i]) for i in it.probs[rows].argmax(1).tolist()]
            hits = sum(p == corpus.entries[r].label for p, r in zip(predicted, rows))
            base[split] = {"accuracy": round(100 * hits / len(rows), 2), "images": len(rows)}
    bleu = {subset: {cell: {split: bleu_for(gen, corpus, eval_rows(corpus, split, subset), max_words)
                            for split in SPLITS}
                     for cell, gen in it.generated.items()}
            for subset in EVAL_SETS}
    metrics = {"iteration": it.number, "labels": len(it.cascade.label_names), "cnn_accuracy": acc,
               "mined_label_accuracy": base, "bleu": bleu}
    concepts = concept_metrics(it, corpus, concept_targets)
    if concepts is not None:
        metrics["concepts"] = concepts
    return metrics


def bleu_report(iterations: Sequence[Iteration], corpus: Corpus, max_words: int, examples: int = 8) -> dict:
    """Per-iteration metrics, the iteration-1-vs-0 comparison, and a few test examples."""
    report: dict = {"iterations": {str(it.number): it.metrics for it in iterations}}
    if len(iterations) > 1:
        report["iteration1_vs_0"] = compare(iterations[0].metrics, iterations[1].metrics)
    test = eval_rows(corpus, "test", "labelled")[:examples]
    last = iterations[-1]
    report["examples"] = [{"image_id": corpus.entries[r].image_id, "true": list(corpus.entries[r].words),
                           **{f"iter{it.number}_{cell}": it.generated[cell][r] for it in iterations
                              for cell in it.generated}} for r in test]
    report["final_iteration"] = last.number
    return report


def compare(m0: dict, m1: dict) -> dict:
    """Iteration 1 minus iteration 0, BLEU points per subset/cell/split, and mean BLEU-1..4 wins."""
    out: dict = {}
    for subset in EVAL_SETS:
        for cell in m0["bleu"][subset]:
            for split in SPLITS:
                b0, b1 = m0["bleu"][subset][cell][split]["bleu"], m1["bleu"][subset][cell][split]["bleu"]
                delta = [None if x is None or y is None else round(y - x, 2) for x, y in zip(b0, b1)]
                valid = [d for d in delta if d is not None]
                out[f"{subset}/{cell}/{split}"] = {"delta": delta, "mean_delta": round(sum(valid) / len(valid), 2)
                                                   if valid else None}
    return out


def _fmt(values: Sequence[float | None]) -> str:
    return " / ".join("-" if v is None else f"{v:.1f}" for v in values)


def to_markdown(results: dict) -> str:
    """The human-readable results page."""
    lines = [f"# Cascade results: preset `{results.get('preset', '?')}`", ""]
    if results.get("corpus"):
        lines += [f"Corpus: {results['corpus']}", ""]
    if results.get("machine"):
        m = results["machine"]
        lines += [f"Machine: {m.get('processor')} ({m.get('cpus')} CPUs, {m.get('torch_threads')} torch threads), "
                  f"{m.get('cuda_device', 'no GPU')}, torch {m.get('torch')}; wall time "
                  f"{results.get('timings_s', {}).get('total', '?')} s, process CPU time "
                  f"{results.get('cpu_s', {}).get('total', '?')} s, load average "
                  f"{results.get('load_average', {}).get('start', '?')} at the start, "
                  f"{results.get('load_average', {}).get('end', '?')} at the end", ""]
    shipped = results.get("shipped_iteration")
    if shipped:
        lines += [f"Shipped in `cascade.pt`: iteration {shipped['iteration']} (rule `ship={shipped['rule']}`"
                  + (": the higher validation 17-label accuracy" if shipped["rule"] == "best_val" else "") + ")", ""]
    lines += ["## CNN accuracy (%)", "", "| iteration | labels | train | val | test |", "|---|---|---|---|---|"]
    for number, m in results["iterations"].items():
        cells = [f"{m['cnn_accuracy'][s]['accuracy']:.1f} (n={m['cnn_accuracy'][s]['images']})"
                 if s in m["cnn_accuracy"] else "-" for s in SPLITS]
        lines.append(f"| {number} | {m['labels']} | " + " | ".join(cells) + " |")
    lines += ["", "Predicted label (cluster collapsed to its base label) vs the mined single label, "
              "the same images in both iterations (%):", "", "| iteration | train | val | test |", "|---|---|---|---|"]
    for number, m in results["iterations"].items():
        acc = m.get("mined_label_accuracy", {})
        lines.append(f"| {number} | " + " | ".join(f"{acc[s]['accuracy']:.1f}" if s in acc else "-"
                                                   for s in SPLITS) + " |")
    concept_rows = [(n, m["concepts"]) for n, m in results["iterations"].items() if m.get("concepts")]
    if concept_rows:
        lines += ["", "## Concept head: ROC AUC over concept keys (mean / median, concepts scored)", "",
                  "| iteration | concepts | train | val | test |", "|---|---|---|---|---|"]
        for number, c in concept_rows:
            cells = [f"{c[s]['mean_auc']:.3f} / {c[s]['median_auc']:.3f} ({c[s]['concepts']})"
                     if c.get(s, {}).get("mean_auc") is not None else "-" for s in SPLITS]
            lines.append(f"| {number} | {c['names']} | " + " | ".join(cells) + " |")
    for subset in EVAL_SETS:
        title = ("images with a mined label (same images in both iterations)" if subset == "labelled"
                 else "every annotated image")
        lines += ["", f"## BLEU-1 / -2 / -3 / -4: {title}", "",
                  "| iteration | RNN | train | val | test |", "|---|---|---|---|---|"]
        for number, m in results["iterations"].items():
            for cell, per_split in m["bleu"][subset].items():
                lines.append(f"| {number} | {cell.upper()} | "
                             + " | ".join(_fmt(per_split[s]["bleu"]) for s in SPLITS) + " |")
    if "iteration1_vs_0" in results:
        lines += ["", "## Iteration 1 minus iteration 0 (BLEU points, mean of BLEU-1..4)", ""]
        for key, value in results["iteration1_vs_0"].items():
            lines.append(f"- {key}: {_fmt(value['delta'])} (mean {value['mean_delta']})")
    if results.get("relabel"):
        r = results["relabel"]
        lines += ["", f"## Relabelling: {r['base_labels']} -> {r['new_labels']} labels "
                  f"(n >= {r['threshold']} split; k per label: {r['splits']})"]
    if results.get("context_map"):
        c = results["context_map"]
        lines += ["", f"Context map ({c['method']}): `{c['png']}`, label `{c['label']}`, {c['images']} images"]
    head = results.get("findings_head")
    if head and head.get("accuracy"):
        lines += ["", f"## Findings head (mined label or several findings; fitted on {'+'.join(head['fit_splits'])}, "
                  f"C {head['c']:g}, concept weight {head['concept_weight']:g})", "",
                  "Top-class accuracy over the 17 mined labels and OTHER (%): "
                  + ", ".join(f"{s} {a}" for s, a in head["accuracy"].items())]
    elif head and head.get("skipped"):
        lines += ["", f"Findings head: none ({head['skipped']})"]
    if results.get("examples"):
        lines += ["", "## Test examples", ""]
        for ex in results["examples"]:
            gens = "; ".join(f"{k}: {' '.join(v) or '-'}" for k, v in ex.items() if k.startswith("iter"))
            lines.append(f"- `{ex['image_id']}` true: {' '.join(ex['true'])} | {gens}")
    lines += ["", "Timings (s): " + ", ".join(f"{k} {v}" for k, v in results.get("timings_s", {}).items())]
    return "\n".join(lines) + "\n"


def write_results(results: dict, out_dir: Path) -> tuple[Path, Path]:
    """results.json and results.md in `out_dir`."""
    out_dir = Path(out_dir)
    json_path, md_path = out_dir / "results.json", out_dir / "results.md"
    json_path.write_text(json.dumps(results, indent=1, default=str) + "\n")
    md_path.write_text(to_markdown(results))
    return json_path, md_path
