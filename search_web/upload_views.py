"""Search by image: POST /api/similar (JSON) and the upload form's result page (HTML, CSRF-checked)."""
from __future__ import annotations

import time
from pathlib import Path

from flask import Blueprint, current_app, jsonify, render_template, request

from indexer.query.similar import DEFAULT_KIND
from search_web.detail import link_builder, with_note
from search_web.errors import BadRequest, Conflict
from search_web.metrics import UPLOADS
from search_web.params import KINDS, MAX_K, parse_choice, parse_int
from search_web.security import check_csrf
from search_web.services import services
from search_web.uploads import data_url_png, decode, temp_upload

UPLOAD_VIEWS = ("any", "frontal", "lateral")   # an upload's own view is unknown: no 'same'

bp = Blueprint("uploads", __name__)


def similar_to_upload(form, files) -> tuple[dict, object]:
    """Decode the uploaded `image`, run the cascade, find the nearest indexed images. -> (body, decoded)."""
    storage = files.get("image")
    if storage is None:
        raise BadRequest("no file: send the radiograph as the multipart field 'image'")
    k = parse_int("k", form.get("k"), 12, 1, MAX_K)
    kind = parse_choice("kind", form.get("kind"), KINDS, DEFAULT_KIND)
    view = parse_choice("view", form.get("view"), UPLOAD_VIEWS, "any")
    svc = services()
    config = current_app.config
    start = time.perf_counter()
    try:
        with temp_upload(storage, Path(config["UPLOAD_DIR"]), config["MAX_UPLOAD_BYTES"]) as path:
            decoded = decode(path, config["MAX_UPLOAD_PIXELS"])
        version, store = svc.vectors.get(kind) if svc.vectors is not None else (None, None)
        if store is None:
            raise Conflict("no vector stores: build the index with `cxrsearch reindex --checkpoint CKPT`")
        encoded = svc.encoder().encode(decoded.grey, store.model_version)
        body = svc.query().similar_to_vectors(encoded.embedding, encoded.context_vector, k=k, kind=kind,
                                                      findings=encoded.findings, view=view)
    except Exception:
        UPLOADS.labels("rejected").inc()
        raise
    UPLOADS.labels("ok").inc()
    build = link_builder()
    for item in body.get("hits", []):
        item.setdefault("links", build(item["image_id"]))
    body["upload"] = {"type": decoded.kind, "width": decoded.width, "height": decoded.height, "bytes": decoded.bytes,
                      "annotation": encoded.annotation, "label": encoded.label,
                      "label_probabilities": [{"label": n, "probability": round(p, 4)}
                                              for n, p in encoded.probabilities],
                      "model_version": encoded.model_version, "encode_ms": round(encoded.seconds * 1000, 1),
                      "total_ms": round((time.perf_counter() - start) * 1000, 1)}
    return with_note(body, body.get("synthetic") or svc.corpus_synthetic()), decoded


@bp.post("/api/similar")
def api_similar():
    """Multipart `image` (PNG, JPEG or DICOM) -> the cascade's annotation of it and the k nearest indexed images."""
    body, _ = similar_to_upload(request.form, request.files)
    return jsonify(body)


@bp.post("/search/image")
def upload_page():
    """The upload form's target: the uploaded image, what the cascade wrote, and the nearest images."""
    check_csrf()
    body, decoded = similar_to_upload(request.form, request.files)
    return render_template("upload.html", body=body, preview=data_url_png(decoded.grey),
                           kind=body.get("kind", DEFAULT_KIND))
