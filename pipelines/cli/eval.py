"""Measure search relevance (`eval search`) and report-text reading (`eval assertion`) against real MeSH terms.

    cxrsearch eval search [--queries FILE] [--split test] [--backend embedded|es] [--out DIR]
    cxrsearch eval assertion [--split all|train|val|test] [--out DIR]

`eval search` runs the committed query set (pipelines/evaluation/queries.json) on the images of one
split, relevance from each image's MeSH major terms (never from generated text): every source mode
(all, report, generated), the ablation ladder (BM25 only, + concepts, + negation, + vectors), the
vector retriever from pixels, and RRF beside the default tiered fusion, and writes JSON and markdown
to --out (default results/search_eval). `eval assertion` measures positive-finding extraction from
report text against the reports' MeSH terms, beside the keyword baseline. The corpus is the
synthetic stand-in: numbers describe the system, not clinical accuracy.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from indexer.errors import IndexerError
from indexer.settings import PROJECT_ROOT

SPLITS = ("train", "val", "test")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch eval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    s = sub.add_parser("search", help="search relevance of the query set on one split")
    s.add_argument("--queries", help="query set (default pipelines/evaluation/queries.json)")
    s.add_argument("--split", choices=SPLITS, default="test", help="images to search and judge (test)")
    s.add_argument("--configs", nargs="*", help="only these configurations (default: all of them)")
    s.add_argument("--no-vectors", action="store_true", help="leave the vector retriever out everywhere")
    s.add_argument("--out", help="folder for the results (default results/search_eval)")
    s.add_argument("--checkpoint", help="cascade checkpoint for the vector retriever (default: the demo one)")
    from pipelines.cli.options import add_backend_options

    add_backend_options(s)
    s.add_argument("--json", action="store_true", help="print the summary as JSON")
    a = sub.add_parser("assertion", help="positive findings read from report text vs the reports' MeSH terms")
    a.add_argument("--split", choices=("all", *SPLITS), default="all",
                   help="reports of one split, or all (default)")
    a.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    a.add_argument("--out", help="folder for the results (default results/assertion_eval)")
    a.add_argument("--json", action="store_true", help="print JSON")
    return p


# configuration name -> (source, retrievers, negation, fusion)
CONFIGS: dict[str, tuple[str, tuple[str, ...], bool, str]] = {
    "all": ("all", ("concepts", "lexical"), True, "tiered"),
    "report": ("report", ("concepts", "lexical"), True, "tiered"),
    "generated": ("generated", ("concepts", "lexical"), True, "tiered"),
    "ablation: BM25 only": ("all", ("lexical",), False, "tiered"),
    "ablation: + concepts": ("all", ("concepts", "lexical"), False, "tiered"),
    "ablation: + negation (the default)": ("all", ("concepts", "lexical"), True, "tiered"),
    "ablation: + vectors": ("all", ("concepts", "lexical", "vectors"), True, "tiered"),
    "generated + vectors": ("generated", ("concepts", "lexical", "vectors"), True, "tiered"),
    "fusion: RRF, all": ("all", ("concepts", "lexical"), True, "rrf"),
    "fusion: RRF, report": ("report", ("concepts", "lexical"), True, "rrf"),
    "fusion: RRF, generated": ("generated", ("concepts", "lexical"), True, "rrf"),
}


def split_images(root: Path, split: str) -> dict[str, list[str]]:
    """image id -> MeSH major terms of every image of `split` in the manifest."""
    from pipelines.settings import manifest_path

    path = manifest_path(root)
    if not path.is_file():
        raise IndexerError(f"no manifest at {path}: run `cxrsearch data prepare` first")
    out = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            e = json.loads(line)
            if e["split"] == split:
                out[e["image_id"]] = list(e.get("mesh") or [])
    return out


def run_search_eval(args: argparse.Namespace) -> dict:
    from indexer.query import SearchRequest
    from indexer.settings import data_dir
    from indexer.text import open_backend
    from pipelines.cli.options import es_settings, index_dir
    from pipelines.cli.search import open_service
    from pipelines.evaluation.search import QUERIES_FILE, evaluate_run, load_queries

    queries = load_queries(args.queries or QUERIES_FILE)
    images = split_images(data_dir(args.data_dir), args.split)
    chosen = args.configs or list(CONFIGS)
    unknown = [c for c in chosen if c not in CONFIGS]
    if unknown:
        raise IndexerError(f"unknown configuration(s) {unknown}; valid: {list(CONFIGS)}")
    summary: dict = {"split": args.split, "images": len(images), "queries_in_set": len(queries),
                     "backend": args.backend, "configs": {}, "by_category": {}, "per_query": {}}
    with open_backend(args.backend, index_dir=index_dir(args), es_settings=es_settings(args)) as backend:
        service = open_service(args, backend, vectors_wanted=not args.no_vectors)
        summary["index_version"] = backend.live_version()
        for name in chosen:
            source, retrievers, negation, fusion = CONFIGS[name]
            if not negation and args.backend != "embedded" and not args.configs:
                # only the embedded backend keeps the raw report text this ablation reads; asked for by name,
                # the query service's error says so
                summary.setdefault("configs_skipped", {})[name] = "raw report text is kept by the embedded backend only"
                continue
            if args.no_vectors:
                retrievers = tuple(r for r in retrievers if r != "vectors")
            used: set[str] = set()
            skipped: dict[str, str] = {}

            def search(q, source=source, retrievers=retrievers, negation=negation, fusion=fusion, used=used,
                       skipped=skipped):
                body = service.search(SearchRequest(q.text, k=1000, source=source, filters={"split": [args.split]},
                                                    facets=(), retrievers=retrievers, negation=negation,
                                                    fusion=fusion, explain=False))
                used.update(body["retrievers"])
                skipped.update(body.get("skipped", {}))
                return [r["image_id"] for r in body["results"]]

            started = time.perf_counter()
            run = evaluate_run(name, queries, images, search)
            summary["configs"][name] = {**run.summary(), "source": source, "fusion": fusion, "negation": negation,
                                        "retrievers_used": sorted(used), "skipped": skipped,
                                        "seconds": round(time.perf_counter() - started, 2)}
            categories = sorted({q["category"] for q in run.per_query.values()})
            summary["by_category"][name] = {c: {"nDCG@10": run.mean("nDCG@10", c), "P@10": run.mean("P@10", c),
                                                "queries": sum(1 for q in run.per_query.values() if q["category"] == c)}
                                            for c in categories}
            summary["per_query"][name] = run.per_query
    summary["queries_evaluated"] = max((c["queries"] for c in summary["configs"].values()), default=0)
    return summary


def markdown(summary: dict) -> str:
    lines = [f"# Search evaluation: {summary['split']} split, {summary['backend']} backend", "",
             f"Index version {summary.get('index_version')}; {summary['images']} images; "
             f"{summary['queries_evaluated']} of {summary['queries_in_set']} queries "
             "have relevant images in this split. "
             "Relevance from the reports' MeSH major terms. SYNTHETIC corpus: these numbers measure the system, "
             "not clinical accuracy.", "",
             "| configuration | P@10 | nDCG@10 | MAP | retrievers used |", "|---|---|---|---|---|"]
    for name, c in summary["configs"].items():
        lines.append(f"| {name} | {c['P@10']:.3f} | {c['nDCG@10']:.3f} | {c['MAP']:.3f} | "
                     f"{', '.join(c['retrievers_used'])} |")
    skipped = {n: c["skipped"] for n, c in summary["configs"].items() if c.get("skipped")}
    if skipped:
        lines += ["", "Retrievers that could not run: " + "; ".join(f"{n}: {s}" for n, s in skipped.items())]
    if summary.get("configs_skipped"):
        lines += ["", "Configurations not run on this backend: "
                  + "; ".join(f"{n} ({why})" for n, why in summary["configs_skipped"].items())]
    cats = sorted({c for per in summary["by_category"].values() for c in per})
    lines += ["", "nDCG@10 by query category:", "",
              "| configuration | " + " | ".join(cats) + " |", "|---|" + "---|" * len(cats)]
    for name, per in summary["by_category"].items():
        lines.append(f"| {name} | " + " | ".join(f"{per[c]['nDCG@10']:.2f}" if c in per else "-" for c in cats) + " |")
    return "\n".join(lines) + "\n"


def write(summary: dict, out: Path, stem: str, md: str) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / f"{stem}.json", out / f"{stem}.md"
    json_path.write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    md_path.write_text(md, encoding="utf-8")
    return json_path, md_path


def run_assertion_eval(args: argparse.Namespace) -> dict:
    from indexer.settings import data_dir
    from pipelines.corpus import load_corpus
    from pipelines.evaluation.assertion import evaluate_assertion

    root = data_dir(args.data_dir)
    corpus = load_corpus(root)
    reports = list(corpus.reports)
    if args.split != "all":
        wanted = set()
        with open(root / "manifest.jsonl", encoding="utf-8") as fh:
            for line in fh:
                e = json.loads(line)
                if e["split"] == args.split:
                    wanted.add(e["report_id"])
        reports = [r for r in reports if r.report_id in wanted]
    return {"split": args.split, **evaluate_assertion(reports).to_dict()}


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        if args.what == "search":
            summary = run_search_eval(args)
            out = Path(args.out) if args.out else PROJECT_ROOT / "results" / "search_eval"
            md = markdown(summary)
            paths = write(summary, out, f"{summary['backend']}-{summary['split']}", md)
            print(json.dumps({k: summary[k] for k in ("split", "backend", "configs")}, indent=1) if args.json else md)
            print(f"written: {paths[0]}, {paths[1]}", file=sys.stderr)
        else:
            result = run_assertion_eval(args)
            out = Path(args.out) if args.out else PROJECT_ROOT / "results" / "assertion_eval"
            md = (f"# Positive findings read from report text ({result['split']} reports)\n\n"
                  f"| | precision | recall |\n|---|---|---|\n"
                  f"| assertion-aware (indexer.assertion) | {result['precision']:.3f} | {result['recall']:.3f} |\n"
                  f"| keyword baseline (every mention) | {result['baseline_keyword']['precision']:.3f} | "
                  f"{result['baseline_keyword']['recall']:.3f} |\n\n"
                  f"{result['reports']} reports, {result['mesh_findings']} MeSH findings the lexicon can express "
                  f"({result['mesh_out_of_scope']} it cannot), {result['positive_mentions']} positive text findings.\n")
            paths = write(result, out, f"assertion-{result['split']}", md)
            print(json.dumps(result, indent=1) if args.json else md)
            print(f"written: {paths[0]}, {paths[1]}", file=sys.stderr)
    except (IndexerError, ValueError) as e:
        print(f"cxrsearch eval: error: {e}", file=sys.stderr)
        return 1
    return 0
