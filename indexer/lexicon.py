"""How findings are written in words: tokens with spans, a phrase matcher, and the reviewed lexicon file.

`indexer/data/lexicon.json` maps the phrases radiologists and users write ("small left pleural
effusion", "RUL", "big heart", "no pneumothorax") onto the project's MeSH-style terms. Two readers
use it: `indexer.assertion` (report text -> finding mentions, positive/negated/uncertain) and
`indexer.query.parse` (a free-text query -> concepts). Both match phrases on *normalised tokens*:
lower case, simple plurals folded ("effusions" = "effusion", "opacities" = "opacity"), and a `*`
inside a phrase stands for a gap of up to three tokens ("heart * enlarged" matches "heart is
mildly enlarged").
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter
from pathlib import Path
from typing import Any

from indexer.errors import VocabularyError

LEXICON_FILE = Path(__file__).resolve().parent / "data" / "lexicon.json"

GAP = "*"
MAX_GAP = 3

# Words whose plural is not the singular plus -s/-es/-ies.
_IRREGULAR = {
    "apices": "apex", "hila": "hilum", "pneumothoraces": "pneumothorax", "vertebrae": "vertebra",
    "bullae": "bulla", "granulomata": "granuloma", "atelectases": "atelectasis", "sulci": "sulcus",
    "bronchi": "bronchus", "sequelae": "sequela", "diagnoses": "diagnosis", "metastases": "metastasis",
    "thoraces": "thorax", "analyses": "analysis",
}
_KEEP = ("ss", "us", "is", "os")
# letters and digits of any script (a query word such as "épanchement" is one unrecognised word, never dropped)
_TOKEN = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*")


def normalise(word: str) -> str:
    """A token's matching form: lower case with simple plurals folded ('Effusions' -> 'effusion')."""
    w = word.lower()
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) < 4 or not w.endswith("s") or w.endswith(_KEEP):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "xes", "ches", "shes")):
        return w[:-2]
    return w[:-1]


@dataclass(frozen=True)
class Token:
    """One word of a text: as written, its matching form, and its character span."""

    text: str
    norm: str
    start: int
    end: int


def tokens(text: str) -> list[Token]:
    """The words of `text` with their spans ('t-spine' and 'r/o' stay one word)."""
    return [Token(m.group(0), normalise(m.group(0)), m.start(), m.end()) for m in _TOKEN.finditer(text or "")]


def phrase_tokens(phrase: str) -> tuple[str, ...]:
    """A lexicon phrase as normalised tokens, with GAP markers kept."""
    out = []
    for part in phrase.split():
        if part == GAP:
            out.append(GAP)
        else:
            out.extend(normalise(m.group(0)) for m in _TOKEN.finditer(part))
    return tuple(out)


@dataclass(frozen=True)
class Match:
    """A phrase found in a token list: tokens [start, end), what it means, and the tokens a gap skipped."""

    start: int
    end: int
    payload: Any
    phrase: tuple[str, ...]
    gap: tuple[int, ...] = ()

    @property
    def length(self) -> int:
        return self.end - self.start


class PhraseMatcher:
    """Finds lexicon phrases in token lists; longest match first, no two matches overlapping."""

    def __init__(self, entries: Iterable[tuple[str, Any]] = ()):
        self._by_first: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
        # the same phrases indexed for `all_matches`, each with its insertion number (matches at one token keep
        # that order, as find's tie-break depends on it): phrases without a gap by their whole token tuple, with
        # the lengths to try per first word; gap phrases per first word with the set of their words
        self._count = 0
        self._exact: dict[tuple[str, ...], list[tuple[int, tuple[str, ...], Any]]] = {}
        self._lengths: dict[str, tuple[int, ...]] = {}
        self._gapped: dict[str, list[tuple[int, tuple[str, ...], frozenset[str], Any]]] = {}
        for phrase, payload in entries:
            self.add(phrase, payload)

    def add(self, phrase: str, payload: Any) -> None:
        toks = phrase_tokens(phrase)
        if not toks or toks[0] == GAP or toks[-1] == GAP:
            raise VocabularyError(f"lexicon phrase {phrase!r}: must have words and not start or end with '*'")
        self._add_tokens(toks, payload)

    def _add_tokens(self, toks: tuple[str, ...], payload: Any) -> None:
        self._by_first.setdefault(toks[0], []).append((toks, payload))
        seq, self._count = self._count, self._count + 1
        if GAP in toks:
            words = frozenset(w for w in toks if w != GAP)
            self._gapped.setdefault(toks[0], []).append((seq, toks, words, payload))
        else:
            self._exact.setdefault(toks, []).append((seq, toks, payload))
            self._lengths[toks[0]] = tuple(sorted({*self._lengths.get(toks[0], ()), len(toks)}))

    def entries(self) -> Iterator[tuple[tuple[str, ...], Any]]:
        """Every (normalised phrase tokens, payload) pair."""
        for entries in self._by_first.values():
            yield from entries

    def merge(self, other: PhraseMatcher, wrap=lambda payload: payload) -> None:
        """Add every phrase of `other`, its payload passed through `wrap`."""
        for toks, payload in other.entries():
            self._add_tokens(toks, wrap(payload))

    def __contains__(self, word: str) -> bool:
        return normalise(word) in self._by_first

    def words(self) -> set[str]:
        """Every normalised word of every phrase."""
        return {w for toks, _ in self.entries() for w in toks if w != GAP}

    def all_matches(self, toks: Sequence[Token], blocked: set[int] | None = None) -> list[Match]:
        """Every phrase occurrence (overlaps allowed), skipping tokens in `blocked`; in token order, and at one
        token in the order the phrases were added."""
        norms = tuple(t.norm for t in toks)
        n = len(norms)
        present: set[str] | None = None
        out = []
        exact = self._exact
        for i, first in enumerate(norms):
            if blocked and i in blocked:
                continue
            lengths, gapped = self._lengths.get(first), self._gapped.get(first)
            if lengths is None and gapped is None:
                continue
            found: list[tuple[int, Match]] = []
            # phrases without a gap: one dict lookup per phrase length instead of a loop over every phrase
            # starting with this word (48 start with "pulmonary"); all_matches 0.045 -> 0.03 ms per bench query
            for length in lengths or ():
                end = i + length
                if end > n:
                    break
                hits = exact.get(norms[i:end])
                if hits and not (blocked and any(j in blocked for j in range(i, end))):
                    for seq, phrase, payload in hits:  # plain loops, not comprehensions: all_matches -13%
                        found.append((seq, Match(i, end, payload, phrase, ())))
            if gapped:
                # the recursive matcher only for gap phrases whose every word is in the text
                if present is None:
                    present = set(norms)
                for seq, phrase, words, payload in gapped:
                    if words <= present:
                        at = _match_at(norms, i, phrase, blocked or set())
                        if at is not None:
                            found.append((seq, Match(i, at[0], payload, phrase, at[1])))
            if len(found) > 1:
                found.sort(key=lambda f: f[0])
            for _, m in found:
                out.append(m)
        return out

    def find(self, toks: Sequence[Token], blocked: set[int] | None = None, priority=None) -> list[Match]:
        """Non-overlapping matches, longest (then fewest gap words, then by `priority(payload)`, then earliest)
        first; returned in text order."""
        rank = priority or (lambda payload: 0)
        # a match's phrase words are its tokens less the ones its gap skipped (no count over the phrase)
        candidates = sorted(self.all_matches(toks, blocked),
                            key=lambda m: (len(m.gap) + m.start - m.end, len(m.gap), rank(m.payload), m.start))
        # 1 per token a chosen match covers: a slice test instead of set algebra (with the key above, find less
        # all_matches 0.014 -> 0.009 ms per bench query)
        taken = bytearray(len(toks))
        chosen = []
        for m in candidates:
            if 1 in taken[m.start:m.end]:
                continue
            taken[m.start:m.end] = b"\x01" * (m.end - m.start)
            chosen.append(m)
        chosen.sort(key=attrgetter("start"))
        return chosen


def _match_at(norms: Sequence[str], i: int, phrase: Sequence[str],
             blocked: set[int]) -> tuple[int, tuple[int, ...]] | None:
    """Match `phrase` starting at token i; returns (end, gap token indices) or None. Gaps are lazy."""

    def go(pos: int, k: int, gap: tuple[int, ...]) -> tuple[int, tuple[int, ...]] | None:
        if k == len(phrase):
            return pos, gap
        word = phrase[k]
        if word == GAP:
            for skip in range(0, MAX_GAP + 1):
                if pos + skip > len(norms):
                    break
                if any(j in blocked for j in range(pos, pos + skip)):
                    break
                found = go(pos + skip, k + 1, gap + tuple(range(pos, pos + skip)))
                if found is not None:
                    return found
            return None
        if pos < len(norms) and norms[pos] == word and pos not in blocked:
            return go(pos + 1, k + 1, gap)
        return None

    return go(i, 0, ())


# --- the lexicon file -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Modifier:
    """What a modifier phrase says: a location, a side, a severity (any of them may be None)."""

    location: str | None = None
    laterality: str | None = None
    severity: str | None = None
    abbreviation: str | None = None


@dataclass(frozen=True)
class Group:
    """A query-only family of findings: MeSH descriptors (with their descendants), organs, categories."""

    name: str
    descriptors: tuple[str, ...] = ()
    organs: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    exclude_descriptors: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()          # Open-i findings that are not MeSH descriptors ('pulmonary congestion')


@dataclass(frozen=True)
class FindingEntry:
    """A finding phrase's meaning: one or more MeSH-style terms ('Aorta/tortuous')."""

    terms: tuple[str, ...]
    query_only: bool = False


@dataclass
class Lexicon:
    """The matchers built from lexicon.json (see the module docstring)."""

    findings: PhraseMatcher
    query_findings: PhraseMatcher          # findings + the query-only phrases (lay words, abbreviations)
    groups: PhraseMatcher
    organs: PhraseMatcher
    modifiers: PhraseMatcher
    normal: PhraseMatcher
    negation_pre: PhraseMatcher
    negation_post: PhraseMatcher
    uncertain_pre: PhraseMatcher
    uncertain_post: PhraseMatcher
    pseudo: PhraseMatcher
    terminators: PhraseMatcher
    finding_terms: tuple[str, ...] = ()
    phrases: dict[str, list[str]] = field(default_factory=dict)  # kind -> every phrase (autocomplete, fuzzy)

    @classmethod
    def load(cls) -> Lexicon:
        """The project's lexicon (read once, then cached)."""
        return _load_default()

    @classmethod
    def from_file(cls, path: str | Path) -> Lexicon:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            raise VocabularyError(f"{path}: cannot read the lexicon ({e})") from e
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> Lexicon:
        findings, query_findings = PhraseMatcher(), PhraseMatcher()
        phrases: dict[str, list[str]] = {"finding": [], "group": [], "organ": [], "modifier": [], "normal": []}
        terms: list[str] = []
        for entry in data.get("findings", []):
            raw = entry["term"]
            entry_terms = tuple(raw) if isinstance(raw, list) else (raw,)
            terms.extend(entry_terms)
            for phrase in entry.get("phrases", []):
                findings.add(phrase, FindingEntry(entry_terms))
                query_findings.add(phrase, FindingEntry(entry_terms))
                phrases["finding"].append(phrase)
            for phrase in entry.get("query_only", []):
                query_findings.add(phrase, FindingEntry(entry_terms, query_only=True))
                phrases["finding"].append(phrase)
        groups = PhraseMatcher()
        for entry in data.get("groups", []):
            group = Group(entry["name"], tuple(entry.get("descriptors", ())), tuple(entry.get("organs", ())),
                          tuple(entry.get("categories", ())), tuple(entry.get("exclude_descriptors", ())),
                          tuple(entry.get("findings", ())))
            for phrase in entry.get("phrases", []):
                groups.add(phrase, group)
                phrases["group"].append(phrase)
        organs = PhraseMatcher()
        for entry in data.get("organs", []):
            for phrase in entry["phrases"]:
                organs.add(phrase, entry["organ"])
                phrases["organ"].append(phrase)
        modifiers = PhraseMatcher()
        for entry in data.get("modifiers", []):
            mod = Modifier(entry.get("location"), entry.get("laterality"), entry.get("severity"),
                           entry.get("abbreviation"))
            for phrase in entry["phrases"]:
                modifiers.add(phrase, mod)
                phrases["modifier"].append(phrase)
        normal_entry = data.get("normal", {})
        normal = PhraseMatcher((p, normal_entry.get("term", "normal")) for p in normal_entry.get("phrases", []))
        phrases["normal"] = list(normal_entry.get("phrases", []))
        a = data.get("assertion", {})

        def triggers(name: str) -> PhraseMatcher:
            m = PhraseMatcher()
            for raw in a.get(name, []):
                phrase, _, scope = raw.partition("|")
                m.add(phrase, int(scope) if scope else None)
            return m

        return cls(findings, query_findings, groups, organs, modifiers, normal, triggers("negation_pre"),
                   triggers("negation_post"), triggers("uncertain_pre"), triggers("uncertain_post"),
                   triggers("pseudo"), triggers("terminators"), tuple(dict.fromkeys(terms)), phrases)


@lru_cache(maxsize=1)
def _load_default() -> Lexicon:
    return Lexicon.from_file(LEXICON_FILE)
