"""Similar images: the nearest indexed images of an indexed image or of an upload's vectors (FAISS or ES kNN).

Images of the same report (the other views of one examination, one patient) are left out by default:
a radiologist asking for similar images wants other patients. Both functions return the body of
`/api/images/<id>/similar` and `cxrsearch similar --json`.
"""
from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from indexer.documents import display_annotation
from indexer.errors import IndexerError, IndexNotFound, InvalidQuery, UnknownImageId, VectorStoreNotFound

MAX_K = 1000
FINDINGS = "findings"   # indexer.vectors.base.FINDINGS (not imported here: a text-only search loads no vector code)
VIEWS = ("any", "same", "frontal", "lateral")   # which neighbours: every view, the query's view, or one view
SYNTHETIC_NOTE = ("synthetic stand-in corpus: scores and neighbours measure the system, "
                  "not clinical accuracy or likeness")


class NoVectors(VectorStoreNotFound):
    """An image is in the text index but has no vector of the kind asked for."""


def _view_filters(view: str | None, query_view: str | None = None) -> dict | None:
    """The vector filter of a `view` choice (VIEWS), None for every view."""
    if view is None or view == "any":
        return None
    if view not in VIEWS:
        raise InvalidQuery(f"view={view!r} is invalid; valid: {', '.join(VIEWS)}")
    if view == "same":
        if not query_view:
            raise InvalidQuery("view=same needs an indexed image whose view is known; use frontal or lateral")
        view = query_view
    return {"view": [view]}


def _check_k(k) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidQuery(f"k={k!r} is invalid: use an integer from 1 to {MAX_K}")
    return k


def neighbour(image_id: str, score: float | None, doc: Mapping | None) -> dict:
    """One image of a similar-images answer: id, score (cosine similarity; for findings p_q . p_n), annotation,
    labels."""
    doc = doc or {}
    return {"image_id": image_id, **({"score": round(float(score), 4)} if score is not None else {}),
            "annotation": display_annotation(doc), "report_annotation": doc.get("report_annotation"),
            "generated_annotation": doc.get("generated_annotation"), "report_id": doc.get("report_id"),
            "view": doc.get("view"), "split": doc.get("split"), "label": doc.get("label"),
            "predicted_labels": doc.get("predicted_labels", []), "synthetic": bool(doc.get("synthetic", False))}


# The default vector kind for "similar images": findings (models/findings.py), the probability that both images
# show the same single finding. Committed 256 px checkpoint, abnormal test images, P@10 of the same mined label
# over the whole index: findings 0.514, CNN embedding 0.291, context vector 0.296 (shares the finding 0.534 /
# 0.470 / 0.458); `cxrsearch evaluate --similar`, models/checkpoints/tiny/eval/similar.md. The embedding and the
# context vector follow looks (body shape, exposure) more than disease; they stay as `kind=embedding|context`.
DEFAULT_KIND = "findings"


def _findings_search(store, stored, k: int, filters: dict | None, exclude: str | None = None):
    """[(image id, p_q . p_n)] of the k best neighbours of a stored-form findings vector (1, L + 1): asked with its
    remainder coordinate at 0 (indexer.vectors.base.findings_query), the cosine scaled back by |p_q|."""
    from indexer.vectors.base import findings_probability, findings_query  # not at import: a text-only search
    #                                                                        loads no vector code (and no FAISS)
    hits = store.search(findings_query(stored), k + (exclude is not None), filters=filters)[0]
    scale = float(findings_probability(stored)[0])
    return [(i, s * scale) for i, s in hits.pairs() if i != exclude][:k]


def _live_store(service, kind: str):
    from indexer.vectors.live import vector_kind

    kind = vector_kind(kind)
    if service.vectors is None:
        raise VectorStoreNotFound("this service has no vector stores: build the index with "
                                  "`cxrsearch reindex --checkpoint CKPT`")
    version = service.backend.live_version()
    if version is None:
        service.backend.count()  # the backend's IndexNotFound says how to build an index
        raise IndexNotFound("no live text index; build one with `cxrsearch reindex --checkpoint CKPT`")
    live, store = service.vectors.get(kind, version)
    return kind, live, store


def _answer(service, query: dict, kind: str, version: str, store, pairs, k: int, exclude_report: str | None,
            view: str | None = None) -> dict:
    docs = service.backend.get_many([i for i, _ in pairs], version=version)
    hits = []
    for image_id, score in pairs:
        doc = docs.get(image_id)
        if exclude_report is not None and doc is not None and doc.get("report_id") == exclude_report:
            continue
        hits.append(neighbour(image_id, score, doc))
        if len(hits) == k:
            break
    synthetic = bool(query.get("synthetic")) or any(h["synthetic"] for h in hits)
    body = {"image_id": query.get("image_id"), "kind": kind, "k": k, "version": version, "view": view or "any",
            "model_version": store.model_version, "query": query, "hits": hits, "synthetic": synthetic}
    if synthetic:
        body["note"] = SYNTHETIC_NOTE
    return body


def similar_to_image(service, image_id: str, k: int = 10, kind: str = DEFAULT_KIND,
                     same_report: bool = False, view: str | None = None) -> dict:
    """The k nearest images of an indexed image (other reports only, unless `same_report`).

    `view`: 'any' (default), 'same' (the query image's view), 'frontal' or 'lateral': neighbours of that view only.

    Raises:
        UnknownImageId: the id is in neither the text index nor the vector store.
        NoVectors: the image is indexed but has no vector of `kind`.
        VectorStoreNotFound / IndexNotFound: no vectors, or no index at all.
    """
    k = _check_k(k)
    kind, version, store = _live_store(service, kind)
    if image_id not in store:
        if service.backend.get(image_id, version=version) is not None:
            raise NoVectors(f"image {image_id!r} is in the text index but has no {kind}; rerun "
                            "`cxrsearch reindex --checkpoint CKPT`")
        raise UnknownImageId(f"unknown image id {image_id!r}: not in index version {version!r} ({len(store)} images, "
                             f"e.g. {', '.join(store.image_ids()[:3])})")
    doc = service.backend.get(image_id, version=version) or {}
    filters = _view_filters(view, doc.get("view"))
    extra = 0 if same_report else 8  # room for the other views of the same examination
    wanted = min(k + extra, max(len(store) - 1, 1))
    if kind == FINDINGS:   # an asymmetric search (models/findings.py)
        pairs = _findings_search(store, store.get_vectors([image_id]), wanted, filters, exclude=image_id)
    else:
        pairs = store.similar(image_id, wanted, filters=filters).pairs()
    query = neighbour(image_id, None, doc)
    return _answer(service, query, kind, version, store, pairs, k,
                   None if same_report else doc.get("report_id"), view)


def similar_to_vectors(service, embedding, context_vector, k: int = 10, kind: str = DEFAULT_KIND,
                       findings=None, view: str | None = None) -> dict:
    """The k nearest indexed images of an image outside the index, given its (E,) embedding, (H,) context vector
    and (L + 1,) findings vector (the one `kind` asks for is needed); `view` 'any', 'frontal' or 'lateral'."""
    k = _check_k(k)
    filters = _view_filters(view)           # 'same' has no query view here: a clear InvalidQuery
    kind, version, store = _live_store(service, kind)
    vector = {"context_vector": context_vector, "cnn_embedding": embedding, FINDINGS: findings}[kind]
    if vector is None:
        raise InvalidQuery(f"no {kind} was computed for the uploaded image")
    vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)   # (1, D)
    if vector.shape[1] != store.dimension:
        raise IndexerError(f"the uploaded image's {kind} has {vector.shape[1]} dimensions but the index holds "
                           f"{store.dimension}: the index was built with another checkpoint")
    wanted = min(k, len(store))
    pairs = (_findings_search(store, vector, wanted, filters) if kind == FINDINGS
             else store.search(vector, wanted, filters=filters)[0].pairs())
    query = {"image_id": None, "annotation": None, "synthetic": False}
    return _answer(service, query, kind, version, store, pairs, k, None, view)


__all__ = ["VIEWS", "NoVectors", "neighbour", "similar_to_image", "similar_to_vectors"]
