"""The JSON API under /api: search, images (detail, similar, thumbnail, full file), concepts, health and stats."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, make_response, request, send_file

from indexer.errors import IndexerError, IndexUnavailable
from indexer.query.similar import DEFAULT_KIND, VIEWS
from search_web.concepts import MAX_PREFIX, ConceptSuggester
from search_web.detail import image_detail, link_builder, with_note
from search_web.errors import BadRequest
from search_web.images import Thumbnails, check_image_id, image_path
from search_web.params import KINDS, MAX_K, parse_choice, parse_int, search_params
from search_web.query import SearchRequest
from search_web.services import Services, services

bp = Blueprint("api", __name__, url_prefix="/api")
_suggester = ConceptSuggester()


def run_search(svc: Services, args, build=None) -> dict:
    """The query service's answer for request args (q, k, page, source, filter), with the synthetic note and each
    hit's links (`build`: `link_builder()`'s function; made for the current request when None)."""
    body = svc.query().search(SearchRequest(**search_params(args)))
    build = build if build is not None else link_builder()
    for item in body.get("results", []):
        item.setdefault("links", build(item["image_id"]))
    return with_note(body, body.get("synthetic") or svc.corpus_synthetic())


def run_similar(svc: Services, image_id: str, args) -> dict:
    check_image_id(image_id)
    k = parse_int("k", args.get("k"), 12, 1, MAX_K)
    kind = parse_choice("kind", args.get("kind"), KINDS, DEFAULT_KIND)
    view = parse_choice("view", args.get("view"), VIEWS, "any")
    body = svc.query().similar(image_id, k=k, kind=kind, view=view)
    build = link_builder()
    for item in body.get("hits", []):
        item.setdefault("links", build(item["image_id"]))
    return with_note(body, body.get("synthetic") or svc.corpus_synthetic())


@bp.get("/search")
def search():
    """Hybrid search through the query service: q, k (1..100), page, source (all|report|generated), filter=F:V."""
    return jsonify(run_search(services(), request.args))


@bp.get("/images/<image_id>")
def image(image_id: str):
    """One indexed image: report sections, both annotations, labels with probabilities, links."""
    svc = services()
    return jsonify(with_note(image_detail(svc, image_id), svc.corpus_synthetic()))


@bp.get("/images/<image_id>/similar")
def image_similar(image_id: str):
    """The k images nearest to an indexed one by findings (default), CNN embedding or joint context vector."""
    return jsonify(run_similar(services(), image_id, request.args))


def _indexed_file(image_id: str):
    svc = services()
    check_image_id(image_id)
    svc.query().image(image_id)  # 404 for an id the index does not hold
    return svc, image_path(svc.images_dir, image_id)


@bp.get("/images/<image_id>/thumbnail")
def thumbnail(image_id: str):
    """A JPEG thumbnail (THUMBNAIL_SIZE px) of an indexed image, by id only."""
    svc, path = _indexed_file(image_id)
    thumbs = current_app.extensions.setdefault("cxrsearch.thumbnails", Thumbnails(current_app.config["THUMBNAIL_SIZE"]))
    data, etag = thumbs.get(path)
    if request.if_none_match.contains(etag):
        response = make_response("", 304)
    else:
        response = make_response(data)
        response.mimetype = "image/jpeg"
    response.set_etag(etag)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


@bp.get("/images/<image_id>/full")
def full_image(image_id: str):
    """The original image file of an indexed image, by id only (never a client-given path)."""
    _, path = _indexed_file(image_id)
    response = send_file(path, mimetype="image/png" if path.suffix == ".png" else "image/jpeg", conditional=True,
                         etag=True, max_age=3600)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response


def facet_counts(svc: Services) -> dict[str, dict[str, int]]:
    """Facet counts over the whole live index (cached per version), for ranking suggestions."""
    try:
        version = svc.live_version()
    except IndexerError:
        return {}
    cache = current_app.extensions.setdefault("cxrsearch.facets", {})
    if version not in cache:
        try:
            result = svc.text().search("", k=1, facets=("findings", "locations", "laterality", "severity"))
        except IndexerError:
            return {}
        cache.clear()
        cache[version] = result.facets
    return cache[version]


@bp.get("/concepts")
def concepts():
    """Autocomplete: vocabulary concepts whose name or a word of it starts with `prefix`."""
    prefix = request.args.get("prefix", "")
    if len(prefix) > MAX_PREFIX:
        raise BadRequest(f"prefix is {len(prefix)} characters long; at most {MAX_PREFIX} are allowed")
    limit = parse_int("limit", request.args.get("limit"), 10, 1, 50)
    svc = services()
    suggestions = _suggester.suggest(prefix, facet_counts(svc), limit)
    response = jsonify({"prefix": prefix, "suggestions": suggestions})
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


def text_health(svc: Services) -> dict:
    out = {"available": False, "backend": svc.backend_name, "url": svc.url, "version": None, "documents": None,
           "error": None}
    try:
        backend = svc.text()
        backend.check()
        out["available"] = True
        out["version"] = backend.live_version()
        if out["version"] is None:
            backend.count()  # raises the backend's IndexNotFound, which says how to build one
        out["documents"] = backend.count(version=out["version"])
    except IndexerError as e:
        out["available"] = False
        unavailable = isinstance(e, IndexUnavailable)
        prefix = "the text index is unavailable: " if unavailable else ""
        out["error"] = {"type": type(e).__name__, "message": prefix + str(e)}
    return out


def vector_health(svc: Services, text: dict) -> dict:
    if not text["available"]:  # say what is down, not that vectors are missing
        return {"available": None, "kinds": [], "error": "unknown while the text index is unavailable "
                                                         "(vectors are found through its live version)"}
    kinds = svc.vector_kinds(text["version"])
    error = None if kinds else "no vector stores for the live index version (built without a cascade checkpoint)"
    if kinds and DEFAULT_KIND not in kinds:   # built before the findings kind existed
        error = (f"no {DEFAULT_KIND} vectors (the default kind of similar images) for the live index version: "
                 "rerun `cxrsearch reindex --checkpoint CKPT`; the other kinds answer meanwhile")
    return {"available": bool(kinds), "kinds": kinds, "error": error}


@bp.get("/health")
def health():
    """Always 200 (the app is up): 'ok', or 'degraded' naming what is down (e.g. Elasticsearch and its URL)."""
    svc = services()
    text = text_health(svc)
    body = {"status": "ok" if text["available"] else "degraded", "text_index": text,
            "vectors": vector_health(svc, text)}
    return jsonify(with_note(body, text["available"] and svc.corpus_synthetic(text["version"])))


def index_stats(svc: Services) -> dict:
    """Documents, size, versions, vectors and facet counts of the live index (raises IndexerError)."""
    backend = svc.text()
    version = backend.live_version()
    if version is None:
        backend.count()
    stats = {"backend": svc.backend_name, "url": svc.url, "live_version": version, "versions": backend.versions(),
             "documents": backend.count(version=version), "size_bytes": backend.size_bytes(version=version),
             "vectors": {}}
    for kind in svc.vector_kinds(version):
        store = svc.vectors.get(kind)[1]
        stats["vectors"][kind] = {"count": len(store), "dimension": store.dimension, "index_type": store.index_type,
                                  "model_version": store.model_version}
    result = backend.search("", k=1, facets=("view", "split", "sources", "label", "model_version"), version=version)
    stats["facets"] = result.facets
    cache = svc.query().cache
    # this worker's answer cache (each gunicorn worker keeps its own); None where answers are never cached
    # (switched off, or a backend that cannot name its state, as Elasticsearch)
    cached = cache is not None and cache.enabled and backend.state_token(version) is not None
    stats["answer_cache"] = cache.stats() if cached else None
    return stats


@bp.get("/stats")
def stats():
    """Index statistics: documents, bytes, versions, vector stores, counts by view/split/source/label."""
    svc = services()
    return jsonify(with_note(index_stats(svc), svc.corpus_synthetic()))


@bp.get("/openapi.json")
def openapi():
    """This API's OpenAPI 3.1 document."""
    from search_web.openapi import document

    return jsonify(document())
