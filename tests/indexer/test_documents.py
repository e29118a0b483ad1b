"""Index documents are built by pure code: fields, sources, concepts, hashes, schema checks."""
from __future__ import annotations

import json

import pytest

from indexer.documents import (
    ALL_FIELDS,
    TEXT_FIELDS,
    DocumentInput,
    GeneratedAnnotation,
    build_document,
    build_documents,
    content_hash,
    display_annotation,
    document_sections,
    keyword_values,
    validate_document,
)
from indexer.errors import DocumentError
from tests.indexer.conftest import make_inputs


@pytest.fixture
def inputs():
    return {item.image_id: item for item in make_inputs()}


def test_identity_fields_come_from_the_manifest(inputs, vocabulary):
    doc = build_document(inputs["IMG-C"], vocabulary)
    assert (doc["image_id"], doc["report_id"], doc["view"], doc["split"]) == ("IMG-C", "3", "lateral", "train")
    assert doc["synthetic"] is True and doc["content_hash"] == "hash-3"
    assert doc["label"] == "cardiomegaly"
    assert set(doc) <= ALL_FIELDS
    json.dumps(doc)  # JSON-ready


def test_concepts_carry_mesh_ancestors_location_laterality_severity(inputs, vocabulary):
    doc = build_document(inputs["IMG-B"], vocabulary)  # Pulmonary Atelectasis/base/left
    assert doc["findings"] == ["pulmonary atelectasis"]
    assert "Pulmonary Atelectasis" in doc["descriptors"]
    assert {"Pulmonary Atelectasis", "Lung Diseases"} <= set(doc["ancestors"])
    assert (doc["locations"], doc["laterality"]) == (["base"], ["left"])
    assert "severity" not in doc
    severe = build_document(inputs["IMG-H"], vocabulary)  # Pleural Effusion/right/small
    assert severe["severity"] == ["small"] and severe["laterality"] == ["right"]


def test_report_sections_are_marked_report(inputs, vocabulary):
    doc = build_document(inputs["IMG-A"], vocabulary)
    assert doc["sources"] == ["report"]
    assert [(s["name"], s["source"]) for s in document_sections(doc)] == [
        ("annotation", "report"), ("concepts", "report"), ("impression", "report"), ("findings", "report"),
        ("indication", "report")]
    assert doc["report_findings"] == "Calcified granuloma in the right upper lobe."
    assert doc["report_annotation"] == "calcified granuloma lung upper lobe right"
    assert "generated_annotation" not in doc and "model_version" not in doc


def test_generated_annotation_with_probabilities_and_model_version(inputs, vocabulary):
    doc = build_document(inputs["IMG-E"], vocabulary)  # report: normal; cascade: opacity lung base right
    assert doc["sources"] == ["report", "generated"]
    assert doc["generated_annotation"] == "opacity lung base right"
    assert doc["model_version"] == ["model-v1"]
    assert doc["predicted_labels"] == ["opacity", "normal"]  # top label, then any with p >= 0.2
    assert doc["label_probabilities"] == {"opacity": 0.7, "normal": 0.3}
    assert ("annotation", "generated") in {(s["name"], s["source"]) for s in document_sections(doc)}
    by_source = {c["source"]: c["finding"] for c in doc["concepts"]}
    assert by_source == {"report": "normal", "generated": "opacity"}
    assert "opacity" in doc["generated_concepts"] and "opacity" not in doc["report_concepts"]
    assert display_annotation(doc) == "opacity lung base right"


def test_low_probability_labels_are_not_predicted(vocabulary):
    gen = GeneratedAnnotation(("cardiomegaly",), "m", "cardiomegaly", {"cardiomegaly": 0.85, "opacity": 0.1})
    doc = build_document(DocumentInput("X", generated=(gen,)), vocabulary)
    assert doc["predicted_labels"] == ["cardiomegaly"]
    assert "report_id" not in doc and doc["sources"] == ["generated"]


def test_without_a_vocabulary_the_head_term_is_the_finding(inputs):
    doc = build_document(inputs["IMG-B"], None)
    assert doc["findings"] == ["pulmonary atelectasis"]
    assert "ancestors" not in doc


def test_build_documents_is_lazy_and_one_per_input(inputs, vocabulary):
    gen = build_documents(iter(inputs.values()), vocabulary)
    assert next(gen)["image_id"] == "IMG-A"
    assert len(list(gen)) == len(inputs) - 1


def test_content_hash_changes_with_any_input(inputs):
    item = inputs["IMG-A"]
    base = content_hash("abc", item.entry, item.report, True)
    assert base == content_hash("abc", item.entry, item.report, True)
    assert base != content_hash("abd", item.entry, item.report, True)  # image bytes
    assert base != content_hash("abc", item.entry, item.report, False)  # synthetic flag
    assert base != content_hash("abc", inputs["IMG-B"].entry, item.report, True)  # manifest entry
    assert base != content_hash("abc", item.entry, None, True)  # report
    assert base != content_hash("abc", item.entry, item.report, True, vocabulary=object())  # vocabulary


def test_content_hash_changes_with_the_lexicon(inputs, tmp_path, monkeypatch):
    """A lexicon change re-reads every report's findings: reindex must not carry old documents over."""
    import indexer.documents as documents

    item = inputs["IMG-A"]
    base = content_hash("abc", item.entry, item.report, True)
    edited = tmp_path / "lexicon.json"
    edited.write_text(documents.LEXICON_FILE.read_text().replace('"hypoventilation"', '"hypoventilated"'))
    monkeypatch.setattr(documents, "LEXICON_FILE", edited)
    assert content_hash("abc", item.entry, item.report, True) != base


def test_validate_document():
    validate_document({"image_id": "X", "report_findings": "text", "view": "frontal"})
    with pytest.raises(DocumentError, match="image_id"):
        validate_document({"view": "frontal"})
    with pytest.raises(DocumentError, match="unknown field"):
        validate_document({"image_id": "X", "colour": "red"})
    with pytest.raises(DocumentError, match="must be a string"):
        validate_document({"image_id": "X", "report_findings": ["a"]})
    with pytest.raises(DocumentError):
        build_document(DocumentInput(""))


def test_keyword_values():
    assert keyword_values({"synthetic": True}, "synthetic") == ["true"]
    assert keyword_values({"view": "frontal"}, "view") == ["frontal"]
    assert keyword_values({"laterality": ["left", ""]}, "laterality") == ["left"]
    assert keyword_values({}, "view") == []


def test_text_fields_each_have_a_known_source():
    assert {source for source, _ in TEXT_FIELDS.values()} == {"report", "generated"}


def test_concept_probabilities_are_kept_per_key_with_the_highest_value():
    from indexer.documents import DocumentInput, GeneratedAnnotation, build_document

    gens = (GeneratedAnnotation(("opacity",), "m1", label="opacity",
                                concept_probabilities={"findings:opacity": 0.7, "laterality:right": 0.2}),
            GeneratedAnnotation(("opacity",), "m2", label="opacity",
                                concept_probabilities={"findings:opacity": 0.4, "laterality:left": 0.9}))
    doc = build_document(DocumentInput("img-1", generated=gens))
    assert doc["concept_probabilities"] == {"findings:opacity": 0.7, "laterality:left": 0.9, "laterality:right": 0.2}


def test_concept_keys_of_mesh_terms():
    from indexer.concepts import concept_key, concepts_of_terms, split_key
    from indexer.vocabulary import Vocabulary

    keys = concepts_of_terms(["Calcified Granuloma/lung/upper lobe/right", "No Indexing", "normal"], Vocabulary.load())
    assert keys == {"findings:calcified granuloma", "organs:lung", "locations:upper lobe", "laterality:right",
                    "findings:normal"}
    assert split_key(concept_key("locations", "Upper Lobe")) == ("locations", "upper lobe")
    with pytest.raises(ValueError):
        split_key("colour:red")
