"""Search the index as a radiologist means it: concepts, sides, lobes and negation, with an explanation per hit."""
from __future__ import annotations

import argparse
import json
import sys

from indexer.errors import IndexerError
from indexer.text import open_backend
from pipelines.cli.options import add_backend_options, es_settings, index_dir
from pipelines.errors import PipelineError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch search", description=__doc__)
    p.add_argument("text", nargs="*", help="what to look for, e.g. pulmonary disease in upper right lobe; "
                                            "nothing (or '') lists images by the filters alone")
    p.add_argument("--k", type=int, default=10, help="results per page (10)")
    p.add_argument("--page", type=int, default=1, help="page of results (1)")
    p.add_argument("--source", choices=("all", "report", "generated"), default="all",
                   help="all (default): reports and what the cascade read from pixels; report: radiologists' text "
                        "and MeSH only; generated: the cascade only (images without a report)")
    p.add_argument("--filter", action="append", default=[], metavar="FIELD=VALUE",
                   help="keep results whose FIELD has VALUE (repeatable; values of one field are OR-ed), "
                        "e.g. --filter view=frontal --filter split=test --filter ancestors='Lung Diseases'")
    p.add_argument("--facets", nargs="*", metavar="FIELD", help="facet fields to count (default: a standard set)")
    p.add_argument("--vectors", action="store_true",
                   help="also re-rank by the cascade's joint context vectors (loads torch and FAISS; it did not "
                        "improve relevance in the evaluation, see the README)")
    p.add_argument("--checkpoint", help="cascade checkpoint for the vector retriever (default: DATA_DIR/models/"
                                        "tiny/cascade.pt when the index's vectors were made with it)")
    add_backend_options(p)
    p.add_argument("--json", action="store_true", help="print the whole answer as JSON")
    return p


def open_service(args: argparse.Namespace, backend, vectors_wanted: bool = True):
    """The query service over `backend`, with the live vectors and a query encoder when they exist."""
    from indexer.query import QueryService

    vectors = encoder = None
    if vectors_wanted:
        root = index_dir(args)
        version = backend.live_version()
        vector_root = root / "vectors"
        if version is not None and vector_root.is_dir() and any(vector_root.glob(f"*/{version}")):
            from indexer.query.encoder import QueryEncoder
            from indexer.vectors.live import LiveVectors

            vectors = LiveVectors(root, backend)
            checkpoint = getattr(args, "checkpoint", None) or (root.parent / "models" / "tiny" / "cascade.pt")
            try:
                model_version = vectors.get("context")[1].model_version
            except IndexerError:
                model_version = None
            encoder = QueryEncoder(checkpoint, model_version)
    return QueryService(backend, vectors=vectors, encoder=encoder)


def format_answer(body: dict) -> str:
    """Results as text: how the query was read, then rank, image, score, annotation and why; then facets."""
    parsed = body["parsed"]
    lines = [f"{body['total']} match(es) for {body['query']!r} ({body['backend']}, source {body['source']}, "
             f"page {body['page']}, retrievers {', '.join(body['retrievers']) or '-'})"]
    read = []
    for c in parsed["concepts"]:
        if c["kind"] == "negation":
            continue
        tag = ("not " if c.get("negated") else "") + c["kind"]
        fixed = f" (from {c['corrected_from']!r})" if c.get("corrected_from") else ""
        read.append(f"{c['text']} [{tag}: {c['value']}]{fixed}")
    if read:
        lines.append("  read as: " + "; ".join(read))
    for c in parsed.get("corrections", []):
        lines.append(f"  corrected {c['from']!r} -> {c['to']!r}")
    if parsed["unrecognised"]:
        lines.append("  not recognised (searched as words): " + ", ".join(parsed["unrecognised"]))
    for warning in body.get("warnings", []):
        lines.append(f"  warning: {warning}")
    for name, why in body.get("skipped", {}).items():
        lines.append(f"  {name} retriever not used: {why}")
    start = (body["page"] - 1) * body["k"]
    for rank, hit in enumerate(body["results"], start + 1):
        note = " [synthetic]" if hit["synthetic"] else ""
        ex = hit.get("explanation") or {}
        shown, report = hit["annotation"] or "", hit.get("report_annotation")
        other = report if report and report != shown else None
        if other and any(m.get("source") != "generated" for m in ex.get("matched", [])):
            # the report matched: its annotation leads, the cascade's follows (it may say another side)
            lines.append(f"{rank:3d}. {hit['image_id']:24s} {hit['score']:8.4f}  {other[:70]}{note}")
            lines.append(f"     model (from pixels): {shown[:90]}")
        else:
            lines.append(f"{rank:3d}. {hit['image_id']:24s} {hit['score']:8.4f}  {shown[:70]}{note}")
            if other:
                lines.append(f"     report (radiologist): {other[:90]}")
        why = [f"{m['concept']} <- {m['source']} ({m['match']})" for m in ex.get("matched", [])]
        ranks = [f"{name} #{r['rank']}" for name, r in ex.get("retrievers", {}).items()]
        if why or ranks:
            lines.append(f"     why: {'; '.join(why) or '-'}  [{', '.join(ranks)}]")
        if ex.get("note"):
            lines.append(f"     note: {ex['note']}")
    for name, counts in body["facets"].items():
        if counts:
            lines.append(f"  {name}: " + ", ".join(f"{value} ({n})" for value, n in list(counts.items())[:8]))
    if body.get("synthetic"):
        lines.append("  (synthetic stand-in corpus: these results measure the system, not clinical accuracy)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from indexer.query import SearchRequest, parse_filters

    args = parser().parse_args(argv)
    query = " ".join(args.text)
    try:
        filters = parse_filters([f"{item}" for item in args.filter])
        retrievers = ("concepts", "lexical", "vectors") if args.vectors else None
        request = SearchRequest(query, k=args.k, page=args.page, source=args.source, filters=filters,
                                facets=args.facets, retrievers=retrievers)
        with open_backend(args.backend, index_dir=index_dir(args), es_settings=es_settings(args)) as backend:
            service = open_service(args, backend, vectors_wanted=args.vectors and args.source != "report")
            body = service.search(request)
    except IndexerError as e:
        print(f"cxrsearch search: error: {e}", file=sys.stderr)
        return 1
    except PipelineError as e:
        print(f"cxrsearch search: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2, ensure_ascii=False) if args.json else format_answer(body))
    return 0
