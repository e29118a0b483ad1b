"""Finding mentions in report text and their assertion: positive, negated or uncertain (NegEx/ConText style).

Reports say what is absent as often as what is present ("No pneumothorax or pleural effusion"),
so a finding word in a report is not a finding of the image. `find_mentions(text)` reads one
section (FINDINGS or IMPRESSION) sentence by sentence:

1. finding phrases from the lexicon (`indexer/data/lexicon.json`), longest first;
2. pseudo-triggers ("no change") are masked, then negation and uncertainty triggers are found:
   a pre-trigger ("no", "without evidence of", "possible") covers the words after it up to the
   sentence end, a terminator ("but", "however", "consistent with") or 12 words; a post-trigger
   ("is not seen", "has resolved", "cannot be excluded") covers up to 5 words before it; a
   negation word inside a phrase's gap ("heart is not enlarged") negates that phrase;
3. the nearest trigger decides; without one the mention is positive;
4. location, side and severity words bind to the nearest finding in the sentence
   ("small left pleural effusion" -> Pleural Effusion/left/small).

Each mention's `term` is written like an Open-i MeSH annotation, so the vocabulary reads it the
same way as the reports' own MeSH terms. The algorithm follows Chapman et al., "A simple
algorithm for identifying negated findings and diseases in discharge summaries" (J Biomed Inform
2001) and Harkema et al., "ConText" (J Biomed Inform 2009); trigger lists are reviewed for
chest-radiograph reports. `scripts/eval_assertion.py` measures it against the reports' MeSH terms.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from indexer.lexicon import Lexicon, Match, Token, tokens

POSITIVE, NEGATED, UNCERTAIN = "positive", "negated", "uncertain"
ASSERTIONS = (POSITIVE, NEGATED, UNCERTAIN)

PRE_SCOPE = 12          # words a pre-trigger covers at most
POST_SCOPE = 5          # words before a post-trigger it covers
MODIFIER_REACH = 6      # words between a modifier and the finding it describes, at most
_GAP_NEGATIONS = frozenset({"no", "not", "without", "never", "non"})
_SENTENCE = re.compile(r"[^.;!?\n]+(?:[.;!?]+|$)")


@dataclass(frozen=True)
class Mention:
    """One finding mentioned in a text.

    Attributes:
        term: what it is, as an Open-i MeSH annotation ('Pleural Effusion/left/small').
        text: the words as written.
        start, end: character span in the section text.
        assertion: 'positive', 'negated' or 'uncertain'.
        trigger: the trigger words that decided the assertion, if any.
        sentence: the sentence it is in.
    """

    term: str
    text: str
    start: int
    end: int
    assertion: str
    trigger: str | None = None
    sentence: str = ""

    def to_dict(self) -> dict:
        return {"term": self.term, "text": self.text, "start": self.start, "end": self.end,
                "assertion": self.assertion, "trigger": self.trigger}


def sentences(text: str) -> list[tuple[int, str]]:
    """(start offset, sentence) pairs; sentences end at '.', ';', '!', '?' or a line break."""
    return [(m.start(), m.group(0)) for m in _SENTENCE.finditer(text or "") if m.group(0).strip()]


def find_mentions(text: str, lexicon: Lexicon | None = None) -> list[Mention]:
    """Every finding mention of `text` with its assertion, in text order (see the module docstring)."""
    lex = lexicon or Lexicon.load()
    out: list[Mention] = []
    for offset, sentence in sentences(text):
        toks = [Token(t.text, t.norm, t.start + offset, t.end + offset) for t in tokens(sentence)]
        out.extend(_sentence_mentions(toks, sentence.strip(), lex))
    return out


def _sentence_mentions(toks: list[Token], sentence: str, lex: Lexicon) -> list[Mention]:
    findings = lex.findings.find(toks)
    if not findings:
        return []
    pseudo = {i for m in lex.pseudo.find(toks) for i in range(m.start, m.end)}
    finding_words = {i for m in findings for i in range(m.start, m.end) if i not in m.gap}
    blocked = pseudo | finding_words
    terminators = sorted(m.start for m in lex.terminators.find(toks, blocked))
    pre = [(m, NEGATED) for m in lex.negation_pre.find(toks, blocked)]
    pre += [(m, UNCERTAIN) for m in lex.uncertain_pre.find(toks, blocked)]
    post = [(m, NEGATED) for m in lex.negation_post.find(toks, blocked)]
    post += [(m, UNCERTAIN) for m in lex.uncertain_post.find(toks, blocked)]
    trigger_words = {i for m, _ in pre + post for i in range(m.start, m.end)}
    modifiers = lex.modifiers.find(toks, blocked | trigger_words)
    organs = lex.organs.find(toks, blocked | trigger_words | {i for m in modifiers for i in range(m.start, m.end)})
    bound = _bind_modifiers(findings, modifiers, organs)

    mentions = []
    for k, f in enumerate(findings):
        assertion, trigger = _assertion(f, toks, pre, post, terminators)
        locations, sides, severities, organ = bound[k]
        side = None
        if sides:
            side = "bilateral" if "bilateral" in sides or len(set(sides)) > 1 else sides[0]
        subs = [*dict.fromkeys(locations), *([side] if side else []), *dict.fromkeys(severities)]
        start, end = toks[f.start].start, toks[f.end - 1].end
        words = " ".join(t.text for t in toks[f.start:f.end])
        for term in f.payload.terms:
            parts = [term, *([organ] if organ and "/" not in term else []), *subs]
            mentions.append(Mention("/".join(parts), words, start, end, assertion, trigger, sentence))
    return mentions


def _assertion(f: Match, toks: Sequence[Token], pre, post, terminators: list[int]) -> tuple[str, str | None]:
    """The assertion of finding match `f`: the nearest covering trigger wins; else positive."""
    gap_words = [toks[i].norm for i in f.gap]
    for w in gap_words:
        if w in _GAP_NEGATIONS:
            return NEGATED, w
    best: tuple[int, str, str] | None = None  # (distance, assertion, trigger text)
    for m, kind in pre:
        if m.end > f.start:
            continue
        limit = m.payload or PRE_SCOPE
        stop = min([t for t in terminators if t >= m.end] + [m.end + limit, len(toks)])
        if f.start < stop:
            distance = f.start - m.end
            if best is None or distance < best[0]:
                best = (distance, kind, " ".join(t.text for t in toks[m.start:m.end]))
    for m, kind in post:
        if m.start < f.end or m.start - f.end > POST_SCOPE:
            continue
        if any(f.end <= t < m.start for t in terminators):
            continue
        distance = m.start - f.end
        if best is None or distance < best[0]:
            best = (distance, kind, " ".join(t.text for t in toks[m.start:m.end]))
    if best is None:
        return POSITIVE, None
    return best[1], best[2]


def _nearest(findings: list[Match], mod: Match) -> int | None:
    """The finding a modifier describes: the nearest within reach, a following one on ties."""
    best, best_key = None, None
    for k, f in enumerate(findings):
        if mod.start >= f.start and mod.end <= f.end:  # inside a gap of the phrase
            distance, after = 0, 0
        elif mod.end <= f.start:
            distance, after = f.start - mod.end, 0
        elif mod.start >= f.end:
            distance, after = mod.start - f.end, 1
        else:
            continue
        key = (distance, after)
        if distance <= MODIFIER_REACH and (best_key is None or key < best_key):
            best, best_key = k, key
    return best


def _bind_modifiers(findings: list[Match], modifiers: list[Match], organs: list[Match]
                    ) -> list[tuple[list[str], list[str], list[str], str | None]]:
    """Per finding: (locations, sides, severities, organ) from the modifiers and organ words that describe it."""
    bound: list[tuple[list[str], list[str], list[str], str | None]] = [([], [], [], None) for _ in findings]
    for mod in modifiers:
        k = _nearest(findings, mod)
        if k is None:
            continue
        m = mod.payload
        locations, sides, severities, _ = bound[k]
        if m.location:
            locations.append(m.location)
        if m.laterality:
            sides.append(m.laterality)
        if m.severity:
            severities.append(m.severity)
    for organ in organs:
        k = _nearest(findings, organ)
        if k is not None and bound[k][3] is None:
            bound[k] = (*bound[k][:3], organ.payload)
    return bound


def positive_text(text: str, mentions: Sequence[Mention]) -> str:
    """`text` without the words of its negated and uncertain mentions (what lexical search may match)."""
    spans = sorted({(m.start, m.end) for m in mentions if m.assertion != POSITIVE})
    if not spans:
        return text
    out, pos = [], 0
    for start, end in spans:
        if start < pos:
            start = pos
        out.append(text[pos:start])
        pos = max(pos, end)
    out.append(text[pos:])
    return re.sub(r"[ \t]{2,}", " ", "".join(out)).strip()
