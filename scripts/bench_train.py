"""Run the cascade for several seeds and summarise iteration 1 vs iteration 0 (the paper's claim).

    python scripts/bench_train.py --preset tiny --seeds 0 1 2 --out-root /tmp/bench
    python scripts/bench_train.py --seeds 0 1 2 --set cases_per_cluster=1000000 --out-root /tmp/nosplit
    python scripts/bench_train.py --runs data/models/tiny /tmp/bench/seed1   # summarise existing runs

Numbers on the synthetic corpus measure the software, never clinical accuracy.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# two-sided 95% Student t quantiles by degrees of freedom (n - 1 runs)
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228}


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% t confidence interval (0 for a single value)."""
    mean = statistics.mean(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5


def summarise(run_dirs: list[Path]) -> str:
    """Mean, 95% CI and range over runs of each iteration's test metrics and of the paired iteration 1 - 0 deltas."""
    results = [json.loads((d / "results.json").read_text()) for d in run_dirs]
    lines = [f"{len(results)} runs: " + ", ".join(str(d) for d in run_dirs), "",
             "Mean ± half-width of the 95% t confidence interval [min..max] over runs; the last column is the "
             "paired difference per run (a CI that excludes 0 means iteration 1 differs beyond seed noise).", "",
             "| metric (test split) | iteration 0 | iteration 1 | 1 - 0 |", "|---|---|---|---|"]

    def row(name: str, get) -> None:
        pairs = [(get(r["iterations"]["0"]), get(r["iterations"]["1"])) for r in results if "1" in r["iterations"]]
        pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
        if not pairs:
            return

        def fmt(xs: list[float]) -> str:
            mean, half = mean_ci(xs)
            return f"{mean:.1f} ± {half:.1f} [{min(xs):.1f}..{max(xs):.1f}]"
        deltas = [b - a for a, b in pairs]
        lines.append(f"| {name} | {fmt([a for a, _ in pairs])} | {fmt([b for _, b in pairs])} | {fmt(deltas)} |")

    row("17-label accuracy (predicted label collapsed to its base label)",
        lambda m: m["mined_label_accuracy"].get("test", {}).get("accuracy"))
    for subset in ("labelled", "all"):
        for cell in ("lstm", "gru"):
            for n in range(4):
                row(f"{subset} {cell.upper()} BLEU-{n + 1}",
                    lambda m, s=subset, c=cell, k=n: m["bleu"][s][c]["test"]["bleu"][k])
    total = [r["timings_s"]["total"] for r in results]
    cpu = [r["cpu_s"]["total"] for r in results if "cpu_s" in r]
    lines += ["", f"wall time per run: {statistics.mean(total):.0f} s ({min(total):.0f}..{max(total):.0f})"
              + (f"; process CPU time {statistics.mean(cpu):.0f} s ({min(cpu):.0f}..{max(cpu):.0f})" if cpu else "")]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--seeds", type=int, nargs="*", default=[])
    p.add_argument("--out-root", type=Path, default=Path("/tmp/cxrsearch-bench"))
    p.add_argument("--runs", type=Path, nargs="*", default=[], help="existing run folders to summarise")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override passed to every run (repeatable)")
    args = p.parse_args(argv)
    from pipelines.cli import train

    runs = list(args.runs)
    for seed in args.seeds:
        out = args.out_root / f"seed{seed}"
        code = train.main(["--preset", args.preset, "--set", f"seed={seed}", "--out", str(out), "--no-progress",
                           *[a for item in args.overrides for a in ("--set", item)]])
        if code:
            return code
        runs.append(out)
    if not runs:
        p.error("give --seeds or --runs")
    print(summarise(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
