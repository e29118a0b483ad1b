"""Concept keys: the `field:value` pairs that describe what an image shows, shared by the cascade and search.

A concept key names one value of one of the document's keyword fields, e.g. `findings:opacity`,
`organs:aorta`, `locations:upper lobe`, `laterality:right`. The cascade's concept head predicts a probability per
key (`concept_probabilities` in an image's document) and search ranks images by them, so both
sides derive keys from the same place: the MeSH major terms of a report, read through
`indexer.vocabulary` (the same reading that fills the document's `findings`/`organs`/`locations`/
`laterality` fields).
"""
from __future__ import annotations

from collections.abc import Iterable

from indexer.records import MeshTerm

# The keyword fields a concept key can name, in display order.
CONCEPT_FIELDS: tuple[str, ...] = ("findings", "organs", "locations", "laterality")

# Concept categories that say something about the image (not 'no indexing' or a technical remark).
IMAGE_CATEGORIES = frozenset({"finding", "device", "normal", "procedure"})


def concept_key(field: str, value: str) -> str:
    """'findings', 'opacity' -> 'findings:opacity' (raise ValueError for another field or an empty value)."""
    if field not in CONCEPT_FIELDS:
        raise ValueError(f"concept field {field!r} is not one of {CONCEPT_FIELDS}")
    if not value or not value.strip():
        raise ValueError(f"concept {field!r} needs a value")
    return f"{field}:{value.strip().lower()}"


def split_key(key: str) -> tuple[str, str]:
    """'locations:upper lobe' -> ('locations', 'upper lobe'); ValueError when it is not a concept key."""
    field, sep, value = key.partition(":")
    if not sep or field not in CONCEPT_FIELDS or not value:
        raise ValueError(f"{key!r} is not a concept key (FIELD:VALUE with FIELD in {CONCEPT_FIELDS})")
    return field, value


def concepts_of_terms(mesh_terms: Iterable[str], vocabulary) -> set[str]:
    """The concept keys of one image, from its report's MeSH major terms ('Opacity/lung/base/left', ...).

    Findings come from terms whose category says something about the image (IMAGE_CATEGORIES);
    organs, locations and laterality from those same terms. 'No Indexing' gives no concept.
    """
    keys: set[str] = set()
    for raw in mesh_terms:
        try:
            concept = vocabulary.concept(MeshTerm.parse(raw))
        except ValueError:
            continue
        if concept.category not in IMAGE_CATEGORIES:
            continue
        if concept.finding:
            keys.add(concept_key("findings", concept.finding))
        if concept.organ:
            keys.add(concept_key("organs", concept.organ))
        for location in concept.locations:
            keys.add(concept_key("locations", location))
        if concept.laterality:
            keys.add(concept_key("laterality", concept.laterality))
    return keys
