"""Concept autocomplete: what the query parser understands (lexicon phrases, MeSH findings, places, sides, severity).

Suggestions come from the query parser's own phrase table (indexer.query.parse: the reviewed
lexicon and every MeSH finding or device descriptor) and the Open-i subheadings of the vocabulary,
so every suggestion is read back as a concept when searched; they are ranked by how many indexed
images carry the concept (facet counts of the live index), then by name.
"""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from indexer.vocabulary import TERMS_FILE, Vocabulary

KIND_ORDER = {"finding": 0, "location": 1, "laterality": 2, "severity": 3, "organ": 4, "device": 5, "qualifier": 6}
# the facet field a suggestion's kind is counted in
COUNT_FIELD = {"finding": "findings", "location": "locations", "laterality": "laterality", "severity": "severity"}
MAX_PREFIX = 100


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str
    mesh: str | None = None
    count_key: str | None = None   # the facet value whose count this suggestion shows (synonyms share one)

    def to_dict(self, count: int | None) -> dict:
        return {"text": self.text, "kind": self.kind, "mesh": self.mesh, "count": count}


def _entries() -> list[Suggestion]:
    vocab = Vocabulary.load()
    terms = json.loads(TERMS_FILE.read_text(encoding="utf-8"))
    seen: dict[str, Suggestion] = {}

    def add(text: str, kind: str, mesh_name: str | None = None, count_key: str | None = None) -> None:
        key = " ".join(text.lower().replace(",", " ").split()) if kind != "finding" or "," not in text else text.lower()
        if len(key) >= 3 and key not in seen:
            seen[key] = Suggestion(key, kind, mesh_name, (count_key or key).lower())

    from indexer.lexicon import GAP
    from indexer.query.parse import default_parser

    for toks, (kind, payload) in default_parser().matcher.entries():
        if GAP in toks:
            continue
        phrase = " ".join(toks)
        if kind == "finding" and getattr(payload, "terms", None):
            head = payload.terms[0].split("/")[0]
            add(phrase, "finding", head, head)
        elif kind == "group":
            descriptor = (getattr(payload, "descriptors", None) or (None,))[0]
            add(phrase, "finding", descriptor, getattr(payload, "name", None))
        elif kind == "modifier" and not getattr(payload, "abbreviation", None):
            for field, value in (("location", payload.location), ("laterality", payload.laterality),
                                 ("severity", payload.severity)):
                if value:
                    add(phrase, field, None, value)
                    break

    for key, entry in terms.get("terms", {}).items():
        if entry.get("category") in ("finding", "device", "normal", "procedure"):
            add(key, "device" if entry["category"] == "device" else "finding",
                (entry.get("descriptors") or [None])[0])
    for key, entry in terms.get("organ_findings", {}).items():
        add(key.split("/", 1)[-1], "finding", (entry.get("descriptors") or [None])[0])
    for key, entry in terms.get("subheadings", {}).items():
        kind = entry.get("kind")
        if kind in KIND_ORDER:
            add(entry.get("canonical") or key, kind, entry.get("mesh"))
    for name in vocab.names():
        category = vocab.descriptor(name).category
        if category in ("finding", "device"):
            add(name, category, name)
    return list(seen.values())


class ConceptSuggester:
    """Prefix suggestions over the vocabulary; counts come from the live index's facets when known."""

    def __init__(self):
        self._entries: list[Suggestion] | None = None
        self._lock = threading.Lock()

    def entries(self) -> list[Suggestion]:
        if self._entries is None:
            with self._lock:
                if self._entries is None:
                    self._entries = _entries()
        return self._entries

    def suggest(self, prefix: str, counts: dict[str, dict[str, int]], limit: int = 10) -> list[dict]:
        """Up to `limit` suggestions whose text or any of its words starts with `prefix` (case-insensitive).

        Concepts the index uses come first, most used first; then whole-name prefix matches.
        """
        wanted = " ".join(prefix.lower().split())
        scored = []
        for s in self.entries():
            if wanted and not (s.text.startswith(wanted) or f" {wanted}" in f" {s.text}"):
                continue
            count = counts.get(COUNT_FIELD.get(s.kind, ""), {}).get(s.count_key or s.text)
            if not wanted and count is None:
                continue
            scored.append(((-(count or 0), 0 if s.text.startswith(wanted) else 1, s.text != s.count_key,
                            KIND_ORDER.get(s.kind, 9), len(s.text), s.text), s, count))
        scored.sort(key=lambda item: item[0])
        out, seen = [], set()
        for _, s, count in scored:  # one phrase per concept: synonyms ('pleural fluid') share a count
            key = (s.kind, s.count_key) if count is not None else (s.kind, s.text)
            if key not in seen:
                seen.add(key)
                out.append(s.to_dict(count))
            if len(out) == limit:
                break
        return out
