"""Search the text index (BM25 over annotations and reports, with filters) and print the top hits."""
from __future__ import annotations

import argparse
import json
import sys

from indexer.errors import IndexerError
from indexer.text import open_backend
from pipelines.cli.reindex import add_backend_options, es_settings, index_dir
from pipelines.errors import PipelineError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch search", description=__doc__)
    p.add_argument("text", nargs="+", help="what to look for, e.g. calcified granuloma upper lobe right")
    p.add_argument("--k", type=int, default=10, help="number of hits (10)")
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                   help="keep hits whose FIELD has VALUE (repeatable; values of one field are OR-ed), "
                        "e.g. --filter view=frontal --filter ancestors='Lung Diseases'")
    p.add_argument("--facets", nargs="*", metavar="FIELD", help="facet fields to count (default: a standard set)")
    add_backend_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """['view=frontal', 'laterality=left', 'laterality=right'] -> {'view': [...], 'laterality': [...]}."""
    filters: dict[str, list[str]] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise PipelineError(f"--filter {item!r}: expected FIELD=VALUE, e.g. view=frontal")
        filters.setdefault(name.strip(), []).append(value.strip())
    return filters


def format_result(query: str, result) -> str:
    """The hits as a table: rank, image id, score, annotation, matched fields; then facet counts.

    The annotation shown is the cascade's when it ran; the report's MeSH annotation follows when it differs.
    """
    lines = [f"{result.total} match(es) for {query!r} ({result.backend}, version {result.version})"]
    for rank, hit in enumerate(result.hits, 1):
        note = " [synthetic]" if hit.document.get("synthetic") else ""
        lines.append(f"{rank:3d}. {hit.image_id:24s} {hit.score:7.3f}  {hit.annotation[:70]}{note}")
        lines.append(f"     matched: {', '.join(hit.matched_fields) or '-'}")
        report = hit.document.get("report_annotation")
        if report and report != hit.annotation:  # the cascade wrote something else than the radiologist
            lines.append(f"     report annotation (radiologist): {report[:70]}")
    for name, counts in result.facets.items():
        if counts:
            lines.append(f"  {name}: " + ", ".join(f"{value} ({n})" for value, n in list(counts.items())[:8]))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    query = " ".join(args.text)
    filters = parse_filters(args.filter)
    try:
        with open_backend(args.backend, index_dir=index_dir(args), es_settings=es_settings(args)) as backend:
            result = backend.search(query, filters=filters, k=args.k, facets=args.facets)
    except IndexerError as e:
        print(f"cxrsearch search: error: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"query": query, "filters": filters, **result.to_dict()}, indent=2, ensure_ascii=False))
    else:
        print(format_result(query, result))
    return 0
