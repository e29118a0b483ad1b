"""The OpenAPI 3.1 document of the JSON API (GET /api/openapi.json); a test keeps it equal to the app's routes."""
from __future__ import annotations

from indexer.query.plan import SOURCES
from indexer.query.service import MAX_DISTINCT_WORDS as MAX_QUERY_WORDS
from indexer.query.service import MAX_FILTER_VALUE_BYTES
from indexer.query.similar import DEFAULT_KIND, VIEWS
from search_web.images import IMAGE_ID as IMAGE_ID_RE
from search_web.jobs import JOB_ID as JOB_ID_RE
from search_web.params import KINDS, MAX_K, MAX_PAGE

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(description: str, schema: dict | None = None) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _errors(*codes: int) -> dict:
    text = {400: "bad parameter (the message names it and what is valid)", 401: "admin token missing or wrong",
            403: "admin switched off", 404: "unknown image id, job or index", 409: "no vectors / model mismatch / "
            "a job is running", 408: "request body sent too slowly (gunicorn: under 500 bytes/s after 10 s)",
            413: "upload too large (bytes or pixels)", 414: "URL too long",
            503: "text index unavailable or restarting (Retry-After)"}
    return {str(c): _json(text[c], ERROR) for c in codes}


def _q(name: str, description: str, schema: dict, required: bool = False, **extra) -> dict:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema, **extra}


IMAGE_ID = {"name": "image_id", "in": "path", "required": True,
            "schema": {"type": "string", "pattern": IMAGE_ID_RE.pattern},
            "description": "an indexed image id, e.g. CXR1_1_IM-0001-3001 (letters, digits, '_', '-', '.'; no '..'); "
                           "any other shape is a 400, an id the index does not hold a 404"}


def _image_links(pointer: str) -> dict:
    """OpenAPI links from an answer that names an image id (`pointer`, a JSON pointer) to the image operations."""
    return {name: {"operationId": op, "parameters": {"image_id": f"$response.body#{pointer}"}}
            for name, op in (("image", "getImage"), ("similar", "getSimilarImages"), ("thumbnail", "getThumbnail"),
                             ("full", "getFullImage"))}
K = _q("k", f"results per page (1..{MAX_K})", {"type": "integer", "minimum": 1, "maximum": MAX_K})
KIND = _q("kind", "vector space: findings (the probability that both images show the same single finding), "
          "CNN embedding, or joint image/text context vector",
          {"type": "string", "enum": list(KINDS), "default": DEFAULT_KIND})
VIEW = _q("view", "neighbours of every view, of the query image's view (same), or of one view",
          {"type": "string", "enum": list(VIEWS), "default": "any"})


def document() -> dict:
    """The OpenAPI document (a plain dict)."""
    paths = {
        "/api/search": {"get": {
            "summary": "Search images by text: concepts and BM25 fused (tiered), with facets and explanations",
            "parameters": [
                _q("q", f"query text (at most {MAX_QUERY_WORDS} distinct words); empty matches all",
                   {"type": "string"}),
                K,
                _q("page", "page number (k * page <= 10000)", {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}),
                _q("source", "whose text to search: all, radiologists' reports, or the cascade's output from pixels",
                   {"type": "string", "enum": list(SOURCES)}),
                _q("filter", f"FIELD:VALUE, repeatable (values < {MAX_FILTER_VALUE_BYTES + 1} bytes; synthetic: "
                             "exactly true or false)", {"type": "array", "items": {"type": "string"}},
                   style="form", explode=True)],
            "responses": {"200": {**_json("ranked results, parsed query, facets",
                                          {"$ref": "#/components/schemas/Search"}),
                                  "links": _image_links("/results/0/image_id")},
                          **_errors(400, 404, 414, 503)}}},
        "/api/images/{image_id}": {"get": {
            "operationId": "getImage",
            "summary": "One indexed image: report sections, generated and report annotations, labels",
            "parameters": [IMAGE_ID], "responses": {"200": _json("image detail"), **_errors(400, 404, 503)}}},
        "/api/images/{image_id}/similar": {"get": {
            "operationId": "getSimilarImages",
            "summary": "Nearest indexed images by findings (default), CNN embedding or context vector",
            "parameters": [IMAGE_ID, K, KIND, VIEW], "responses": {
                "200": {**_json("neighbours"), "links": _image_links("/hits/0/image_id")},
                **_errors(400, 404, 409, 503)}}},
        "/api/images/{image_id}/thumbnail": {"get": {
            "operationId": "getThumbnail",
            "summary": "JPEG thumbnail of an indexed image, by id only", "parameters": [IMAGE_ID],
            "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {}}},
                          "304": {"description": "not modified"},
                          **_errors(400, 404)}}},
        "/api/images/{image_id}/full": {"get": {
            "operationId": "getFullImage",
            "summary": "The original image file of an indexed image, by id only", "parameters": [IMAGE_ID],
            "responses": {"200": {"description": "PNG or JPEG", "content": {"image/png": {}, "image/jpeg": {}}},
                          "304": {"description": "not modified"}, **_errors(400, 404)}}},
        "/api/similar": {"post": {
            "summary": "Search by image: upload a radiograph (PNG, JPEG or DICOM); the cascade annotates it and its "
                       "vectors find the nearest indexed images",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["image"],
                "properties": {"image": {"type": "string", "format": "binary"},
                               "k": {"type": "integer", "minimum": 1, "maximum": MAX_K},
                               "kind": {"type": "string", "enum": list(KINDS), "default": DEFAULT_KIND},
                               "view": {"type": "string", "enum": ["any", "frontal", "lateral"],
                                        "default": "any"}}}}}},
            "responses": {"200": {**_json("the upload's annotation and its neighbours"),
                                  "links": _image_links("/hits/0/image_id")}, **_errors(400, 408, 409, 413, 503)}}},
        "/api/concepts": {"get": {
            "summary": "Concept autocomplete from the MeSH vocabulary, ranked by use in the index",
            "parameters": [_q("prefix", "start of a concept name or of one of its words", {"type": "string"}),
                           _q("limit", "suggestions (1..50)", {"type": "integer", "minimum": 1, "maximum": 50})],
            "responses": {"200": _json("suggestions"), **_errors(400)}}},
        "/api/health": {"get": {
            "summary": "Always 200 while the app runs: ok, or degraded naming what is down (e.g. Elasticsearch)",
            "responses": {"200": _json("health")}}},
        "/api/stats": {"get": {
            "summary": "Index statistics: documents, bytes, versions, vector stores, counts",
            "responses": {"200": _json("statistics"), **_errors(404, 503)}}},
        "/api/reindex": {"post": {
            "summary": "Start a reindex job (admin token); answers 202 with the job id",
            "security": [{"adminToken": []}],
            "parameters": [_q("with_model", "annotate with the cascade (default true)", {"type": "boolean"}),
                           _q("fresh", "discard an unfinished build", {"type": "boolean"})],
            "responses": {"202": _json("job started"), **_errors(400, 401, 403, 409)}}},
        "/api/jobs/{job_id}": {"get": {
            "summary": "A reindex job's state, progress and summary (admin token)",
            "security": [{"adminToken": []}],
            "parameters": [{"name": "job_id", "in": "path", "required": True,
                            "schema": {"type": "string", "pattern": JOB_ID_RE.pattern}}],
            "responses": {"200": _json("job state"), **_errors(401, 403, 404)}}},
        "/api/openapi.json": {"get": {"summary": "This document", "responses": {"200": _json("OpenAPI 3.1")}}},
        "/metrics": {"get": {"summary": "Prometheus text: request counts, latency histograms, index size",
                             "responses": {"200": {"description": "Prometheus exposition format",
                                                   "content": {"text/plain": {}}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "cxrsearch", "version": "1",
                 "description": "Semantic search over chest X-rays. On the synthetic stand-in corpus every answer "
                                "carries synthetic: true; its scores measure the software, not clinical accuracy."},
        "paths": paths,
        "components": {
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "CXRSEARCH_ADMIN_TOKEN"}},
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                    "type": "object", "required": ["type", "message"],
                    "properties": {"type": {"type": "string"}, "message": {"type": "string"}}}}},
                "Search": {"type": "object", "required": ["query", "parsed", "total", "page", "k", "source", "results",
                                                          "facets", "synthetic"],
                           "properties": {"results": {"type": "array", "items": {"type": "object", "required": [
                               "image_id", "score", "annotation"]}}, "facets": {"type": "object"},
                               "parsed": {"type": "object"}, "total": {"type": "integer"}}},
            },
        },
    }
