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


# --- atoms: what a concept says, as exact keyword values for matching ------------------------------------
#
# A document's concepts are indexed as *atoms*: a concept group (its finding, each MeSH descriptor and
# ancestor, its organ, its category) alone and combined with where it is (side, location) and how bad
# (severity). A query such as "pulmonary disease in the right upper lobe" then becomes exact lookups:
# `d:Lung Diseases|l:upper lobe|s:right` (best), `d:Lung Diseases|s:right`, ... (see indexer.query.plan).

# Locations that imply a side when the annotation names none.
IMPLIED_SIDE = {"lingula": "left"}


def group_atom(kind: str, value: str) -> str:
    """'f' (finding), 'd' (MeSH descriptor or ancestor), 'o' (organ) or 'c' (category) -> 'f:opacity'."""
    if kind not in ("f", "d", "o", "c"):
        raise ValueError(f"atom group kind {kind!r}: use f, d, o or c")
    return f"{kind}:{value}"


def atom(group: str, location: str | None = None, side: str | None = None, severity: str | None = None) -> str:
    """A group atom qualified by location, side or severity: 'f:opacity|l:upper lobe|s:right'."""
    parts = [group]
    if location:
        parts.append(f"l:{location}")
    if side:
        parts.append(f"s:{side}")
    if severity:
        parts.append(f"v:{severity}")
    return "|".join(parts)


def organ_finding(finding: str, organ: str) -> str:
    """The value of an organ-qualified finding group: 'enlarged', 'aorta' -> 'enlarged@aorta'."""
    return f"{finding}@{organ}"


def concept_groups(concept: dict) -> list[str]:
    """The group atoms of one concept (a dict as indexer.documents stores it, with its ancestors).

    A finding with an organ is also a group of its own ('f:enlarged@aorta'), so that a query for an
    enlarged aorta does not reach an enlarged heart.
    """
    groups = []
    if concept.get("finding"):
        groups.append(group_atom("f", concept["finding"]))
        if concept.get("organ"):
            groups.append(group_atom("f", organ_finding(concept["finding"], concept["organ"])))
    for name in (*concept.get("descriptors", ()), *concept.get("ancestors", ())):
        groups.append(group_atom("d", name))
    if concept.get("organ"):
        groups.append(group_atom("o", concept["organ"]))
    if concept.get("category"):
        groups.append(group_atom("c", concept["category"]))
    return list(dict.fromkeys(groups))


def concept_side(concept: dict) -> str | None:
    """The concept's laterality, or the side its location implies (the lingula is on the left)."""
    if concept.get("laterality"):
        return concept["laterality"]
    for location in concept.get("locations", ()):
        if location in IMPLIED_SIDE:
            return IMPLIED_SIDE[location]
    return None


def concept_atoms(concept: dict) -> list[str]:
    """Every atom of one concept: each group alone, with its side, with each location, with both, with each severity."""
    side = concept_side(concept)
    locations = list(concept.get("locations", ()))
    severities = list(concept.get("severities", ()))
    out = []
    for g in concept_groups(concept):
        out.append(g)
        if side:
            out.append(atom(g, side=side))
        for location in locations:
            out.append(atom(g, location=location))
            if side:
                out.append(atom(g, location=location, side=side))
        for severity in severities:
            out.append(atom(g, severity=severity))
    return out
