"""One image's details for the image page and GET /api/images/<id>: report sections, both annotations, labels."""
from __future__ import annotations

from flask import url_for

from indexer.documents import display_annotation
from search_web.images import check_image_id
from search_web.services import Services

REPORT_SECTIONS = ("indication", "comparison", "findings", "impression")
SYNTHETIC_NOTE = ("synthetic stand-in corpus: images are rendered from real report annotations; scores and "
                  "neighbours measure the system, not clinical accuracy or likeness")


def with_note(body: dict, synthetic: bool) -> dict:
    """Add the synthetic flag (and a note when true) to a response body."""
    body["synthetic"] = bool(synthetic)
    if synthetic:
        body["note"] = SYNTHETIC_NOTE
    return body


def links(image_id: str) -> dict:
    return {"page": url_for("pages.image_page", image_id=image_id),
            "thumbnail": url_for("api.thumbnail", image_id=image_id),
            "full": url_for("api.full_image", image_id=image_id),
            "similar": url_for("api.image_similar", image_id=image_id)}


def image_detail(svc: Services, image_id: str) -> dict:
    """The stored document of an indexed image, shaped for display (UnknownImageId -> 404 when absent)."""
    check_image_id(image_id)
    doc = dict(svc.query().image(image_id))
    doc = doc.get("document", doc) if isinstance(doc.get("document"), dict) else doc
    probabilities = sorted(((k, float(v)) for k, v in (doc.get("label_probabilities") or {}).items()),
                           key=lambda kv: -kv[1])
    concepts = doc.get("concepts") or []
    report = {name: doc.get(f"report_{name}") for name in REPORT_SECTIONS if doc.get(f"report_{name}")}
    return {
        "image_id": image_id, "report_id": doc.get("report_id"), "view": doc.get("view"), "split": doc.get("split"),
        "synthetic": bool(doc.get("synthetic")), "label": doc.get("label"),
        "annotation": display_annotation(doc), "generated_annotation": doc.get("generated_annotation"),
        "report_annotation": doc.get("report_annotation"), "report": report,
        "mesh_terms": doc.get("mesh_terms", []), "predicted_labels": doc.get("predicted_labels", []),
        "label_probabilities": [{"label": k, "probability": round(v, 4)} for k, v in probabilities],
        "concept_probabilities": doc.get("concept_probabilities", {}),
        "concepts": [c for c in concepts if isinstance(c, dict)],
        "findings": doc.get("findings", []), "locations": doc.get("locations", []),
        "laterality": doc.get("laterality", []), "severity": doc.get("severity", []),
        "model_version": doc.get("model_version", []), "links": links(image_id),
    }
