"""Retrieval plans (indexer.query.plan) written as Elasticsearch query DSL: pure functions, no client.

The same rules as the embedded ranker (indexer.query.memory): a clause is a dis_max over constant_score
levels; the cascade's probabilities are function_score field_value_factor over numeric score fields;
exclusions are must_not clauses. indexer.text.elasticsearch sends them in one _msearch.
"""
from __future__ import annotations

from collections.abc import Sequence

from indexer.query.plan import (
    EXCLUDE_MIN_PROBABILITY,
    GENERATED_IN_ALL,
    GENERATED_MIN_SCORE,
    SEVERITY_BONUS,
    TEXT_WEIGHT,
)

# Stored objects whose values are numbers that ranking reads (function_score), one dynamic float field per key.
SCORE_OBJECTS = ("generated_scores", "concept_probabilities")
# Every value of generated_scores.* is also copied (copy_to, in the mapping only: `_source` is unchanged) into
# this one field, so "has the cascade's probabilities" is one doc-values lookup. `exists` on the object itself
# expands to a disjunction over all its dynamic subfields (224 on the demo corpus), which cost most of a search.
GENERATED_MARKER = "generated_scored"
HAS_SCORES = {"exists": {"field": GENERATED_MARKER}}
HAS_SCORES_OLD = {"exists": {"field": "generated_scores"}}  # indices built before the marker existed


def score_field(obj: str, key: str) -> str:
    """The field of one key of a score object; a '.' would be read as an object path, so it becomes '_'."""
    return f"{obj}.{key.replace('.', '_')}"




def levels_query(clause, fields: Sequence[tuple[str, float]]) -> dict:
    """The best level a document matches, as a dis_max of constant scores (plus the severity bonus)."""
    levels = [{"constant_score": {"filter": {"terms": {name: list(level.atoms)}}, "boost": level.weight * w}}
              for level in clause.levels for name, w in fields]
    best = {"dis_max": {"queries": levels, "tie_breaker": 0.0}}
    if not clause.bonus:
        return best
    should = [{"terms": {name: list(clause.bonus)}} for name, _ in fields]
    bonus = {"constant_score": {"filter": {"bool": {"should": should}}, "boost": SEVERITY_BONUS}}
    return {"bool": {"must": [best], "should": [bonus]}}


def generated_query(clause, has_scores: dict = HAS_SCORES) -> dict:
    """P(group) x (0.5 + 0.5 P(location)) x (0.5 + 0.5 P(side)) from the numeric score fields; images without
    probabilities (`has_scores` does not match them) score by the levels of their hard annotation."""
    groups = [{"field_value_factor": {"field": score_field("generated_scores", g), "missing": 0}}
              for g in clause.groups]
    query: dict = {"function_score": {"query": has_scores, "functions": groups,
                                      "score_mode": "max", "boost_mode": "replace"}}
    keys = ([clause.location_keys[0]] if clause.location_keys else []) + ([clause.side_key] if clause.side_key else [])
    for key in keys:
        query = {"function_score": {"query": query, "score_mode": "sum", "boost_mode": "multiply", "functions": [
            {"weight": 0.5},
            {"field_value_factor": {"field": score_field("concept_probabilities", key), "factor": 0.5, "missing": 0}}]}}
    hard = {"bool": {"must": [levels_query(clause, (("generated_atoms", 1.0),))],
                     "must_not": [has_scores]}}
    return {"dis_max": {"queries": [query, hard], "tie_breaker": 0.0}}


def concept_query(plan, generated_must_not: list[dict], has_scores: dict = HAS_SCORES) -> dict:
    """Sum over clauses of each clause's score in the plan's source mode (the caller divides by the clause count)."""
    n = len(plan.clauses)
    report = {"bool": {"should": [levels_query(c, (("report_atoms", 1.0), ("text_atoms", TEXT_WEIGHT)))
                                  for c in plan.clauses], "minimum_should_match": 1}}
    weight = GENERATED_IN_ALL if plan.source == "all" else 1.0  # a cascade match counts less beside reports
    generated = {"function_score": {
        "query": {"bool": {"should": [generated_query(c, has_scores) for c in plan.clauses], "minimum_should_match": 1,
                           "must_not": generated_must_not}},
        "functions": [{"weight": weight}], "boost_mode": "multiply",
        "min_score": (GENERATED_MIN_SCORE - 1e-6) * n * weight}}  # the same threshold as the embedded ranker
    if plan.source == "report":
        return report
    if plan.source == "generated":
        return generated
    return {"dis_max": {"queries": [report, generated], "tie_breaker": 0.0}}


def exclusions(plan, has_scores: dict = HAS_SCORES) -> tuple[list[dict], list[dict]]:
    """(must_not for every search, must_not for the cascade's evidence only) of the plan's negated clauses.

    `has_scores` matches the documents that carry the cascade's probabilities."""
    stated, seen = [], []
    for clause in plan.exclusions:
        atoms = list(clause.levels[0].atoms)
        if plan.uses_report:
            stated += [{"terms": {"report_atoms": atoms}}, {"terms": {"text_atoms": atoms}}]
        if plan.uses_generated:
            seen.append({"function_score": {
                "query": has_scores,
                "functions": [{"field_value_factor": {"field": score_field("generated_scores", g), "missing": 0}}
                              for g in clause.groups],
                "score_mode": "max", "boost_mode": "replace", "min_score": EXCLUDE_MIN_PROBABILITY}})
    if plan.source == "generated":
        return stated + seen, []
    return stated, seen
