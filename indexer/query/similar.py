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
SYNTHETIC_NOTE = ("synthetic stand-in corpus: scores and neighbours measure the system, "
                  "not clinical accuracy or likeness")


class NoVectors(VectorStoreNotFound):
    """An image is in the text index but has no vector of the kind asked for."""


def _check_k(k) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_K:
        raise InvalidQuery(f"k={k!r} is invalid: use an integer from 1 to {MAX_K}")
    return k


def neighbour(image_id: str, score: float | None, doc: Mapping | None) -> dict:
    """One image of a similar-images answer: id, cosine similarity, annotation and labels."""
    doc = doc or {}
    return {"image_id": image_id, **({"score": round(float(score), 4)} if score is not None else {}),
            "annotation": display_annotation(doc), "report_annotation": doc.get("report_annotation"),
            "generated_annotation": doc.get("generated_annotation"), "report_id": doc.get("report_id"),
            "view": doc.get("view"), "split": doc.get("split"), "label": doc.get("label"),
            "predicted_labels": doc.get("predicted_labels", []), "synthetic": bool(doc.get("synthetic", False))}


# The default vector kind for "similar images": the CNN embedding. On the test split it ties with the context
# vector (committed 256 px checkpoint: P@10 of the same mined label 0.291 vs 0.296 over the whole index, 0.534
# vs 0.534 among labelled images; shares the finding 0.470 vs 0.458; `cxrsearch evaluate --similar`,
# models/checkpoints/tiny/eval/similar.md) and it does not depend on the generated words, which carry the
# cascade's mistakes into the context vector.
DEFAULT_KIND = "embedding"


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


def _answer(service, query: dict, kind: str, version: str, store, pairs, k: int, exclude_report: str | None) -> dict:
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
    body = {"image_id": query.get("image_id"), "kind": kind, "k": k, "version": version,
            "model_version": store.model_version, "query": query, "hits": hits, "synthetic": synthetic}
    if synthetic:
        body["note"] = SYNTHETIC_NOTE
    return body


def similar_to_image(service, image_id: str, k: int = 10, kind: str = DEFAULT_KIND,
                     same_report: bool = False) -> dict:
    """The k nearest images of an indexed image (other reports only, unless `same_report`).

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
    extra = 0 if same_report else 8  # room for the other views of the same examination
    found = store.similar(image_id, min(k + extra, max(len(store) - 1, 1)))
    query = neighbour(image_id, None, doc)
    return _answer(service, query, kind, version, store, found.pairs(), k,
                   None if same_report else doc.get("report_id"))


def similar_to_vectors(service, embedding, context_vector, k: int = 10, kind: str = DEFAULT_KIND) -> dict:
    """The k nearest indexed images of an image outside the index, given its (E,) embedding and (H,) context vector."""
    k = _check_k(k)
    kind, version, store = _live_store(service, kind)
    vector = context_vector if kind == "context_vector" else embedding
    if vector is None:
        raise InvalidQuery(f"no {kind} was computed for the uploaded image")
    vector = np.asarray(vector, dtype=np.float32).reshape(1, -1)   # (1, D)
    if vector.shape[1] != store.dimension:
        raise IndexerError(f"the uploaded image's {kind} has {vector.shape[1]} dimensions but the index holds "
                           f"{store.dimension}: the index was built with another checkpoint")
    found = store.search(vector, min(k, len(store)))[0]
    query = {"image_id": None, "annotation": None, "synthetic": False}
    return _answer(service, query, kind, version, store, found.pairs(), k, None)


__all__ = ["NoVectors", "neighbour", "similar_to_image", "similar_to_vectors"]
