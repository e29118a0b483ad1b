"""Query understanding: free text -> concepts with spans, hierarchy, place, side, severity and negation.

`parse_query("pulmonary disease in upper right lobe")` reads the words the way a radiologist means
them, through the project's lexicon (`indexer/data/lexicon.json`: findings, synonyms, lay words,
abbreviations, families such as "lung disease", organs, locations, sides, severities) and the MeSH
vocabulary (any descriptor name, e.g. "Lung Diseases"):

- every recognised phrase is a *concept* with its character span, so a user interface can show it
  as a chip and rebuild the query without it;
- findings, families and organs become *clauses*: the concept groups to match (indexer.concepts
  atoms: 'd:Lung Diseases', 'f:opacity', 'o:lung', ...) with the location, side and severity words
  that describe them ("upper right lobe" -> upper lobe, right; "lingula" -> lingula, left);
- "no", "without", "excluding" ... negate the clauses after them ("cardiomegaly without effusion");
- "normal", "no acute disease" ... ask for normal examinations;
- a misspelt word is corrected onto the nearest vocabulary word (rapidfuzz, similarity >= 85) and the
  correction is reported; filler words ("images", "with", "the") are listed as ignored and anything
  else as unrecognised — nothing is dropped silently.

The parse is returned with every search result so the user sees how the query was read.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from indexer.concepts import group_atom, organ_finding
from indexer.errors import InvalidQuery
from indexer.lexicon import Group, Lexicon, Match, Modifier, PhraseMatcher, Token, tokens
from indexer.records import MeshTerm
from indexer.vocabulary import Vocabulary

MAX_QUERY_CHARS = 2000
FUZZY_MIN_SCORE = 85
FUZZY_MIN_LENGTH = 4

# Words that carry no meaning in a query; listed as ignored, never as unrecognised.
FILLER_WORDS = frozenset("""
a an and are as at be but by for if in into is it of on or such that the their then there these they this to was will
with within show shows showing find finding findings image images patient patients case cases study studies exam
exams x-ray xray xrays x-rays cxr chest film films radiograph radiographs view views me all any some please search
look looking for from who whose which where has have having had seen visible evidence sign signs suggest suggesting
lobe lobes side sided area region zone part""".split())

# Query words that negate what follows them.
NEGATIONS = ("no", "not", "without", "excluding", "exclude", "except", "absent", "absence of", "negative for",
             "free of", "minus", "never", "non")
# Words that end a negation's reach ("no effusion with cardiomegaly").
NEGATION_ENDS = frozenset({"with", "but", "showing", "has", "have", "having", "plus", "yet"})
# Words that carry a negation on to the next finding ("no effusion or pneumothorax").
LIST_JOINERS = frozenset({"or", "and", "nor", "either", "neither"})

# An organ alone asks for the findings of that organ: the lexicon family to use.
ORGAN_FAMILIES = {
    "lung": "lung disease", "heart": "heart disease", "aorta": "aortic disease", "thoracic aorta": "aortic disease",
    "pleura": "pleural disease", "mediastinum": "mediastinal disease", "spine": "spine disease",
    "thoracic vertebrae": "spine disease", "lumbar vertebrae": "spine disease", "ribs": "bone disease",
    "clavicle": "bone disease", "shoulder": "bone disease", "humerus": "bone disease", "sternum": "bone disease",
}

# Location words a query may use bare ("upper", "lower"); in report text they are too vague to bind.
QUERY_LOCATIONS = {"upper": "upper lobe", "lower": "lower lobe", "middle": "middle lobe", "mid": "middle lobe"}

# A concept's value from its phrase's payload, per kind (modifiers apart).
_CONCEPT_VALUE = {"finding": lambda p: "; ".join(p.terms), "group": lambda p: p.name, "descriptor": lambda p: p,
                  "organ": lambda p: p, "normal": lambda p: "normal", "negation": lambda p: p}

# Tie-break between phrases of equal length: a family beats a single finding ("emphysema"), etc.
_PRIORITY = {"group": 0, "normal": 1, "finding": 2, "descriptor": 3, "negation": 4, "modifier": 5, "organ": 6}


@dataclass(frozen=True)
class QueryConcept:
    """One recognised phrase of the query, for display (a chip) and for rebuilding the query without it."""

    text: str
    start: int
    end: int
    kind: str                      # finding | group | organ | location | laterality | severity | normal | negation
    value: str
    negated: bool = False
    location: str | None = None
    laterality: str | None = None
    corrected_from: str | None = None

    def to_dict(self) -> dict:
        """Its fields without the unset ones (`negated` always); by hand, not dataclasses.asdict (0.1 ms each)."""
        out = {"text": self.text, "start": self.start, "end": self.end, "kind": self.kind, "value": self.value,
               "negated": self.negated}
        for name in ("location", "laterality", "corrected_from"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True)
class Clause:
    """What to match: concept groups (any of them), qualified by location, side and severity; or their absence."""

    label: str
    groups: tuple[str, ...]
    locations: tuple[str, ...] = ()
    side: str | None = None
    severity: str | None = None
    negated: bool = False
    normal: bool = False

    def to_dict(self) -> dict:
        return {"label": self.label, "groups": list(self.groups), "locations": list(self.locations),
                "side": self.side, "severity": self.severity, "negated": self.negated, "normal": self.normal}


@dataclass
class ParsedQuery:
    """How a query was read: concepts with spans, the clauses to match, and the words left over."""

    text: str
    concepts: list[QueryConcept] = field(default_factory=list)
    clauses: list[Clause] = field(default_factory=list)
    unrecognised: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    corrections: list[dict] = field(default_factory=list)
    lexical: str = ""              # the words lexical (BM25) search uses: nothing negated, no filler

    @property
    def positive(self) -> list[Clause]:
        return [c for c in self.clauses if not c.negated]

    @property
    def negative(self) -> list[Clause]:
        return [c for c in self.clauses if c.negated]

    @property
    def empty(self) -> bool:
        return not self.clauses and not self.lexical

    def to_dict(self) -> dict:
        return {"text": self.text, "concepts": [c.to_dict() for c in self.concepts],
                "clauses": [c.to_dict() for c in self.clauses], "unrecognised": list(self.unrecognised),
                "ignored": list(self.ignored), "corrections": list(self.corrections), "lexical": self.lexical}


class QueryParser:
    """Parses queries with one lexicon and vocabulary (build once; `parse` is cheap)."""

    def __init__(self, lexicon: Lexicon | None = None, vocabulary: Vocabulary | None = None):
        self.lexicon = lexicon or Lexicon.load()
        self.vocabulary = vocabulary or Vocabulary.load()
        self.matcher = self._build_matcher()
        self.known_words = tuple(sorted(w for w in self.matcher.words() if len(w) >= 3))
        self._known = frozenset(self.known_words)
        self._families = self._groups_by_name()
        # per lexicon term (a fixed set): its concept, and its groups with and without an organ
        self._term_concept_cache: dict[str, object] = {}
        self._term_groups_cache: dict[tuple[str, str | None], tuple[str, ...]] = {}

    # --- building -----------------------------------------------------------------------------------

    def _build_matcher(self) -> PhraseMatcher:
        lex, m = self.lexicon, PhraseMatcher()
        for kind, matcher in (("finding", lex.query_findings), ("group", lex.groups), ("organ", lex.organs),
                              ("modifier", lex.modifiers), ("normal", lex.normal)):
            m.merge(matcher, lambda payload, kind=kind: (kind, payload))
        for phrase in NEGATIONS:
            m.add(phrase, ("negation", phrase))
        for phrase, location in QUERY_LOCATIONS.items():
            m.add(phrase, ("modifier", Modifier(location=location)))
        for name in self.vocabulary.names():  # every MeSH finding or device descriptor is a query phrase
            if self.vocabulary.descriptor(name).category in ("finding", "device"):
                m.add(name.replace(",", " "), ("descriptor", name))
        return m

    def _groups_by_name(self) -> dict[str, Group]:
        return {group.name: group for _, group in self.lexicon.groups.entries()}

    # --- parsing ------------------------------------------------------------------------------------

    def parse(self, text: str) -> ParsedQuery:
        """Read one query (see the module docstring). Raises InvalidQuery for a query over MAX_QUERY_CHARS."""
        if text is None:
            text = ""
        if not isinstance(text, str):
            raise InvalidQuery(f"the query must be text, got {type(text).__name__}")
        if len(text) > MAX_QUERY_CHARS:
            raise InvalidQuery(f"the query is {len(text)} characters long; at most {MAX_QUERY_CHARS} are read")
        parsed = ParsedQuery(text=text)
        toks = tokens(text)
        toks = self._correct(toks, parsed)
        matches = self.matcher.find(toks, priority=lambda payload: _PRIORITY[payload[0]])
        covered = {i for m in matches for i in range(m.start, m.end)}
        for i, t in enumerate(toks):
            if i in covered:
                continue
            filler = t.norm in FILLER_WORDS or t.text.lower() in FILLER_WORDS
            listed = parsed.ignored if filler else parsed.unrecognised
            if t.text.lower() not in (w.lower() for w in listed):  # each word once
                listed.append(t.text)
        self._read(matches, toks, text, parsed)
        return parsed

    def _correct(self, toks: list[Token], parsed: ParsedQuery) -> list[Token]:
        """Replace misspelt words by the nearest vocabulary word (reported in parsed.corrections)."""
        known = self._known
        out = []
        for t in toks:
            if (t.norm in known or t.norm in FILLER_WORDS or len(t.norm) < FUZZY_MIN_LENGTH or t.norm.isdigit()):
                out.append(t)
                continue
            best = _closest(t.norm, self.known_words)
            if best is None:
                out.append(t)
                continue
            word, score = best
            parsed.corrections.append({"from": t.text, "to": word, "score": round(score, 1), "start": t.start,
                                       "end": t.end})
            out.append(Token(t.text, word, t.start, t.end))
        return out

    def _read(self, matches: Sequence[Match], toks: list[Token], text: str, parsed: ParsedQuery) -> None:
        heads = [m for m in matches if m.payload[0] in ("finding", "group", "descriptor", "organ", "normal")]
        modifiers = [m for m in matches if m.payload[0] == "modifier"]
        negations = [m for m in matches if m.payload[0] == "negation"]
        corrected = {c["start"]: c["from"] for c in parsed.corrections}

        # a negation reaches the next head, and the heads joined to it by or/and/nor ("no effusion or
        # pneumothorax"), up to a word that ends it; "no pneumothorax calcified granuloma" negates one
        negated_heads: set[int] = set()
        modifier_words = {i for m in modifiers for i in range(m.start, m.end)}
        for neg in negations:
            stop = next((i for i in range(neg.end, len(toks)) if toks[i].norm in NEGATION_ENDS), len(toks))
            reach = [k for k, h in enumerate(heads) if neg.end <= h.start < stop]
            for n, k in enumerate(reach):
                if n > 0:
                    between = [toks[i].norm for i in range(heads[reach[n - 1]].end, heads[k].start)
                               if i not in modifier_words]
                    if not between or any(w not in LIST_JOINERS for w in between):
                        break
                negated_heads.add(k)

        # organs next to a finding qualify it; an organ alone is a head of its own
        bound_mods: dict[int, list[Modifier]] = {k: [] for k in range(len(heads))}
        for mod in modifiers:
            k = _nearest(heads, mod)
            if k is not None:
                bound_mods[k].append(mod.payload[1])
        organ_of: dict[int, str] = {}
        standalone = []
        for k, h in enumerate(heads):
            if h.payload[0] != "organ":
                standalone.append(k)
                continue
            target = _nearest([heads[j] if heads[j].payload[0] != "organ" else None for j in range(len(heads))], h,
                              reach=2)
            if target is not None:
                organ_of.setdefault(target, h.payload[1])
                bound_mods[target] += bound_mods[k]
            else:
                standalone.append(k)

        for k in sorted(standalone):
            h = heads[k]
            kind, payload = h.payload
            mods = bound_mods[k]
            clause = self._clause(kind, payload, organ_of.get(k), mods, k in negated_heads,
                                  _span_text(toks, h, text))
            if clause is not None:
                parsed.clauses.append(clause)
        if not heads and modifiers:  # only where: "right upper lobe" -> any finding there
            mods = [m.payload[1] for m in modifiers]
            parsed.clauses.append(self._where_clause(mods, " ".join(_span_text(toks, m, text) for m in modifiers)))

        # concepts (chips), in text order; a head's number by identity, not `heads.index` (Match.__eq__ compares
        # every field; a query of 2,000 characters, 250 words, parses a third faster)
        head_number = {id(h): k for k, h in enumerate(heads)}
        for m in sorted(matches, key=lambda m: m.start):
            kind, payload = m.payload
            start, end = toks[m.start].start, toks[m.end - 1].end
            words = text[start:end]
            fixed = corrected.get(start) if m.length == 1 else None
            negated = head_number.get(id(m), -1) in negated_heads
            if kind == "modifier":
                mod: Modifier = payload
                mkind = "location" if mod.location else "laterality" if mod.laterality else "severity"
                value = mod.location or mod.laterality or mod.severity
                parsed.concepts.append(QueryConcept(words, start, end, mkind, value,
                                                    location=mod.location if mkind != "location" else None,
                                                    laterality=mod.laterality if mkind != "laterality" else None,
                                                    corrected_from=fixed))
            else:
                value = _CONCEPT_VALUE[kind](payload)
                parsed.concepts.append(QueryConcept(words, start, end, kind, value, negated, corrected_from=fixed))

        # lexical words: everything recognised or not, except negations, what they negate, and filler
        skip = {i for m in negations for i in range(m.start, m.end)}
        skip |= {i for k in negated_heads for i in range(heads[k].start, heads[k].end)}
        words = [t.norm if t.start in corrected else t.text.lower() for i, t in enumerate(toks)
                 if i not in skip and t.norm not in FILLER_WORDS and t.text.lower() not in FILLER_WORDS]
        parsed.lexical = " ".join(words)

    # --- clauses ------------------------------------------------------------------------------------

    def _clause(self, kind: str, payload, organ: str | None, mods: list[Modifier], negated: bool,
                label: str) -> Clause | None:
        locations = tuple(dict.fromkeys(m.location for m in mods if m.location))
        sides = [m.laterality for m in mods if m.laterality]
        side = None if not sides else ("bilateral" if len(set(sides)) > 1 or "bilateral" in sides else sides[0])
        severity = next((m.severity for m in mods if m.severity), None)
        if kind == "normal":
            return Clause("normal", (group_atom("f", "normal"),), negated=negated, normal=True)
        if kind == "finding":
            groups = tuple(dict.fromkeys(g for term in payload.terms for g in self._term_groups(term, organ)))
            # a side or location written into the phrase itself ('left lower lobe' abbreviations live in modifiers)
            for term in payload.terms:
                c = self._term_concept(term)
                locations = locations or c.locations
                side = side or c.laterality
        elif kind == "group":
            groups = self._family_groups(payload)
        elif kind == "descriptor":
            groups = (group_atom("d", payload),)
        elif kind == "organ":
            family = ORGAN_FAMILIES.get(payload)
            if family in self._families:
                groups = self._family_groups(self._families[family])
            else:
                groups = (group_atom("o", payload),)
        else:
            return None
        if not groups:
            return None
        return Clause(label, groups, tuple(locations), side, severity, negated)

    def _where_clause(self, mods: list[Modifier], label: str) -> Clause:
        clause = self._clause("group", Group("any finding", categories=("finding",)), None, mods, False, label)
        return clause if clause is not None else Clause(label, (group_atom("c", "finding"),))

    def _term_concept(self, term: str):
        """The vocabulary's concept of a lexicon term (kept: the lexicon's terms are a fixed set)."""
        c = self._term_concept_cache.get(term)
        if c is None:
            c = self._term_concept_cache[term] = self.vocabulary.concept(MeshTerm.parse(term))
        return c

    def _term_groups(self, term: str, organ: str | None) -> tuple[str, ...]:
        """The groups a lexicon term stands for (kept per term and organ; see `_read_term_groups`)."""
        key = (term, organ)
        groups = self._term_groups_cache.get(key)
        if groups is None:
            groups = self._term_groups_cache[key] = tuple(self._read_term_groups(term, organ))
        return groups

    def _read_term_groups(self, term: str, organ: str | None) -> list[str]:
        """The groups a lexicon term stands for: a MeSH descriptor (with its descendants) where the term is one,
        else the finding itself; an organ-relative finding ('Aorta/tortuous') is qualified by its organ."""
        c = self._term_concept(term)
        if c.category in ("unknown", "anatomy", "none") or not c.finding:
            return []
        head = MeshTerm.parse(term).head
        if c.organ and self.vocabulary.subheading(head) is not None and head.lower() != c.finding:
            if c.descriptors and c.descriptors[0] not in ("Lung", "Diaphragm") and \
                    self.vocabulary.descriptor(c.descriptors[0]).category == "finding" and \
                    c.descriptors[0] in _SPECIFIC_PAIR_DESCRIPTORS:
                return [group_atom("d", c.descriptors[0])]
            return [group_atom("f", organ_finding(c.finding, c.organ))]
        if head in self.vocabulary:
            name = self.vocabulary.descriptor(head).name
            if organ and c.finding:
                return [group_atom("f", organ_finding(c.finding, organ))]
            return [group_atom("d", name)]
        if organ:
            return [group_atom("f", organ_finding(c.finding, organ))]
        return [group_atom("f", c.finding)]

    def _family_groups(self, group: Group) -> tuple[str, ...]:
        groups = [group_atom("d", d) for d in group.descriptors]
        groups += [group_atom("f", f) for f in group.findings]
        groups += [group_atom("o", o) for o in group.organs]
        groups += [group_atom("c", c) for c in group.categories]
        return tuple(dict.fromkeys(groups))


# Organ + finding pairs whose descriptor is the finding itself ('Heart/enlarged' is Cardiomegaly).
_SPECIFIC_PAIR_DESCRIPTORS = frozenset({"Cardiomegaly", "Spondylosis", "Lymphadenopathy", "Hypertension, Pulmonary",
                                        "Osteoarthritis"})


def _nearest(heads: Sequence[Match | None], mod: Match, reach: int = 8) -> int | None:
    """The head a modifier describes: the nearest within reach, a following one on ties."""
    best, best_key = None, None
    for k, h in enumerate(heads):
        if h is None or h is mod:
            continue
        if mod.end <= h.start:
            key = (h.start - mod.end, 0)
        elif mod.start >= h.end:
            key = (mod.start - h.end, 1)
        elif mod.start >= h.start and mod.end <= h.end:
            key = (0, 0)
        else:
            continue
        if key[0] <= reach and (best_key is None or key < best_key):
            best, best_key = k, key
    return best


def _span_text(toks: list[Token], m: Match, text: str) -> str:
    return text[toks[m.start].start:toks[m.end - 1].end]


@lru_cache(maxsize=4096)
def _closest(word: str, choices: tuple[str, ...]) -> tuple[str, float] | None:
    from rapidfuzz import fuzz, process

    found = process.extractOne(word, choices, scorer=fuzz.ratio, score_cutoff=FUZZY_MIN_SCORE)
    return None if found is None else (found[0], float(found[1]))


@lru_cache(maxsize=1)
def default_parser() -> QueryParser:
    """The parser over the project's lexicon and vocabulary (built once)."""
    return QueryParser()


def parse_query(text: str) -> ParsedQuery:
    """Parse one query with the default parser (see the module docstring)."""
    return default_parser().parse(text)


__all__ = ["Clause", "ParsedQuery", "QueryConcept", "QueryParser", "default_parser", "parse_query"]
