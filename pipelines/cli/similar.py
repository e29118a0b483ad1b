"""Find the indexed images most similar to one indexed image, by context vector or CNN embedding (FAISS)."""
from __future__ import annotations

import argparse
import json
import sys

from indexer.documents import display_annotation
from indexer.errors import IndexerError
from indexer.text import open_backend
from indexer.vectors.live import open_vectors, vector_kind
from pipelines.cli.reindex import add_backend_options, es_settings, index_dir


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch similar", description=__doc__)
    p.add_argument("image_id", help="an indexed image, e.g. CXR1_IM-0001-1001")
    p.add_argument("--k", type=int, default=10, help="number of similar images (10)")
    p.add_argument("--kind", choices=("context", "embedding"), default="context",
                   help="compare joint image/text context vectors (default) or CNN embeddings")
    add_backend_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    return p


def _hit(image_id: str, score: float | None, doc: dict | None) -> dict:
    doc = doc or {}
    return {"image_id": image_id, **({"score": round(score, 4)} if score is not None else {}),
            "annotation": display_annotation(doc), "report_id": doc.get("report_id"), "view": doc.get("view"),
            "label": doc.get("label"), "predicted_labels": doc.get("predicted_labels", []),
            "synthetic": doc.get("synthetic", False)}


def find_similar(backend, root, image_id: str, k: int, kind: str) -> dict:
    """The k nearest images of `image_id` in the live vector store of `kind`, with their documents.

    Raises:
        IndexerError: no live index, no vectors (built without a checkpoint), or an unknown image id.
    """
    if not 1 <= k <= 10_000:
        raise IndexerError(f"--k {k}: must be between 1 and 10000")
    kind = vector_kind(kind)
    version = backend.live_version()
    if version is None:
        backend.count()  # the backend's IndexNotFound says how to build an index
        raise IndexerError("no live text index; build one with `cxrsearch reindex --checkpoint CKPT`")
    store = open_vectors(root, backend, kind, version)
    if image_id not in store:
        if backend.get(image_id, version=version) is not None:
            raise IndexerError(f"image {image_id!r} is in the text index but has no {kind}; rerun "
                               "`cxrsearch reindex --checkpoint CKPT`")
        raise IndexerError(f"unknown image id {image_id!r}: not in index version {version!r} ({len(store)} images, "
                           f"e.g. {', '.join(store.image_ids()[:3])})")
    neighbours = store.similar(image_id, k)
    docs = backend.get_many([image_id, *neighbours.image_ids], version=version)
    return {"image_id": image_id, "kind": kind, "version": version, "model_version": store.model_version,
            "query": _hit(image_id, None, docs.get(image_id)),
            "hits": [_hit(i, s, docs.get(i)) for i, s in neighbours.pairs()]}


def format_result(result: dict) -> str:
    """The query image, then one line per similar image: rank, image id, cosine similarity, annotation."""
    query = result["query"]
    lines = [f"{len(result['hits'])} image(s) most similar to {result['image_id']} by {result['kind']} "
             f"(model {result['model_version']}, index version {result['version']})",
             f"     query: {query['annotation'][:70]}" + (" [synthetic]" if query["synthetic"] else "")]
    for rank, hit in enumerate(result["hits"], 1):
        note = " [synthetic]" if hit["synthetic"] else ""
        lines.append(f"{rank:3d}. {hit['image_id']:24s} {hit['score']:6.3f}  {hit['annotation'][:70]}{note}")
    if query["synthetic"]:
        lines.append("  (synthetic stand-in images: similarity here measures the system, not clinical likeness)")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        with open_backend(args.backend, index_dir=index_dir(args), es_settings=es_settings(args)) as backend:
            result = find_similar(backend, index_dir(args), args.image_id, args.k, args.kind)
    except IndexerError as e:  # no index, no vectors (VectorStoreNotFound), unknown image id
        print(f"cxrsearch similar: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False) if args.json else format_result(result))
    return 0
