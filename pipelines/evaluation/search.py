"""Search relevance, measured on held-out images from their reports' MeSH terms (never from generated text).

A committed query set (`queries.json` beside this module) gives, for each query, rules over MeSH
major terms written by hand, independent of the search code's vocabulary and lexicon:

    {"id": "loc-03", "category": "location+laterality", "text": "calcified granuloma right upper lobe",
     "relevant": [{"head": ["calcified granuloma"], "all": ["upper lobe", "right"]}],
     "partial": [{"head": ["calcified granuloma"]}]}

A rule matches one MeSH term (`Calcified Granuloma/lung/upper lobe/right`: head `calcified granuloma`,
subheadings `lung`, `upper lobe`, `right`) when its head is listed, every word of `all` is a
subheading, and (when given) at least one of `any` is. An image is graded 2 when a term matches a
`relevant` rule, 1 when one matches a `partial` rule, 0 otherwise, and 0 whenever a term matches an
`exclude` rule (negated queries). Metrics over the images of one split (default test):
P@10 and MAP count grade 2 as relevant; nDCG@10 uses the grades (gain 2^g - 1).
"""
from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

QUERIES_FILE = Path(__file__).resolve().parent / "queries.json"


@dataclass(frozen=True)
class Rule:
    """Matches a MeSH term by its head and subheadings (lower case)."""

    heads: frozenset[str]
    all: frozenset[str] = frozenset()
    any: frozenset[str] = frozenset()

    @classmethod
    def from_dict(cls, d: Mapping) -> Rule:
        unknown = set(d) - {"head", "all", "any"}
        if unknown or "head" not in d:
            raise ValueError(f"rule {dict(d)!r}: needs 'head' and may have 'all', 'any' (not {sorted(unknown)})")
        return cls(frozenset(h.lower() for h in d["head"]), frozenset(s.lower() for s in d.get("all", ())),
                   frozenset(s.lower() for s in d.get("any", ())))

    def matches(self, parts: Sequence[str]) -> bool:
        head, subs = parts[0], set(parts[1:])
        return head in self.heads and self.all <= subs and (not self.any or bool(self.any & subs))


@dataclass(frozen=True)
class EvalQuery:
    """One query of the set, with its relevance rules."""

    id: str
    category: str
    text: str
    relevant: tuple[Rule, ...]
    partial: tuple[Rule, ...] = ()
    exclude: tuple[Rule, ...] = ()
    source_note: str = ""

    def grade(self, mesh: Iterable[str]) -> int:
        """0, 1 or 2 for an image with these MeSH major terms."""
        terms = [[p.strip().lower() for p in t.split("/") if p.strip()] for t in mesh]
        terms = [t for t in terms if t]
        if any(r.matches(t) for r in self.exclude for t in terms):
            return 0
        if any(r.matches(t) for r in self.relevant for t in terms):
            return 2
        if any(r.matches(t) for r in self.partial for t in terms):
            return 1
        return 0


def load_queries(path: str | Path = QUERIES_FILE) -> list[EvalQuery]:
    """The query set; raises ValueError naming the query with a malformed rule or a duplicate id."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    out, seen = [], set()
    for q in data["queries"]:
        if q["id"] in seen:
            raise ValueError(f"{path}: duplicate query id {q['id']!r}")
        seen.add(q["id"])
        try:
            out.append(EvalQuery(q["id"], q["category"], q["text"],
                                 tuple(Rule.from_dict(r) for r in q["relevant"]),
                                 tuple(Rule.from_dict(r) for r in q.get("partial", ())),
                                 tuple(Rule.from_dict(r) for r in q.get("exclude", ()))))
        except (KeyError, ValueError) as e:
            raise ValueError(f"{path}: query {q.get('id')!r}: {e}") from e
    return out


# --- metrics -----------------------------------------------------------------------------------------


def precision_at(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    return sum(1 for i in ranked[:k] if grades.get(i, 0) == 2) / k


def ndcg_at(ranked: Sequence[str], grades: Mapping[str, int], k: int = 10) -> float:
    def dcg(gs: Sequence[int]) -> float:
        return sum((2 ** g - 1) / math.log2(r + 2) for r, g in enumerate(gs))

    ideal = dcg(sorted(grades.values(), reverse=True)[:k])
    return dcg([grades.get(i, 0) for i in ranked[:k]]) / ideal if ideal > 0 else 0.0


def average_precision(ranked: Sequence[str], grades: Mapping[str, int]) -> float:
    relevant = sum(1 for g in grades.values() if g == 2)
    if not relevant:
        return 0.0
    hits, total = 0, 0.0
    for rank, i in enumerate(ranked, 1):
        if grades.get(i, 0) == 2:
            hits += 1
            total += hits / rank
    return total / relevant


@dataclass
class RunScores:
    """Per-query and mean metrics of one configuration (source mode or ablation)."""

    name: str
    per_query: dict[str, dict] = field(default_factory=dict)

    def mean(self, metric: str, category: str | None = None) -> float:
        values = [q[metric] for q in self.per_query.values() if category is None or q["category"] == category]
        return round(statistics.fmean(values), 4) if values else 0.0

    def summary(self) -> dict:
        return {"P@10": self.mean("P@10"), "nDCG@10": self.mean("nDCG@10"), "MAP": self.mean("MAP"),
                "queries": len(self.per_query)}


def evaluate_run(name: str, queries: Sequence[EvalQuery], images: Mapping[str, Sequence[str]],
                 search: Callable[[EvalQuery], list[str]], depth: int = 1000) -> RunScores:
    """Score one configuration: `search(query)` returns ranked image ids (at most `depth` are scored).

    Args:
        images: image id -> MeSH major terms, for every image of the evaluated split.
    """
    run = RunScores(name)
    for q in queries:
        grades = {i: g for i, mesh in images.items() if (g := q.grade(mesh))}
        if not any(g == 2 for g in grades.values()):
            continue  # no relevant image in this split: the query says nothing here
        ranked = [i for i in search(q)[:depth] if i in images]
        run.per_query[q.id] = {"category": q.category, "text": q.text, "relevant": sum(g == 2 for g in grades.values()),
                               "P@10": round(precision_at(ranked, grades), 4),
                               "nDCG@10": round(ndcg_at(ranked, grades), 4),
                               "MAP": round(average_precision(ranked, grades), 4)}
    return run
