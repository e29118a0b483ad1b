"""Bench sections on quality: the cascade's tables (accuracy, BLEU, iteration 1 vs 0) and the search evaluation."""
from __future__ import annotations

import json
from pathlib import Path

from pipelines.bench.report import QUALITY, SPEED, Figure, SectionResult
from pipelines.bench.section import BenchContext, Section, register


def results_file(ctx: BenchContext) -> Path | None:
    if ctx.checkpoint is None:
        return None
    path = Path(ctx.checkpoint).parent / "results.json"
    return path if path.is_file() else None


@register
class CascadeTables(Section):
    name = "cascade"
    title = "The cascade: CNN accuracy, BLEU, iteration 1 vs 0 (from the checkpoint's training run)"

    def available(self, ctx: BenchContext) -> str | None:
        if results_file(ctx) is None:
            return f"no results.json beside the checkpoint {ctx.checkpoint} (written by `cxrsearch train`)"
        return None

    def run(self, ctx: BenchContext) -> SectionResult:
        path = results_file(ctx)
        data = json.loads(path.read_text(encoding="utf-8"))
        result = SectionResult(self.name, self.title)
        result.notes.append(f"Read from {path} (preset {data.get('preset')!r}, written by `cxrsearch train`, not "
                            "re-measured in this run). BLEU-N only over cases with >= N words (the paper's protocol).")
        rows, bleu_rows = [], []
        for it, block in sorted((data.get("iterations") or {}).items()):
            acc = block.get("cnn_accuracy", {})
            rows.append([it, block.get("labels"), *(acc.get(s, {}).get("accuracy") for s in ("train", "val", "test"))])
            test_acc = acc.get("test", {}).get("accuracy")
            if test_acc is not None:
                result.add(Figure(f"cascade.it{it}.test_accuracy", f"iteration {it}: CNN test accuracy", test_acc, "%",
                                  QUALITY))
            for subset, rnns in (block.get("bleu") or {}).items():
                for rnn, splits in rnns.items():
                    test = splits.get("test", {}).get("bleu")
                    if test:
                        bleu_rows.append([it, subset, rnn, *test])
        result.table("CNN accuracy (%)", ["iteration", "labels", "train", "val", "test"], rows)
        result.table("Test BLEU-1..4", ["iteration", "images", "RNN", "BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4"],
                     bleu_rows)
        deltas = data.get("iteration1_vs_0") or {}
        result.table("Iteration 1 minus iteration 0 (BLEU-1..4)", ["images/RNN/split", "delta", "mean"],
                     [[k, " / ".join(f"{x:+.1f}" for x in v.get("delta", [])), v.get("mean_delta")]
                      for k, v in sorted(deltas.items())])
        total = (data.get("timings_s") or {}).get("total")
        if total is not None:
            m = data.get("machine") or {}
            result.add(Figure(f"cascade.train_{data.get('preset')}_s", f"train the {data.get('preset')} cascade "
                              f"(both iterations)", total, "s", SPEED, baseline=True,
                              note=f"on {m.get('cpus')} CPUs, {m.get('torch_threads')} torch thread(s), "
                                   f"{data.get('device')}; taken by `cxrsearch train`"))
        return result


@register
class SearchQuality(Section):
    name = "search_quality"
    title = "Search quality per source mode, ablation and fusion (`cxrsearch eval search`)"

    def available(self, ctx: BenchContext) -> str | None:
        try:
            from pipelines.cli import COMMANDS
        except ImportError:
            COMMANDS = {}
        if "eval" not in COMMANDS:
            return "the search evaluation (`cxrsearch eval search`) is not in this build"
        if ctx.live_index is None or not (Path(ctx.live_index) / "text").exists():
            return (f"no live embedded index at {ctx.live_index} to evaluate (`make demo` builds it; the "
                    "evaluation judges the whole corpus, not the bench's subset)")
        return None

    def run(self, ctx: BenchContext) -> SectionResult:
        from pipelines.cli import eval as eval_cli

        data = Path(ctx.live_index).parent
        args = eval_cli.parser().parse_args(["search", "--data-dir", str(data), "--index-dir", str(ctx.live_index),
                                             "--split", "test"])
        summary = eval_cli.run_search_eval(args)
        result = SectionResult(self.name, self.title)
        result.notes.append(
            f"`cxrsearch eval search` on the live index of {data} (version {summary.get('index_version')}): "
            f"{summary['queries_evaluated']} of {summary['queries_in_set']} queries of the committed set have "
            f"relevant images among the {summary['images']} test-split images; relevance from the reports' MeSH "
            "major terms, never from generated text.")
        rows = []
        for name, c in summary["configs"].items():
            key = "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_")
            for metric in ("P@10", "nDCG@10", "MAP"):
                result.add(Figure(f"search_quality.{key}.{metric.lower().replace('@', '')}", f"{name}: {metric}",
                                  c[metric], metric, QUALITY))
            rows.append([name, round(c["P@10"], 3), round(c["nDCG@10"], 3), round(c["MAP"], 3),
                         ", ".join(c.get("retrievers_used", []))])
        result.table("Per configuration", ["configuration", "P@10", "nDCG@10", "MAP", "retrievers used"], rows)
        return result
