"""Find the indexed images most similar to one indexed image, by findings, CNN embedding or context vector."""
from __future__ import annotations

import argparse
import json
import sys

from indexer.errors import IndexerError
from indexer.query.similar import DEFAULT_KIND, VIEWS
from indexer.text import open_backend
from pipelines.cli.options import add_backend_options, es_settings, index_dir

MAX_K = 1000


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch similar", description=__doc__)
    p.add_argument("image_id", help="an indexed image, e.g. CXR1_IM-0001-1001")
    p.add_argument("--k", type=int, default=10, help="number of similar images (10)")
    p.add_argument("--kind", choices=("findings", "embedding", "context"), default=DEFAULT_KIND,
                   help="findings (default: the probability that both show the same single finding; they share "
                        "the finding most often), CNN embeddings, or joint image/text context vectors")
    p.add_argument("--view", choices=VIEWS, default="any",
                   help="neighbours of every view (any, default), of the query's view (same), or frontal or "
                        "lateral only")
    p.add_argument("--same-report", action="store_true",
                   help="also list the other images of the same report (the same examination); left out by default")
    add_backend_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def _report_line(item: dict) -> list[str]:
    report = item.get("report_annotation")
    if report and report != item.get("annotation"):
        return [f"     report (radiologist): {report[:100]}"]
    return []


def format_result(result: dict) -> str:
    """The query image, then one line per similar image: rank, image id, cosine similarity, annotation, and the
    radiologist's annotation under it when the cascade wrote another (as `cxrsearch search` shows them)."""
    query = result["query"]
    lines = [f"{len(result['hits'])} image(s) most similar to {result['image_id']} by {result['kind']} "
             f"(model {result['model_version']}, index version {result['version']})",
             f"     query: {(query['annotation'] or '')[:70]}" + (" [synthetic]" if query["synthetic"] else "")]
    lines += _report_line(query)
    for rank, hit in enumerate(result["hits"], 1):
        note = " [synthetic]" if hit["synthetic"] else ""
        lines.append(f"{rank:3d}. {hit['image_id']:24s} {hit['score']:6.3f}  {(hit['annotation'] or '')[:70]}{note}")
        lines += _report_line(hit)
    if result.get("synthetic"):
        lines.append("  (synthetic stand-in images: similarity here measures the system, not clinical likeness)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    from indexer.query import QueryService
    from indexer.query.similar import similar_to_image
    from indexer.vectors.live import LiveVectors

    args = parser().parse_args(argv)
    if not 1 <= args.k <= MAX_K:
        print(f"cxrsearch similar: error: --k {args.k}: must be between 1 and {MAX_K}", file=sys.stderr)
        return 1
    try:
        with open_backend(args.backend, index_dir=index_dir(args), es_settings=es_settings(args)) as backend:
            service = QueryService(backend, vectors=LiveVectors(index_dir(args), backend))
            result = similar_to_image(service, args.image_id, args.k, args.kind, same_report=args.same_report,
                                      view=args.view)
    except IndexerError as e:  # no index, no vectors (VectorStoreNotFound), unknown image id
        print(f"cxrsearch similar: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else format_result(result))
    return 0
