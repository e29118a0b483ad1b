"""Concept autocomplete: findings, devices, locations, sides and severities from the MeSH vocabulary, ranked by use."""
from __future__ import annotations

import json
import threading
from dataclasses import dataclass

from indexer.vocabulary import MESH_FILE, TERMS_FILE, Vocabulary

KIND_ORDER = {"finding": 0, "location": 1, "laterality": 2, "severity": 3, "organ": 4, "device": 5, "qualifier": 6}
# the facet field a suggestion's kind is counted in
COUNT_FIELD = {"finding": "findings", "location": "locations", "laterality": "laterality", "severity": "severity"}
MAX_PREFIX = 100


@dataclass(frozen=True)
class Suggestion:
    text: str
    kind: str
    mesh: str | None = None

    def to_dict(self, count: int | None) -> dict:
        return {"text": self.text, "kind": self.kind, "mesh": self.mesh, "count": count}


def _entries() -> list[Suggestion]:
    vocab = Vocabulary.load()
    terms = json.loads(TERMS_FILE.read_text(encoding="utf-8"))
    mesh = json.loads(MESH_FILE.read_text(encoding="utf-8"))["descriptors"]
    seen: dict[str, Suggestion] = {}

    def add(text: str, kind: str, mesh_name: str | None = None) -> None:
        key = text.lower()
        if key and key not in seen:
            seen[key] = Suggestion(key, kind, mesh_name)

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
    for name in mesh:
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
            count = counts.get(COUNT_FIELD.get(s.kind, ""), {}).get(s.text)
            if not wanted and count is None:
                continue
            scored.append(((-(count or 0), 0 if s.text.startswith(wanted) else 1, KIND_ORDER.get(s.kind, 9),
                            len(s.text), s.text), s, count))
        scored.sort(key=lambda item: item[0])
        return [s.to_dict(count) for _, s, count in scored[:limit]]
