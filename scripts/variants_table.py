"""Render models/presets/VARIANTS.md's tables from the logs of scripts/rank_cnn.py and of full cascade runs.

    python scripts/variants_table.py                       # CNN ranking runs (models/presets/variants.jsonl)
    python scripts/variants_table.py --runs /tmp/bench/seed0 data/models/tiny   # + full cascade runs

Prints markdown; every number is measured on the SYNTHETIC corpus.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _overrides(row: dict) -> str:
    skip = {"cnn_train.channels_last=true", "cnn_train.schedule=onecycle"}
    return " ".join(f"`{o}`" for o in row["overrides"] if o not in skip) or "-"


def ranking_table(path: Path) -> str:
    """One row per scripts/rank_cnn.py run (iteration-0 CNN only)."""
    lines = ["| # | variant | overrides (on `tiny`) | train images | samples | val acc | test acc | "
             "test: diseased right | test: normal right | concept AUC (test) | train wall s | train CPU s | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for i, line in enumerate(path.read_text().splitlines(), 1):
        r = json.loads(line)
        per = r["test_per_label"]
        hit = sum(int(v.split("/")[0]) for k, v in per.items() if k != "normal")
        total = sum(int(v.split("/")[1]) for k, v in per.items() if k != "normal")
        auc = (r.get("test_concept_auc") or {}).get("mean_auc")
        lines.append(f"| {i} | {r['name']} | {_overrides(r)} | {r['train_images']} | {r['samples']} | "
                     f"{r['val_acc']:.1f} | {r['test_acc']:.1f} | {hit}/{total} | {per.get('normal', '-')} | "
                     f"{'-' if auc is None else f'{auc:.3f}'} | {r['train_wall_s']:.0f} | {r['train_cpu_s']:.0f} | "
                     f"{r['load_avg'][0]:.1f}-{r['load_avg'][1]:.1f} |")
    return "\n".join(lines)


def runs_table(runs: list[Path]) -> str:
    """One row per full cascade run (results.json of `cxrsearch train`)."""
    lines = ["| run | seed | it0 test acc | it1 mined-label test acc | GRU test BLEU-1/2 it0 | GRU test BLEU-1/2 it1 | "
             "wall min | CPU min |", "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        r = json.loads((run / "results.json").read_text())
        it0, it1 = r["iterations"]["0"], r["iterations"].get("1")
        g = lambda m: "/".join(f"{b:.1f}" for b in m["bleu"]["labelled"]["gru"]["test"]["bleu"][:2])  # noqa: E731
        cpu = r.get("cpu_s", {}).get("total")
        lines.append(f"| {run} | {r['config']['seed']} | {it0['cnn_accuracy']['test']['accuracy']:.1f} | "
                     f"{it1['mined_label_accuracy']['test']['accuracy'] if it1 else '-'} | {g(it0)} | "
                     f"{g(it1) if it1 else '-'} | {r['timings_s']['total'] / 60:.1f} | "
                     f"{'-' if cpu is None else f'{cpu / 60:.1f}'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--log", type=Path, default=ROOT / "models" / "presets" / "variants.jsonl")
    p.add_argument("--runs", type=Path, nargs="*", default=[])
    args = p.parse_args(argv)
    print(ranking_table(args.log))
    if args.runs:
        print()
        print(runs_table(args.runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
