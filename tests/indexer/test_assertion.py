"""Finding mentions and their assertion (positive / negated / uncertain) on hand-written report sentences."""
from __future__ import annotations

import pytest

from indexer.assertion import NEGATED, POSITIVE, UNCERTAIN, find_mentions, positive_text


def read(sentence: str) -> list[tuple[str, str]]:
    return [(m.term, m.assertion) for m in find_mentions(sentence)]


@pytest.mark.parametrize("sentence, expected", [
    ("No pneumothorax or pleural effusion.", [("Pneumothorax", NEGATED), ("Pleural Effusion", NEGATED)]),
    ("Small left pleural effusion.", [("Pleural Effusion/left/small", POSITIVE)]),
    ("The heart is not enlarged.", [("Cardiomegaly", NEGATED)]),
    ("Heart is mildly enlarged.", [("Cardiomegaly/mild", POSITIVE)]),
    ("No change in cardiomegaly.", [("Cardiomegaly", POSITIVE)]),  # a pseudo-trigger is not a negation
    ("Possible right lower lobe pneumonia.", [("Pneumonia/lower lobe/right", UNCERTAIN)]),
    ("Pneumothorax has resolved.", [("Pneumothorax", NEGATED)]),
    ("Effusion cannot be excluded.", [("Pleural Effusion", UNCERTAIN)]),
    ("Lingular atelectasis.", [("Pulmonary Atelectasis/lingula/left", POSITIVE)]),
    ("Degenerative changes of the thoracic spine.", [("Thoracic Vertebrae/degenerative", POSITIVE)]),
    ("The lungs are free of focal airspace disease.", [("Airspace Disease/lung/focal", NEGATED)]),
    ("Heart size and pulmonary vascular engorgement appear within limits of normal.",
     [("Pulmonary Congestion/heart", NEGATED)]),
    ("Left basilar atelectasis versus infiltrate.",
     [("Pulmonary Atelectasis/base/left", POSITIVE), ("Infiltrate", POSITIVE)]),  # a differential names both
])
def test_assertion_of_hand_written_sentences(sentence, expected):
    assert read(sentence) == expected


def test_a_terminator_ends_the_negation():
    found = read("The lungs are clear without focal consolidation, but there is mild cardiomegaly.")
    assert found == [("Consolidation/lung/focal", NEGATED), ("Cardiomegaly/mild", POSITIVE)]


def test_a_list_after_one_negation_is_all_negated():
    found = read("Specifically, no evidence of focal consolidation, pneumothorax, or pleural effusion.")
    assert [a for _, a in found] == [NEGATED, NEGATED, NEGATED]


def test_modifiers_bind_to_the_nearest_finding():
    found = read("Right upper lobe opacity and left basilar atelectasis.")
    assert found == [("Opacity/upper lobe/right", POSITIVE), ("Pulmonary Atelectasis/base/left", POSITIVE)]


def test_sentences_are_read_separately_and_spans_point_into_the_text():
    text = "No effusion. Right pleural effusion is small."
    mentions = find_mentions(text)
    assert [(m.assertion, text[m.start:m.end]) for m in mentions] == [(NEGATED, "effusion"),
                                                                       (POSITIVE, "pleural effusion")]
    assert mentions[0].trigger == "No"


def test_positive_text_drops_only_negated_and_uncertain_findings():
    text = "No pneumothorax. Possible pneumonia. Mild cardiomegaly."
    assert positive_text(text, find_mentions(text)) == "No . Possible . Mild cardiomegaly."
    assert positive_text("Clear lungs.", find_mentions("Clear lungs.")) == "Clear lungs."
