"""Retrieval plans: a parsed query turned into backend-neutral matching rules, and the scores they give.

A `RankPlan` says, for one query, what each retriever must do; every text backend executes the same
plan (the embedded one in memory with numpy, Elasticsearch as a query DSL), so both give the same
ranking contract:

- **concepts** — each positive clause scores a document in [0, 1] by the best *level* it matches:
  the clause's groups with its location and side (1.0), at that location on both sides when one side
  was asked (0.9), at a neighbouring place on that side ("base" for "lower lobe", "apex" for "upper
  lobe": 0.85), with its side (0.8), with its location (0.7), on both sides (0.6), the group alone
  (0.5; or 1.0 when the clause names no place). A severity the clause asks for adds SEVERITY_BONUS.
  Atoms from the radiologist's MeSH indexing count in full, those read from the report text
  (positive mentions only) count TEXT_WEIGHT. From pixels (`generated`), a clause scores
  P(group) x (0.5 + 0.5 P(location)) x (0.5 + 0.5 P(side)) from the cascade's concept head, or the
  level score of its hard annotation when no probabilities exist. A document's concept score is the
  mean over positive clauses. A negated clause removes documents whose report states the finding; from
  pixels it removes images whose cascade score for it is at least EXCLUDE_MIN_PROBABILITY (in source
  `all` it only takes away their cascade evidence, since the report speaks for them).
- **lexical** — BM25 over the text fields of the source, with the query's non-negated words. When
  the whole query was understood as concepts, lexical search only re-ranks the concept matches (a
  report that merely says "right" is not a match for "right pleural effusion"); words the parser
  did not recognise make lexical matches candidates of their own.
- **vectors** (opt-in) — the query's annotation words embedded in the cascade's joint context space,
  nearest images by cosine (indexer.query.service); they only re-rank concept/lexical candidates.

Sources: `report` uses the radiologist's MeSH and report text only; `generated` only what the
cascade produced from pixels; `all` both, a generated match counting GENERATED_IN_ALL of a report
match of the same strength (so a cascade-only match never outranks an equal report match).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from indexer.concepts import atom
from indexer.documents import TEXT_FIELDS
from indexer.errors import InvalidQuery
from indexer.query.parse import Clause, ParsedQuery

SOURCES = ("all", "report", "generated")
RETRIEVERS = ("concepts", "lexical", "vectors")
# What runs unless asked otherwise: the vector retriever is opt-in, because it did not improve nDCG@10 on
# the val split in any source mode (README, `cxrsearch eval search`), and it costs torch and FAISS.
DEFAULT_RETRIEVERS = ("concepts", "lexical")

TEXT_WEIGHT = 0.9          # a finding read from report text vs one in the MeSH indexing
GENERATED_IN_ALL = 0.9     # a cascade match vs a report match of the same strength, in source=all
SEVERITY_BONUS = 0.15
GENERATED_MIN_SCORE = 0.05  # below this a cascade probability is not a match (not counted, not ranked)
EXCLUDE_MIN_PROBABILITY = 0.5  # from pixels, a negated finding excludes images the cascade gives at least this

LEVEL_FULL, LEVEL_BILATERAL_AT, LEVEL_NEAR, LEVEL_SIDE, LEVEL_LOCATION, LEVEL_BILATERAL, LEVEL_GROUP = \
    1.0, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5

# Places a radiologist reads as (nearly) the same: a finding at the right base is in the right lower lobe.
NEAR_LOCATIONS = {"lower lobe": ("base",), "base": ("lower lobe",), "upper lobe": ("apex",), "apex": ("upper lobe",)}


@dataclass(frozen=True)
class Level:
    """A set of atoms and the score a document gets when it has any of them."""

    atoms: tuple[str, ...]
    weight: float


@dataclass(frozen=True)
class ClausePlan:
    """How one clause is matched: levels of atoms (report/text/hard annotation) and the cascade's groups."""

    label: str
    levels: tuple[Level, ...]
    bonus: tuple[str, ...] = ()                    # severity atoms, worth SEVERITY_BONUS
    groups: tuple[str, ...] = ()                   # for probabilities from pixels
    location_keys: tuple[str, ...] = ()            # 'locations:upper lobe' concept keys
    side_key: str | None = None                    # 'laterality:right'
    negated: bool = False

    @property
    def all_atoms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a for level in self.levels for a in level.atoms))


@dataclass
class RankPlan:
    """Everything a backend needs to rank one query (see the module docstring)."""

    clauses: list[ClausePlan] = field(default_factory=list)     # positive
    exclusions: list[ClausePlan] = field(default_factory=list)  # negated
    lexical: str = ""
    source: str = "all"
    retrievers: tuple[str, ...] = RETRIEVERS
    negation: bool = True         # False: the ablation without assertion (raw report text, every mention)
    lexical_matches: bool = True  # lexical matches are candidates of their own (else they only re-rank)

    @property
    def text_fields(self) -> dict[str, float]:
        """The lexical fields of the source, with their BM25 weights."""
        wanted = {"all": ("report", "generated"), "report": ("report",), "generated": ("generated",)}[self.source]
        return {name: w for name, (src, w) in TEXT_FIELDS.items() if src in wanted}

    @property
    def uses_report(self) -> bool:
        return self.source in ("all", "report")

    @property
    def uses_generated(self) -> bool:
        return self.source in ("all", "generated")

    def wants(self, retriever: str) -> bool:
        return retriever in self.retrievers

    def to_dict(self) -> dict:
        return {"source": self.source, "retrievers": list(self.retrievers), "negation": self.negation,
                "lexical": self.lexical, "clauses": [c.label for c in self.clauses],
                "exclusions": [c.label for c in self.exclusions]}


def clause_plan(clause: Clause) -> ClausePlan:
    """The matching levels of one parsed clause."""
    groups, locations, side = clause.groups, clause.locations, clause.side
    levels: list[Level] = []
    if locations and side:
        levels.append(Level(tuple(atom(g, location=loc, side=side) for g in groups for loc in locations), LEVEL_FULL))
        if side in ("left", "right"):  # both sides at that place include the one asked for
            levels.append(Level(tuple(atom(g, location=loc, side="bilateral") for g in groups for loc in locations),
                                LEVEL_BILATERAL_AT))
        near = [n for loc in locations for n in NEAR_LOCATIONS.get(loc, ()) if n not in locations]
        if near:
            levels.append(Level(tuple(atom(g, location=n, side=side) for g in groups for n in near), LEVEL_NEAR))
    if side:
        levels.append(Level(tuple(atom(g, side=side) for g in groups), LEVEL_SIDE if locations else LEVEL_FULL))
        if side in ("left", "right"):
            levels.append(Level(tuple(atom(g, side="bilateral") for g in groups), LEVEL_BILATERAL))
    if locations:
        levels.append(Level(tuple(atom(g, location=loc) for g in groups for loc in locations),
                            LEVEL_LOCATION if side else LEVEL_FULL))
    levels.append(Level(tuple(groups), LEVEL_GROUP if (locations or side) else LEVEL_FULL))
    bonus = tuple(atom(g, severity=clause.severity) for g in groups) if clause.severity else ()
    return ClausePlan(clause.label, tuple(levels), bonus, tuple(groups),
                      tuple(f"locations:{loc}" for loc in locations),
                      f"laterality:{side}" if side and side != "bilateral" else None, clause.negated)


def exclusion_plan(clause: Clause) -> ClausePlan:
    """A negated clause: documents with any of its most specific atoms are excluded."""
    plan = clause_plan(clause)
    return ClausePlan(plan.label, plan.levels[:1], (), plan.groups, plan.location_keys, plan.side_key, True)


def build_plan(parsed: ParsedQuery, source: str = "all", retrievers: tuple[str, ...] | None = None,
               negation: bool = True) -> RankPlan:
    """The plan of a parsed query for one source mode and set of retrievers (ablations switch parts off)."""
    if source not in SOURCES:
        raise InvalidQuery(f"source={source!r} is invalid; valid: {', '.join(SOURCES)}")
    chosen = DEFAULT_RETRIEVERS if retrievers is None else tuple(retrievers)
    for r in chosen:
        if r not in RETRIEVERS:
            raise InvalidQuery(f"retriever {r!r} is unknown; valid: {', '.join(RETRIEVERS)}")
    clauses = [clause_plan(c) for c in parsed.positive]
    exclusions = [exclusion_plan(c) for c in parsed.negative] if negation else []
    if not negation:  # without assertion a negated word is just a word again
        clauses += [clause_plan(Clause(c.label, c.groups, c.locations, c.side, c.severity)) for c in parsed.negative]
    lexical = parsed.lexical if negation else " ".join(c.text for c in parsed.concepts if c.kind != "negation") \
        + (" " + " ".join(parsed.unrecognised) if parsed.unrecognised else "")
    lexical_matches = bool(parsed.unrecognised) or not clauses or "concepts" not in chosen
    return RankPlan(clauses, exclusions, lexical.strip(), source, chosen, negation, lexical_matches)


def generated_clause_score(plan: ClausePlan, group_scores, location_p, side_p):
    """P(group) x (0.5 + 0.5 P(location)) x (0.5 + 0.5 P(side)) — works on floats and numpy arrays alike.

    Args:
        group_scores: the best cascade score among the clause's groups.
        location_p: the best probability among its location keys (None when it names no location).
        side_p: the probability of its side (None when it names none).
    """
    score = group_scores
    if location_p is not None:
        score = score * (0.5 + 0.5 * location_p)
    if side_p is not None:
        score = score * (0.5 + 0.5 * side_p)
    return score
