"""How well positive findings are read from report text, measured against the reports' own MeSH major terms.

For every report, the findings the radiologist's MeSH indexing names are compared with the
findings that `indexer.assertion` reads as *positive* in FINDINGS and IMPRESSION:

- precision: positive text findings that the MeSH terms also name / all positive text findings
  (a positive mention the MeSH omits is a likely error, such as a missed negation);
- recall: MeSH findings with a positive text mention / MeSH findings the lexicon can express
  (a MeSH finding without one is a likely miss).

The baseline is keyword matching without assertion (every mention counts as positive), the
behaviour of plain keyword search. Findings are compared by identity: the finding name (with its
organ for organ-headed terms such as `Heart/enlarged`) and, where the term maps onto a specific
finding descriptor, that descriptor (so `Heart/enlarged` and `Cardiomegaly` are one finding).
'normal', 'No Indexing' and technical remarks are not findings.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from indexer.assertion import POSITIVE, find_mentions
from indexer.concepts import IMAGE_CATEGORIES
from indexer.lexicon import Lexicon
from indexer.records import MeshTerm, Report
from indexer.vocabulary import Vocabulary

# Organs that name the same place for this comparison ('Aorta, Thoracic/tortuous' = 'Aorta/tortuous').
SAME_ORGAN = {"thoracic aorta": "aorta"}

# Descriptors too broad to say two findings are the same one.
BROAD_DESCRIPTORS = frozenset({
    "Lung Diseases", "Lung Diseases, Obstructive", "Pleural Diseases", "Bone Diseases", "Mediastinal Diseases",
    "Aortic Diseases", "Pathological Conditions, Anatomical", "Equipment and Supplies", "Neoplasms", "Spinal Diseases",
})


def identities(term: str, vocabulary: Vocabulary) -> frozenset[str]:
    """What finding a MeSH-style term names, as comparable keys (empty for 'normal' and non-findings)."""
    try:
        concept = vocabulary.concept(MeshTerm.parse(term))
    except ValueError:
        return frozenset()
    if concept.category not in IMAGE_CATEGORIES or concept.category == "normal" or not concept.finding:
        return frozenset()
    parsed = MeshTerm.parse(term)
    head_is_organ = vocabulary.subheading(parsed.head) is not None and concept.finding != parsed.head.lower()
    organ = SAME_ORGAN.get(concept.organ or "", concept.organ)
    keys = {f"{organ}/{concept.finding}" if head_is_organ and organ else concept.finding}
    for d in concept.descriptors[:1]:
        if d not in BROAD_DESCRIPTORS and vocabulary.descriptor(d).category == "finding":
            keys.add(d.lower())
    return frozenset(keys)


@dataclass
class AssertionScores:
    """Counts and scores of positive-finding extraction over a set of reports."""

    reports: int = 0
    mesh_findings: int = 0            # MeSH findings the lexicon can express
    mesh_out_of_scope: int = 0        # MeSH findings the lexicon has no phrase for
    extracted: int = 0                # positive text findings
    extracted_correct: int = 0        # ... that the MeSH also names
    mesh_found: int = 0               # MeSH findings with a positive text mention
    baseline_extracted: int = 0       # every mention, assertion ignored
    baseline_correct: int = 0
    baseline_found: int = 0
    assertions: Counter = field(default_factory=Counter)
    false_positives: Counter = field(default_factory=Counter)
    misses: Counter = field(default_factory=Counter)

    @staticmethod
    def _ratio(a: int, b: int) -> float:
        return round(a / b, 4) if b else 0.0

    def to_dict(self) -> dict:
        return {
            "reports": self.reports, "mesh_findings": self.mesh_findings, "mesh_out_of_scope": self.mesh_out_of_scope,
            "positive_mentions": self.extracted, "assertions": dict(self.assertions),
            "precision": self._ratio(self.extracted_correct, self.extracted),
            "recall": self._ratio(self.mesh_found, self.mesh_findings),
            "baseline_keyword": {"precision": self._ratio(self.baseline_correct, self.baseline_extracted),
                                 "recall": self._ratio(self.baseline_found, self.mesh_findings)},
            "top_false_positives": [{"finding": k, "count": n} for k, n in self.false_positives.most_common(15)],
            "top_misses": [{"finding": k, "count": n} for k, n in self.misses.most_common(15)],
        }


def evaluate_assertion(reports: Iterable[Report], vocabulary: Vocabulary | None = None,
                       lexicon: Lexicon | None = None) -> AssertionScores:
    """Precision/recall of positive findings read from FINDINGS + IMPRESSION against each report's MeSH major terms."""
    vocab = vocabulary or Vocabulary.load()
    lex = lexicon or Lexicon.load()
    expressible = set().union(*(identities(t, vocab) for t in lex.finding_terms))
    s = AssertionScores()
    for report in reports:
        if not report.mesh_major:
            continue
        s.reports += 1
        mesh: set[frozenset[str]] = {ids for t in report.mesh_major if (ids := identities(t.raw, vocab))}
        in_scope = {ids for ids in mesh if ids & expressible}
        s.mesh_out_of_scope += len(mesh) - len(in_scope)
        s.mesh_findings += len(in_scope)
        mentions = [m for text in (report.findings, report.impression) if text for m in find_mentions(text, lex)]
        s.assertions.update(m.assertion for m in mentions)
        positive = {ids for m in mentions if m.assertion == POSITIVE and (ids := identities(m.term, vocab))}
        anything = {ids for m in mentions if (ids := identities(m.term, vocab))}
        mesh_keys = set().union(*mesh) if mesh else set()
        for ids in positive:
            s.extracted += 1
            if ids & mesh_keys:
                s.extracted_correct += 1
            else:
                s.false_positives[min(ids)] += 1
        for ids in anything:
            s.baseline_extracted += 1
            s.baseline_correct += bool(ids & mesh_keys)
        positive_keys = set().union(*positive) if positive else set()
        anything_keys = set().union(*anything) if anything else set()
        for ids in in_scope:
            if ids & positive_keys:
                s.mesh_found += 1
            else:
                s.misses[min(ids)] += 1
            s.baseline_found += bool(ids & anything_keys)
    return s
