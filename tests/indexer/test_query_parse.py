"""Query understanding: concepts with spans, hierarchy, places and sides, severity, negation, normal, typos."""
from __future__ import annotations

import pytest

from indexer.errors import InvalidQuery
from indexer.query.parse import MAX_QUERY_CHARS, parse_query


def clauses(text: str) -> list[tuple]:
    return [(c.groups[0], c.locations, c.side, c.severity, c.negated) for c in parse_query(text).clauses]


def test_spans_point_into_the_query_and_every_word_is_accounted_for():
    text = "Pulmonary disease in upper right lobe, foo"
    parsed = parse_query(text)
    assert all(text[c.start:c.end] == c.text for c in parsed.concepts)
    assert parsed.unrecognised == ["foo"] and parsed.ignored == ["in"]
    assert [c.kind for c in parsed.concepts] == ["group", "location"]


def test_hierarchy_lung_disease_reaches_lung_findings_and_open_i_terms():
    for text in ("lung disease", "pulmonary disease", "Lung Diseases"):
        groups = parse_query(text).clauses[0].groups
        assert {"d:Lung Diseases", "d:Granuloma, Respiratory Tract", "o:lung"} <= set(groups), text


@pytest.mark.parametrize("text, expected", [
    ("pulmonary disease in upper right lobe", ("d:Lung Diseases", ("upper lobe",), "right", None, False)),
    ("RUL opacity", ("f:opacity", ("upper lobe",), "right", None, False)),
    ("RML atelectasis", ("d:Pulmonary Atelectasis", ("middle lobe",), "right", None, False)),
    ("RLL pneumonia", ("d:Pneumonia", ("lower lobe",), "right", None, False)),
    ("LUL nodule", ("f:nodule", ("upper lobe",), "left", None, False)),
    ("LLL consolidation", ("f:consolidation", ("lower lobe",), "left", None, False)),
    ("opacity in the lingula", ("f:opacity", ("lingula",), "left", None, False)),  # the lingula is on the left
    ("bilateral pleural effusions", ("d:Pleural Effusion", (), "bilateral", None, False)),
    ("mild cardiomegaly", ("d:Cardiomegaly", (), None, "mild", False)),
    ("small left pleural effusion", ("d:Pleural Effusion", (), "left", "small", False)),
])
def test_places_sides_and_severity(text, expected):
    assert clauses(text)[0] == expected


@pytest.mark.parametrize("text, group", [
    ("big heart", "d:Cardiomegaly"), ("enlarged heart", "d:Cardiomegaly"), ("water on the lung", "d:Pleural Effusion"),
    ("broken rib", "d:Fractures, Bone"), ("COPD", "d:Pulmonary Disease, Chronic Obstructive"),
    ("CHF", "d:Heart Failure"), ("PICC line", "d:Catheters, Indwelling"), ("ET tube", "f:tube, inserted"),
    ("NG tube", "f:tube, inserted"), ("AICD", "f:implanted medical device"),
    ("pacemaker", "f:implanted medical device"),
    ("hyperinflated lungs", "f:hyperdistention@lung"), ("enlarged aorta", "f:enlarged@aorta"),
])
def test_synonyms_lay_words_and_abbreviations(text, group):
    assert group in parse_query(text).clauses[0].groups, parse_query(text).clauses


def test_negation_excludes_what_follows_until_with():
    parsed = parse_query("cardiomegaly without pleural effusion")
    assert [(c.label, c.negated) for c in parsed.clauses] == [("cardiomegaly", False), ("pleural effusion", True)]
    assert parsed.lexical == "cardiomegaly"  # negated words are not searched as words
    parsed = parse_query("no effusion with cardiomegaly")
    assert [(c.label, c.negated) for c in parsed.clauses] == [("effusion", True), ("cardiomegaly", False)]
    assert [c.negated for c in parse_query("no pneumothorax or effusion").clauses] == [True, True]
    # without a joining or/and, the negation ends at its finding
    parsed = parse_query("no pneumothorax calcified granuloma right upper lobe")
    assert [(c.label, c.negated) for c in parsed.clauses] == [("pneumothorax", True), ("calcified granuloma", False)]


def test_normal_and_no_acute_disease_ask_for_normal_examinations():
    for text in ("normal", "no acute disease", "no acute cardiopulmonary abnormality"):
        parsed = parse_query(text)
        assert [c.normal for c in parsed.clauses] == [True] and not parsed.clauses[0].negated, text


def test_typos_are_corrected_and_reported():
    parsed = parse_query("pnuemothorax right")
    assert parsed.clauses[0].groups == ("d:Pneumothorax",)
    assert parsed.corrections[0]["from"] == "pnuemothorax" and parsed.corrections[0]["to"] == "pneumothorax"
    assert parsed.concepts[0].corrected_from == "pnuemothorax"


def test_an_organ_alone_asks_for_its_findings_and_a_place_alone_for_any_finding():
    left_lung = parse_query("left lung").clauses[0]
    assert "d:Lung Diseases" in left_lung.groups and left_lung.side == "left"
    where = parse_query("right upper lobe").clauses[0]
    assert where.groups == ("c:finding",) and where.locations == ("upper lobe",) and where.side == "right"


def test_script_text_is_only_words():
    parsed = parse_query("<script>alert(1)</script>")
    assert parsed.clauses == [] and parsed.unrecognised == ["script", "alert", "1"]  # each word listed once


def test_words_of_any_script_are_listed_never_dropped():
    parsed = parse_query("épanchement pleural ñandú")
    assert parsed.unrecognised == ["épanchement", "ñandú"]
    assert [c["text"] for c in parsed.to_dict()["concepts"]] == ["pleural"]


def test_limits():
    with pytest.raises(InvalidQuery):
        parse_query("x" * (MAX_QUERY_CHARS + 1))
    assert parse_query("").empty
