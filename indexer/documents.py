"""Index documents: one JSON-ready dict per image, built by pure code from manifest, report and annotations.

A document carries everything the text index searches, filters and facets on, and what a result
page shows. Its schema is declared once here (TEXT_FIELDS, KEYWORD_FIELDS, STORED_FIELDS) and every
text backend derives its mapping or tables from it.

Where a text comes from is part of the schema: every full-text field is a section of one source,
`report_*` (written by a radiologist: annotation, findings, impression, indication, comparison)
or `generated_*` (written by the cascade), as TEXT_FIELDS records, so a result can say which one
matched; `document_sections(doc)` lists them for display. Example (abridged)::

    {"image_id": "CXR1_1_IM-0001-3001", "report_id": "1", "view": "frontal", "split": "train",
     "synthetic": true, "label": "calcified granuloma", "sources": ["report", "generated"],
     "report_annotation": "calcified granuloma lung upper lobe right",
     "generated_annotation": "calcified granuloma lung upper lobe right",
     "predicted_labels": ["calcified granuloma"], "model_version": ["tiny-gru-it1-3f2a"],
     "findings": ["calcified granuloma"], "ancestors": ["Granuloma", "Pathologic Processes", ...],
     "locations": ["upper lobe"], "laterality": ["right"], "severity": [],
     "report_findings": "...", "report_impression": "...",
     "concepts": [{"term": "calcified granuloma/lung/upper lobe/right", "source": "report", ...}], ...}

Nothing here touches a backend: build documents, test them, then hand them to any TextBackend.
"""
from __future__ import annotations

import hashlib
import json
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from indexer.assertion import NEGATED, POSITIVE, UNCERTAIN, find_mentions, positive_text
from indexer.concepts import concept_atoms, concept_groups, split_key
from indexer.errors import DocumentError
from indexer.lexicon import LEXICON_FILE
from indexer.records import SECTIONS, MeshTerm, Report

SCHEMA_VERSION = 2

REPORT = "report"  # written by a radiologist
GENERATED = "generated"  # written by the cascade
TEXT = "text"  # a finding a radiologist's report text states (positively), read by indexer.assertion

# Report sections whose sentences state findings (INDICATION and COMPARISON do not).
FINDING_SECTIONS = ("findings", "impression")

# Full-text fields: name -> (source, BM25 weight). Backends search these with BM25.
TEXT_FIELDS: dict[str, tuple[str, float]] = {
    "report_annotation": (REPORT, 2.0),
    "report_concepts": (REPORT, 1.5),
    "report_impression": (REPORT, 1.0),
    "report_findings": (REPORT, 1.0),
    "report_indication": (REPORT, 0.5),
    "report_comparison": (REPORT, 0.3),
    "generated_annotation": (GENERATED, 2.0),
    "generated_concepts": (GENERATED, 1.5),
}

# Exact-value fields for filters and facets (lists of strings, or one string).
KEYWORD_FIELDS: tuple[str, ...] = (
    "image_id", "report_id", "view", "split", "label", "sources", "predicted_labels", "model_version",
    "mesh_terms", "findings", "descriptors", "ancestors", "organs", "locations", "laterality", "severity",
    "categories", "positive_findings", "negated_findings", "uncertain_findings",
    "report_atoms", "text_atoms", "generated_atoms",
)
# Keyword fields that exist for matching concepts (indexer.concepts atoms), not for facets or display.
ATOM_FIELDS: tuple[str, ...] = ("report_atoms", "text_atoms", "generated_atoms")
BOOLEAN_FIELDS: tuple[str, ...] = ("synthetic",)
FILTER_FIELDS: tuple[str, ...] = KEYWORD_FIELDS + BOOLEAN_FIELDS

# Kept with the document and returned with hits, never searched.
STORED_FIELDS: tuple[str, ...] = ("annotations", "concepts", "label_probabilities", "concept_probabilities",
                                  "generated_scores", "sections", "mentions", "content_hash", "schema_version")

ALL_FIELDS: frozenset[str] = frozenset((*TEXT_FIELDS, *FILTER_FIELDS, *STORED_FIELDS))

# Facets a search returns unless asked for others.
DEFAULT_FACETS: tuple[str, ...] = ("findings", "locations", "laterality", "severity", "view", "split", "sources")

# A label other than the top one counts as predicted at this probability or above.
PREDICTED_MIN_PROBABILITY = 0.2

_CLUSTER_SUFFIX = re.compile(r"\s*[#:]\s*\d+$")


@dataclass(frozen=True)
class GeneratedAnnotation:
    """What the cascade wrote for one image (the output of `annotate`, minus the vectors).

    Attributes:
        words: the annotation word sequence, one MeSH component per word,
            e.g. ('calcified granuloma', 'lung', 'upper lobe', 'right').
        model_version: the checkpoint's version string (iteration, RNN kind, hash).
        label: the CNN's top label (the first word at sampling time), if known.
        probabilities: label -> probability, for the labels the model reports.
        score: probability of the word sequence, if the model reports one.
        concept_probabilities: concept key ('findings:opacity', see indexer.concepts) -> probability
            from the cascade's multi-label concept head, for the concepts it was trained on.
    """

    words: tuple[str, ...]
    model_version: str
    label: str | None = None
    probabilities: Mapping[str, float] = field(default_factory=dict)
    score: float | None = None
    concept_probabilities: Mapping[str, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return " ".join(self.words)


class VocabularyLike(Protocol):
    """What documents need from `indexer.vocabulary.Vocabulary`."""

    def concept(self, term: MeshTerm) -> Any: ...


class EntryLike(Protocol):
    """What documents need from `pipelines.manifest.ManifestEntry`."""

    image_id: str
    report_id: str
    split: str
    label: str | None
    words: tuple[str, ...]
    view: str
    mesh: tuple[str, ...]


@dataclass(frozen=True)
class DocumentInput:
    """Everything one image's document is built from.

    `content_hash` fingerprints these inputs (see `content_hash`); `generated` may be empty when no
    checkpoint ran, `entry`/`report` None for an image no report describes.
    """

    image_id: str
    entry: EntryLike | None = None
    report: Report | None = None
    generated: tuple[GeneratedAnnotation, ...] = ()
    synthetic: bool = False
    content_hash: str = ""


def default_vocabulary() -> VocabularyLike | None:
    """The project's MeSH vocabulary (`indexer.vocabulary`), or None when it is not installed."""
    try:
        from indexer.vocabulary import Vocabulary
    except ImportError:
        return None
    return Vocabulary.load()


def vocabulary_version(vocabulary: VocabularyLike | None) -> str:
    """A string that changes when the vocabulary does (part of every content hash)."""
    if vocabulary is None:
        return "none"
    for attr in ("version", "checksum", "sha256"):
        value = getattr(vocabulary, attr, None)
        if isinstance(value, str) and value:
            return value
    module = sys.modules.get(type(vocabulary).__module__)
    files = [getattr(module, name, None) for name in ("MESH_FILE", "TERMS_FILE")]
    if all(isinstance(f, Path) and f.is_file() for f in files):
        return _files_digest(tuple(files))
    return type(vocabulary).__qualname__


def lexicon_version() -> str:
    """A string that changes when indexer/data/lexicon.json does (part of every content hash): a reindex after a
    lexicon change rebuilds every document instead of carrying the old findings over."""
    return _files_digest((LEXICON_FILE,))


@lru_cache(maxsize=8)
def _files_digest(paths: tuple[Path, ...]) -> str:
    h = hashlib.sha256()
    for path in paths:
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def content_hash(image_digest: str, entry: EntryLike | None, report: Report | None, synthetic: bool,
                 vocabulary: VocabularyLike | None = None) -> str:
    """sha256 over everything a document is built from except the model (its version is compared apart): the
    image, the manifest entry, the report, the vocabulary and the lexicon.

    Args:
        image_digest: sha256 of the image file's bytes ('' when there is no image file).
        entry, report: the manifest entry and report, when they exist.
        synthetic: whether the image is a synthetic stand-in.
        vocabulary: the vocabulary that maps terms to concepts.
    """
    parts = {
        "schema": SCHEMA_VERSION,
        "image": image_digest,
        "entry": _entry_dict(entry),
        "report": None if report is None else {
            "report_id": report.report_id, **report.sections(),
            "mesh_major": [t.raw for t in report.mesh_major],
        },
        "synthetic": bool(synthetic),
        "vocabulary": vocabulary_version(vocabulary),
        # the lexicon decides the report's positive / negated / uncertain findings and its searchable text
        "lexicon": lexicon_version(),
    }
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()


def build_document(item: DocumentInput, vocabulary: VocabularyLike | None = None) -> dict:
    """One image's index document (a JSON-ready dict; see the module docstring for its shape)."""
    if not item.image_id:
        raise DocumentError("a document needs an image id")
    entry, report = item.entry, item.report
    doc: dict[str, Any] = {
        "image_id": item.image_id,
        "report_id": (entry.report_id if entry else None) or (report.report_id if report else None),
        "view": entry.view if entry else None,
        "split": entry.split if entry else None,
        "label": entry.label if entry else None,
        "synthetic": bool(item.synthetic),
        "content_hash": item.content_hash or None,
        "schema_version": SCHEMA_VERSION,
    }
    sources: list[str] = []
    concepts: list[dict] = []

    # --- what the radiologist wrote --------------------------------------------------------------
    mesh_raw = list(entry.mesh) if entry else [t.raw for t in report.mesh_major] if report else []
    report_terms = [_parse_term(raw) for raw in mesh_raw]
    report_terms = [t for t in report_terms if t is not None]
    if report_terms:
        doc["mesh_terms"] = _unique(t.key for t in report_terms)
        doc["report_annotation"] = "; ".join(_term_words(t) for t in report_terms)
        sources.append(REPORT)
        concepts += [_concept(t, REPORT, vocabulary) for t in report_terms]
        doc["report_atoms"] = _unique(a for c in concepts if c["source"] == REPORT for a in concept_atoms(c))
    if report is not None:
        sections, mentions = {}, []
        for name in SECTIONS:
            text = getattr(report, name)
            if not text:
                continue
            sections[name] = text
            searchable, found = _read_section(text)
            doc[f"report_{name}"] = searchable  # without negated and uncertain findings: what lexical search matches
            sources.append(REPORT)
            if name in FINDING_SECTIONS:
                mentions += [dict(m, section=name) for m in found]
        doc["sections"] = sections
        if mentions:
            doc["mentions"] = mentions
        for assertion, field_name in ((POSITIVE, "positive_findings"), (NEGATED, "negated_findings"),
                                      (UNCERTAIN, "uncertain_findings")):
            said = [_concept(t, TEXT, vocabulary) for m in mentions if m["assertion"] == assertion
                    if (t := _parse_term(m["term"])) is not None]
            doc[field_name] = _unique(c["finding"] for c in said if c["finding"])
            if assertion == POSITIVE:
                doc["text_atoms"] = _unique(a for c in said for a in concept_atoms(c))

    # --- what the cascade wrote ------------------------------------------------------------------
    annotations = []
    predicted: list[str] = []
    probabilities: dict[str, float] = {}
    concept_probabilities: dict[str, float] = {}
    for gen in item.generated:
        annotations.append({
            "text": gen.text, "words": list(gen.words), "source": GENERATED, "label": gen.label,
            "score": None if gen.score is None else float(gen.score), "model_version": gen.model_version,
        })
        sources.append(GENERATED)
        if gen.label:
            predicted.append(gen.label)
        for label, p in sorted(gen.probabilities.items(), key=lambda kv: -kv[1]):
            probabilities[label] = max(float(p), probabilities.get(label, 0.0))
            if p >= PREDICTED_MIN_PROBABILITY:
                predicted.append(label)
        for key, p in gen.concept_probabilities.items():
            concept_probabilities[key] = max(float(p), concept_probabilities.get(key, 0.0))
        term = _parse_term("/".join(gen.words)) if gen.words else _parse_term(_CLUSTER_SUFFIX.sub("", gen.label or ""))
        if term is not None:
            concepts.append(_concept(term, GENERATED, vocabulary))
            doc["generated_atoms"] = _unique([*doc.get("generated_atoms", []), *concept_atoms(concepts[-1])])
    if annotations:
        doc["generated_annotation"] = "; ".join(a["text"] for a in annotations if a["text"])
        doc["annotations"] = annotations
        doc["predicted_labels"] = _unique(predicted)
        doc["label_probabilities"] = probabilities
        doc["concept_probabilities"] = dict(sorted(concept_probabilities.items()))
        doc["generated_scores"] = generated_scores(concept_probabilities, vocabulary)
        doc["model_version"] = _unique(a["model_version"] for a in annotations)

    # --- concepts: keyword fields are the union over sources; the list keeps each one's source -----
    if concepts:
        doc["concepts"] = [_stored_concept(c) for c in concepts]
        doc["findings"] = _unique(c["finding"] for c in concepts if c["finding"])
        doc["descriptors"] = _unique(d for c in concepts for d in c["descriptors"])
        doc["ancestors"] = _unique(a for c in concepts for a in (*c["descriptors"], *c["anatomy"], *c["ancestors"]))
        doc["organs"] = _unique(c["organ"] for c in concepts if c["organ"])
        doc["locations"] = _unique(x for c in concepts for x in c["locations"])
        doc["laterality"] = _unique(c["laterality"] for c in concepts if c["laterality"])
        doc["severity"] = _unique(x for c in concepts for x in c["severities"])
        doc["categories"] = _unique(c["category"] for c in concepts if c["category"])
        for source in (REPORT, GENERATED):
            names = _unique(n for c in concepts if c["source"] == source for n in _concept_words(c))
            if names:
                doc[f"{source}_concepts"] = " ".join(names)

    doc["sources"] = _unique(sources)
    return {k: v for k, v in doc.items() if v not in (None, [], {}, "")}


def generated_scores(probabilities: Mapping[str, float], vocabulary: VocabularyLike | None) -> dict[str, float]:
    """The cascade's concept probabilities as scores of concept groups (indexer.concepts), for ranking from pixels.

    `findings:X` gives its probability to every group of X (the finding, its MeSH descriptors and
    ancestors, its category); an organ-relative finding ('findings:enlarged') gives, with each organ
    it pairs with ('organs:heart' -> Heart/enlarged = Cardiomegaly), the product of the two
    probabilities to that pair's groups; `organs:O` gives its probability to the organ's group.
    A group's score is the highest it receives. Locations and sides stay in `concept_probabilities`.
    """
    findings, organs = {}, {}
    for key, p in probabilities.items():
        try:
            field_name, value = split_key(key)
        except ValueError:
            continue
        if field_name == "findings":
            findings[value] = float(p)
        elif field_name == "organs":
            organs[value] = float(p)
    scores: dict[str, float] = {}

    def give(term: str, p: float) -> bool:
        parsed = _parse_term(term)
        if parsed is None:
            return False
        c = _concept(parsed, GENERATED, vocabulary)
        if c["category"] in (None, "unknown", "anatomy", "none"):
            return False
        for g in concept_groups(c):
            scores[g] = max(p, scores.get(g, 0.0))
        return True

    pairs = set(vocabulary.organ_findings()) if hasattr(vocabulary, "organ_findings") else set()
    for finding, p in findings.items():
        if not give(finding, p):  # an organ-relative finding ('enlarged'): pair it with each organ it goes with
            for organ, q in organs.items():
                if (organ, finding) in pairs:
                    give(f"{organ}/{finding}", p * q)
    for organ, q in organs.items():
        scores[f"o:{organ}"] = max(q, scores.get(f"o:{organ}", 0.0))
    return {g: round(p, 4) for g, p in sorted(scores.items()) if p >= 0.001}


def build_documents(items: Iterable[DocumentInput], vocabulary: VocabularyLike | None = None) -> Iterator[dict]:
    """Documents for a stream of inputs, one per input, lazily (the job's mapper stage)."""
    for item in items:
        yield build_document(item, vocabulary)


def validate_document(doc: Mapping) -> None:
    """Raise DocumentError when `doc` does not fit the schema (both backends call this before writing)."""
    if not isinstance(doc, Mapping) or not doc.get("image_id") or not isinstance(doc.get("image_id"), str):
        raise DocumentError(f"a document needs a string image_id; got {str(doc)[:80]!r}")
    unknown = set(doc) - ALL_FIELDS
    if unknown:
        raise DocumentError(f"document {doc['image_id']!r}: unknown field(s) {sorted(unknown)}; "
                            f"valid: {sorted(ALL_FIELDS)}")
    for name in TEXT_FIELDS:
        if name in doc and not isinstance(doc[name], str):
            raise DocumentError(f"document {doc['image_id']!r}: text field {name!r} must be a string")


def keyword_values(doc: Mapping, name: str) -> list[str]:
    """A filter field's values as strings (booleans as 'true'/'false'), for indexing and facets."""
    value = doc.get(name)
    if value is None:
        return []
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value if v is not None and v != ""]


def display_annotation(doc: Mapping) -> str:
    """The annotation a result shows: the cascade's when it ran, else the report's."""
    return doc.get("generated_annotation") or doc.get("report_annotation") or ""


def document_sections(doc: Mapping) -> list[dict]:
    """The document's text sections for display, as written: [{'name', 'source', 'field', 'text'}], reports first.

    Report sections come from the stored `sections` (the full text; the searchable `report_*` fields
    leave out negated and uncertain findings).
    """
    written = doc.get("sections") or {}
    return [{"name": name.split("_", 1)[1], "source": source, "field": name,
             "text": written.get(name.split("_", 1)[1], doc[name]) if source == REPORT else doc[name]}
            for name, (source, _) in TEXT_FIELDS.items() if doc.get(name)]


# --- helpers ---------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _read_section(text: str) -> tuple[str, tuple[dict, ...]]:
    """(searchable text, finding mentions) of one report section; cached, since a report has several images."""
    found = find_mentions(text)
    return positive_text(text, found), tuple(m.to_dict() for m in found)


def _entry_dict(entry: EntryLike | None) -> dict | None:
    if entry is None:
        return None
    return {"image_id": entry.image_id, "report_id": entry.report_id, "split": entry.split, "label": entry.label,
            "words": list(entry.words), "view": entry.view, "mesh": list(entry.mesh)}


def _term_words(term: MeshTerm) -> str:
    """'Calcified Granuloma/lung/upper lobe/right' -> 'calcified granuloma lung upper lobe right'."""
    return " ".join(p.lower() for p in (term.head, *term.subheadings))


def _parse_term(raw: str) -> MeshTerm | None:
    try:
        return MeshTerm.parse(raw)
    except ValueError:
        return None


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(v for v in values if v))


def _names(value: Any) -> list[str]:
    """Names out of whatever the vocabulary returns: a string, an object with .name, or a sequence of those."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    name = getattr(value, "name", None)
    if isinstance(name, str):
        return [name]
    if isinstance(value, Mapping):
        return _names(value.get("name"))
    if isinstance(value, Iterable):
        return [n for v in value for n in _names(v)]
    return [str(value)]


def _first(value: Any) -> str | None:
    names = _names(value)
    return names[0] if names else None


def _concept(term: MeshTerm, source: str, vocabulary: VocabularyLike | None) -> dict:
    """A term's concept as a plain dict: finding, MeSH descriptors and ancestors, where, how bad."""
    if vocabulary is None:  # no vocabulary: the head term stands for the finding, nothing else is known
        return {"term": term.key, "source": source, "finding": term.head_key, "category": None, "descriptors": [],
                "anatomy": [], "ancestors": [], "organ": None, "locations": [], "laterality": None,
                "severities": [], "qualifiers": [], "unknown": []}
    c = vocabulary.concept(term)
    return {
        "term": term.key,
        "source": source,
        "finding": _first(getattr(c, "finding", None)),  # None for a bare organ ('Lung')
        "category": _first(getattr(c, "category", None)),
        "descriptors": _unique(_names(getattr(c, "descriptors", None))),
        "anatomy": _unique(_names(getattr(c, "anatomy", None))),
        "ancestors": _unique(_names(getattr(c, "ancestors", None))),
        "organ": _first(getattr(c, "organ", None)),
        "locations": _unique(_names(getattr(c, "locations", None))),
        "laterality": _first(getattr(c, "laterality", None)),
        "severities": _unique(_names(getattr(c, "severities", None))),
        "qualifiers": _unique(_names(getattr(c, "qualifiers", None))),
        "unknown": _unique(_names(getattr(c, "unknown", None))),
    }


def _stored_concept(c: Mapping) -> dict:
    """What a document keeps of a concept: no ancestors (the document's `ancestors` has them all), no empties."""
    return {k: v for k, v in c.items() if k != "ancestors" and v not in (None, [], "")}


def _concept_words(c: Mapping) -> Sequence[str]:
    """The names of a concept that its full-text field carries (not the ancestors: those are filters)."""
    singles = [c[name] for name in ("finding", "organ", "laterality") if c[name]]
    return [*singles, *c["descriptors"], *c["locations"], *c["severities"], *c["qualifiers"]]
