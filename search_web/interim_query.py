"""Stand-in for `indexer.query` until the lead's query service lands on main: the same calls and result shapes.

Delete this module when `indexer.query` exists (search_web.query prefers it). It only adapts the
text backend's BM25 search and the live FAISS stores to the contract; it parses no concepts.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from indexer.documents import display_annotation
from indexer.errors import IndexerError, InvalidQuery, UnknownImageId
from indexer.text.base import tokenize
from indexer.vectors.live import vector_kind


@dataclass
class SearchRequest:
    text: str = ""
    k: int = 10
    page: int = 1
    source: str = "all"
    filters: dict = field(default_factory=dict)


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """['view:frontal', 'laterality=left'] -> {'view': ['frontal'], 'laterality': ['left']}."""
    out: dict[str, list[str]] = {}
    for item in items:
        cut = min((i for i in (item.find(":"), item.find("=")) if i >= 0), default=-1)
        name, value = (item[:cut], item[cut + 1:]) if cut >= 0 else ("", "")
        if not name.strip() or not value.strip():
            raise InvalidQuery(f"filter={item!r} is invalid: use FIELD:VALUE, e.g. filter=view:frontal")
        out.setdefault(name.strip(), []).append(value.strip())
    return out


def _result(doc: dict, image_id: str, score: float | None) -> dict:
    return {"image_id": image_id, "report_id": doc.get("report_id"), "score": None if score is None else round(score, 4),
            "annotation": display_annotation(doc), "generated_annotation": doc.get("generated_annotation"),
            "report_annotation": doc.get("report_annotation"), "concepts": doc.get("findings", []),
            "label": doc.get("label"), "predicted_labels": doc.get("predicted_labels", []),
            "synthetic": bool(doc.get("synthetic")), "view": doc.get("view"), "split": doc.get("split")}


class QueryService:
    def __init__(self, backend, vectors=None, encoder=None):
        self.backend = backend
        self.vectors = vectors

    def search(self, request: SearchRequest) -> dict:
        filters = dict(request.filters or {})
        if request.source in ("report", "generated"):
            filters["sources"] = [request.source]
        depth = request.k * request.page
        if depth > 10_000:
            raise InvalidQuery(f"page {request.page} x k {request.k} is past the first 10000 results")
        result = self.backend.search(request.text, filters=filters, k=depth)
        hits = result.hits[request.k * (request.page - 1):]
        words = tokenize(request.text)
        results = []
        for rank, hit in enumerate(hits, start=request.k * (request.page - 1) + 1):
            item = _result(hit.document, hit.image_id, hit.score)
            item["explanation"] = {
                "matched": [{"concept": w, "source": s} for w in words for s in hit.matched_sources],
                "retrievers": {"lexical": {"rank": rank, "score": round(hit.score, 4)}}}
            results.append(item)
        synthetic = any(r["synthetic"] for r in results)
        return {"query": request.text, "parsed": {"text": request.text, "concepts": [], "unrecognised": words},
                "total": result.total, "page": request.page, "k": request.k, "source": request.source,
                "results": results, "facets": result.facets, "synthetic": synthetic}

    def _store(self, kind: str):
        if self.vectors is None:
            raise IndexerError("no vector stores configured")
        return self.vectors.get(vector_kind(kind))

    def similar(self, image_id: str, k: int = 10, kind: str = "context") -> dict:
        version, store = self._store(kind)
        if image_id not in store:
            raise UnknownImageId(f"unknown image id {image_id!r}: no {vector_kind(kind)} in index version {version!r}")
        neighbours = store.similar(image_id, k)
        return self._body(version, store, kind, k, neighbours, query_id=image_id)

    def similar_to_vectors(self, embedding, context_vector, k: int = 10, kind: str = "context") -> dict:
        version, store = self._store(kind)
        vector = context_vector if vector_kind(kind) == "context_vector" else embedding
        neighbours = store.search(np.asarray(vector, dtype="float32")[None, :], k)[0]
        return self._body(version, store, kind, k, neighbours, query_id=None)

    def _body(self, version, store, kind, k, neighbours, query_id):
        ids = list(neighbours.image_ids) + ([query_id] if query_id else [])
        docs = self.backend.get_many(ids, version=version)
        hits = [_result(docs.get(i, {}), i, s) for i, s in neighbours.pairs()]
        body = {"image_id": query_id, "kind": kind, "k": k, "version": version, "model_version": store.model_version,
                "hits": hits, "synthetic": any(h["synthetic"] for h in hits)}
        if query_id:
            body["query"] = _result(docs.get(query_id, {}), query_id, None)
        return body

    def image(self, image_id: str) -> dict:
        doc = self.backend.get(image_id)
        if doc is None:
            raise UnknownImageId(f"unknown image id {image_id!r}: not in the live index")
        return doc
