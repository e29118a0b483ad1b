"""The JSON API under /api: health, text search and similar images; errors as JSON with a clear message."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from indexer.documents import display_annotation
from indexer.errors import (DocumentNotFound, IndexerError, IndexNotFound, IndexUnavailable, InvalidQuery,
                            InvalidVectorConfig, UnknownImageId, VectorStoreNotFound)
from indexer.vectors.live import has_vectors, vector_kind
from search_web.app import Services, services

bp = Blueprint("api", __name__, url_prefix="/api")

MAX_K = 100
SYNTHETIC_NOTE = ("synthetic stand-in corpus: scores and neighbours measure the system, "
                  "not clinical accuracy or likeness")


class BadRequest(IndexerError, ValueError):
    """A request parameter the API cannot use (the message names the value and what is valid)."""


class NoVectors(IndexerError):
    """The live index has no vectors of the kind asked for, or not for this image."""


# error class -> HTTP status; the first match in this order wins
STATUS = ((BadRequest, 400), (InvalidQuery, 400), (InvalidVectorConfig, 400), (IndexUnavailable, 503),
          (IndexNotFound, 404), (UnknownImageId, 404), (DocumentNotFound, 404), (VectorStoreNotFound, 409),
          (NoVectors, 409), (IndexerError, 500))


def error_response(kind: str, message: str, status: int):
    return jsonify({"error": {"type": kind, "message": message}}), status


@bp.errorhandler(IndexerError)
def indexer_error(e: IndexerError):
    status = next(code for cls, code in STATUS if isinstance(e, cls))
    message = str(e)
    if isinstance(e, IndexUnavailable):
        message = f"the text index is unavailable: {message}"
    return error_response(type(e).__name__, message, status)


@bp.app_errorhandler(HTTPException)
def http_error(e: HTTPException):
    """JSON for HTTP errors under /api (an unknown endpoint, a wrong method); other paths unchanged."""
    if not request.path.startswith(bp.url_prefix + "/"):
        return e
    return error_response(type(e).__name__, e.description or e.name, e.code or 500)


@bp.errorhandler(Exception)
def unexpected_error(e: Exception):
    """Any other failure: a JSON 500 naming the error; the app keeps serving."""
    if isinstance(e, HTTPException):
        return http_error(e)
    current_app.logger.exception("unexpected error in %s", request.path)
    return error_response(type(e).__name__, f"internal error: {e}", 500)


def parse_k(raw: str | None, default: int = 10) -> int:
    """The k parameter: an integer from 1 to MAX_K, else BadRequest naming the value."""
    if raw is None or raw == "":
        return default
    try:
        k = int(raw)
    except ValueError:
        k = None
    if k is None or not 1 <= k <= MAX_K:
        raise BadRequest(f"k={raw!r} is invalid: use an integer from 1 to {MAX_K}")
    return k


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """['view:frontal', 'laterality=left', 'laterality:right'] -> {'view': [...], 'laterality': [...]}.

    FIELD:VALUE and FIELD=VALUE (the CLI's form) are both accepted.
    """
    filters: dict[str, list[str]] = {}
    for item in items:
        cut = min((i for i in (item.find(":"), item.find("=")) if i >= 0), default=-1)
        name, value = (item[:cut], item[cut + 1:]) if cut >= 0 else ("", "")
        if not name.strip() or not value.strip():
            raise BadRequest(f"filter={item!r} is invalid: use FIELD:VALUE, e.g. filter=view:frontal")
        filters.setdefault(name.strip(), []).append(value.strip())
    return filters


def with_synthetic(body: dict, synthetic: bool) -> dict:
    """Add the synthetic flag (and a note when true) to a response body."""
    body["synthetic"] = synthetic
    if synthetic:
        body["note"] = SYNTHETIC_NOTE
    return body


def _text_health(svc: Services) -> dict:
    out = {"available": False, "backend": svc.backend_name, "url": svc.url, "version": None, "documents": None,
           "synthetic": None, "error": None}
    try:
        backend = svc.text()
        backend.check()
        out["available"] = True
        out["version"] = backend.live_version()
        if out["version"] is None:
            backend.count()  # raises the backend's IndexNotFound, which says how to build one
        out["documents"] = backend.count(version=out["version"])
        out["synthetic"] = svc.corpus_synthetic(out["version"])
    except IndexerError as e:
        out["available"] = False
        prefix = "the text index is unavailable: " if isinstance(e, IndexUnavailable) else ""
        out["error"] = {"type": type(e).__name__, "message": prefix + str(e)}
    return out


def _vector_health(svc: Services, version: str | None) -> dict:
    kinds = []
    if version is not None and svc.backend is not None:
        kinds = [k for k in ("context", "embedding") if has_vectors(svc.index_dir, svc.backend, version, k)]
    error = None if kinds else "no vector stores for the live index version (built without a cascade checkpoint)"
    return {"available": bool(kinds), "kinds": kinds, "error": error}


@bp.get("/health")
def health():
    """Always HTTP 200 (the app is up); 'degraded' when the text index cannot be searched."""
    svc = services()
    text = _text_health(svc)
    vectors = _vector_health(svc, text["version"])
    body = {"status": "ok" if text["available"] else "degraded", "text_index": text,
            "vectors": vectors}
    return jsonify(with_synthetic(body, bool(text["synthetic"])))


@bp.get("/search")
def search():
    """BM25 search: q (words, OR-ed; empty matches all), k (1..100), filter=FIELD:VALUE (repeatable)."""
    query = request.args.get("q", "")
    k = parse_k(request.args.get("k"))
    filters = parse_filters(request.args.getlist("filter"))
    svc = services()
    result = svc.text().search(query, filters=filters, k=k)
    body = {"query": query, "filters": filters, "k": k, **result.to_dict()}
    synthetic = any(h.document.get("synthetic") for h in result.hits) or svc.corpus_synthetic(result.version)
    return jsonify(with_synthetic(body, synthetic))


def _neighbour(image_id: str, score: float | None, doc: dict | None) -> dict:
    doc = doc or {}
    return {"image_id": image_id, **({"score": round(score, 4)} if score is not None else {}),
            "annotation": display_annotation(doc), "report_id": doc.get("report_id"), "view": doc.get("view"),
            "label": doc.get("label"), "predicted_labels": doc.get("predicted_labels", []),
            "synthetic": doc.get("synthetic", False)}


@bp.get("/similar/<image_id>")
def similar(image_id: str):
    """The k images nearest to an indexed image by context vector (kind=context) or CNN embedding."""
    k = parse_k(request.args.get("k"))
    kind = vector_kind(request.args.get("kind", "context"))
    svc = services()
    backend = svc.text()
    version, store = svc.vectors.get(kind)
    if image_id not in store:
        if backend.get(image_id, version=version) is not None:
            raise NoVectors(f"image {image_id!r} is in the text index but has no {kind}; rerun "
                            "`cxrsearch reindex --checkpoint CKPT`")
        raise UnknownImageId(f"unknown image id {image_id!r}: not in index version {version!r}")
    neighbours = store.similar(image_id, k)
    docs = backend.get_many([image_id, *neighbours.image_ids], version=version)
    body = {"image_id": image_id, "kind": kind, "k": k, "version": version, "model_version": store.model_version,
            "query": _neighbour(image_id, None, docs.get(image_id)),
            "hits": [_neighbour(i, s, docs.get(i)) for i, s in neighbours.pairs()]}
    synthetic = bool(docs.get(image_id, {}).get("synthetic")) or svc.corpus_synthetic(version)
    return jsonify(with_synthetic(body, synthetic))
