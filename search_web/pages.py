"""The HTML pages: search (home), image detail with similar images, the context map; the synthetic banner on all."""
from __future__ import annotations

import re

from flask import Blueprint, Flask, Response, current_app, render_template, request, url_for
from markupsafe import Markup, escape

from indexer.errors import IndexerError
from indexer.query.plan import SOURCES
from indexer.query.similar import DEFAULT_KIND
from indexer.text.base import tokenize
from search_web import contextmap
from search_web.api import run_search, run_similar
from search_web.detail import image_detail
from search_web.errors import WebError, classify
from search_web.params import KINDS, parse_choice
from search_web.services import services

bp = Blueprint("pages", __name__)

SOURCE_NAMES = {"all": "All", "report": "Reports", "generated": "From pixels only"}
FACET_NAMES = {"findings": "Finding", "locations": "Location", "laterality": "Side", "severity": "Severity",
               "view": "View", "split": "Split", "sources": "Source"}
EXAMPLES = ("calcified granuloma upper lobe right", "pleural effusion left", "cardiomegaly mild",
            "pulmonary disease in upper right lobe", "no pneumothorax")

try:  # the class-activation overlay, when the model engineer's module is there
    from models import cam as _cam  # type: ignore[attr-defined]
except ImportError:
    _cam = None


def cam_available() -> bool:
    return _cam is not None


# --- URL state: every search page is fully described by its query string -----------------------------

def search_url(q: str = "", source: str = "all", filters: list[str] | None = None, page: int = 1) -> str:
    args: dict = {}
    if q:
        args["q"] = q
    if source and source != "all":
        args["source"] = source
    if filters:
        args["filter"] = list(filters)
    if page and page > 1:
        args["page"] = page
    return url_for("pages.search", **args)


def _without_span(text: str, start: int, end: int) -> str:
    return " ".join((text[:start] + " " + text[end:]).split())


def highlight(text: str | None, words) -> Markup:
    """Escape `text` and wrap the words in `words` (case-insensitive, whole words) in <mark>."""
    if not text:
        return Markup("")
    wanted = {w.lower() for w in words if w}
    if not wanted:
        return escape(text)
    out = []
    for piece in re.split(r"(\w+)", text):
        out.append(Markup("<mark>%s</mark>") % piece if piece.lower() in wanted else escape(piece))
    return Markup("").join(out)


def _match_words(body: dict) -> set[str]:
    """Words to highlight: those lexical search used and the words of every recognised, non-negated concept."""
    parsed = body.get("parsed", {})
    words = set(tokenize(parsed.get("lexical", "")))
    for concept in parsed.get("concepts", []):
        if not concept.get("negated") and concept.get("kind") != "negation":
            for key in ("text", "value"):
                words.update(tokenize(str(concept.get(key) or "")))
    return words


@bp.route("/")
@bp.route("/search")
def search():
    """Home and search page: the URL holds the whole state (q, source, filter, page)."""
    svc = services()
    q = request.args.get("q", "")
    filters = request.args.getlist("filter")
    source = request.args.get("source", "all")
    context = {"q": q, "filters": filters, "source": source if source in SOURCES else "all", "body": None,
               "error": None, "sources": SOURCE_NAMES, "facet_names": FACET_NAMES, "examples": EXAMPLES,
               "search_url": search_url, "without_span": _without_span}
    status = 200
    if q.strip() or filters or request.args.get("page"):
        try:
            body = run_search(svc, request.args)
            context["body"] = body
            context["match_words"] = _match_words(body)
            total, k = body.get("total", 0), body.get("k", 20)
            context["pages"] = max(1, -(-min(total, 10_000) // k))
        except (WebError, IndexerError) as e:
            status, kind, message = classify(e)
            context["error"] = {"status": status, "type": kind, "message": message}
    response = Response(render_template("search.html", **context), status=status, mimetype="text/html")
    if status == 503:
        response.headers["Retry-After"] = str(current_app.config["RETRY_AFTER_S"])
    return response


@bp.get("/images/<image_id>")
def image_page(image_id: str):
    """One image: zoomable viewer, report beside the generated annotation, labels, similar images."""
    svc = services()
    detail = image_detail(svc, image_id)
    kind = parse_choice("kind", request.args.get("kind"), KINDS, DEFAULT_KIND)
    view = parse_choice("view", request.args.get("view"), ("any", "same"), "any")
    similar, similar_error = None, None
    try:
        similar = run_similar(svc, image_id, {"k": "12", "kind": kind, "view": view})
    except (WebError, IndexerError) as e:
        similar_error = classify(e)[2]
    return render_template("image.html", d=detail, similar=similar, similar_error=similar_error, kind=kind, view=view,
                           cam=cam_available(), back=request.args.get("back", ""))


@bp.get("/images/<image_id>/overlay.png")
def cam_overlay(image_id: str):
    """The class-activation overlay of an indexed image (when models.cam exists), by the model of the live vectors."""
    from models.preprocess import prepare
    from search_web.errors import NotFound
    from search_web.images import image_path

    if _cam is None:
        raise NotFound("the class-activation overlay is not available in this build (models.cam is missing)")
    svc = services()
    image_detail(svc, image_id)  # 404 for an id the index does not hold
    store = svc.vectors.get("context")[1]
    cascade = svc.encoder().cascade_for(store.model_version)
    stored = prepare(image_path(svc.images_dir, image_id), cascade.config.cnn)   # (S, S) uint8
    png = _cam.overlay_png(stored, _cam.class_activation_map(cascade, stored))
    return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})


@bp.get("/map")
def context_map():
    """Figure 4 of the paper for a chosen label: context vectors in 2-D, coloured by k-means cluster."""
    svc = services()
    all_labels = contextmap.labels(svc)
    label = request.args.get("label") or next((n for n in all_labels if n != "normal"), next(iter(all_labels), ""))
    method = parse_choice("method", request.args.get("method"), contextmap.METHODS, "pca")
    result, error = None, None
    if label:
        if label not in all_labels:
            from search_web.errors import BadRequest

            raise BadRequest(f"label={label!r} is unknown; valid: {', '.join(all_labels)}")
        try:
            result = contextmap.build(svc, label, method)
        except (WebError, IndexerError) as e:
            error = classify(e)[2]
    return render_template("map.html", labels=all_labels, label=label, method=method, result=result, error=error,
                           width=contextmap.WIDTH, height=contextmap.HEIGHT)


def _banner() -> dict:
    from flask import has_app_context

    if not has_app_context():
        return {"synthetic_corpus": True}
    try:
        synthetic = services().corpus_synthetic()
    except Exception:  # noqa: BLE001 - the banner must never break a page
        synthetic = True
    return {"synthetic_corpus": synthetic}


_CLUSTER = re.compile(r"^(.*?)\s*#\s*(\d+)$")


def label_name(label: str | None) -> str:
    """'calcified granuloma#2' (a k-means split of the cascade) -> 'calcified granuloma (cluster 2)'."""
    match = _CLUSTER.match(label or "")
    return f"{match.group(1)} (cluster {match.group(2)})" if match else (label or "")


def install(app: Flask) -> None:
    app.context_processor(_banner)
    app.jinja_env.filters["label_name"] = label_name
    app.jinja_env.filters["highlight"] = highlight
    app.jinja_env.globals["search_url"] = search_url
