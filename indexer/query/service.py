"""The one query service: search and similar-image lookup for the CLI and the web app alike.

    svc = QueryService(backend, vectors=LiveVectors(index_dir, backend), encoder=None)
    body = svc.search(SearchRequest("pleural effusion right", k=10, source="all", filters={"view": ["frontal"]}))
    body = svc.similar("CXR1_1_IM-0001-3001", k=10, kind="embedding")

`search` parses the query (indexer.query.parse), builds a plan for the source mode
(indexer.query.plan), lets the text backend execute it (concept and lexical rankings, total and
facets), adds the vector retriever when it can (the query's annotation words in the cascade's joint
context space; it re-ranks candidates, it never adds any), fuses (indexer.query.fusion), and
explains every hit on the page: which concepts matched, from which source, and each retriever's
rank and score. FAISS and torch are imported only when the vector retriever or a similar-image
lookup runs, so a text-only search stays light.
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from indexer.documents import REPORT, SCHEMA_VERSION, TEXT_FIELDS, display_annotation
from indexer.errors import IndexerError, InvalidQuery, UnknownImageId
from indexer.query.cache import AnswerCache
from indexer.query.fusion import FUSIONS, fuse
from indexer.query.parse import ParsedQuery, QueryParser, default_parser
from indexer.query.plan import (
    DEFAULT_RETRIEVERS,
    GENERATED_IN_ALL,
    GENERATED_MIN_SCORE,
    SOURCES,
    TEXT_WEIGHT,
    ClausePlan,
    RankPlan,
    build_plan,
    generated_clause_score,
)
from indexer.query.similar import DEFAULT_KIND
from indexer.text.base import check_facets, normalise_filters, tokenize

MAX_K = 100
MAX_PAGE = 1000
MAX_RESULTS = 10_000           # k x page may reach this far into a ranking
MAX_DISTINCT_WORDS = 1024
MAX_FILTER_VALUE_BYTES = 32_000
VECTOR_DEPTH = 500             # neighbours the vector retriever looks at
DOC_FACTS = 4096               # documents whose shown fields, text, atoms and words a service keeps (~8 KB each)
DEPTH = 100                    # documents each retriever ranks for fusion (at least 2 x the last result asked for)
SYNTHETIC_NOTE = ("synthetic stand-in corpus: scores and neighbours measure the system, "
                  "not clinical accuracy or likeness")


def parse_filters(items: Sequence[str]) -> dict[str, list[str]]:
    """Parse filter items into {field: [values]}.

    ['view:frontal', 'laterality=left', 'laterality:right'] -> {'view': ['frontal'], 'laterality': ['left', 'right']}

    FIELD:VALUE and FIELD=VALUE are both accepted (values of one field are OR-ed, fields AND-ed).
    Raises InvalidQuery naming the bad item or field.
    """
    filters: dict[str, list[str]] = {}
    for item in items:
        cut = min((i for i in (item.find(":"), item.find("=")) if i >= 0), default=-1)
        name, value = (item[:cut].strip(), item[cut + 1:].strip()) if cut >= 0 else ("", "")
        if not name or not value:
            raise InvalidQuery(f"filter {item!r} is invalid: use FIELD:VALUE (or FIELD=VALUE), e.g. view:frontal")
        filters.setdefault(name, []).append(value)
    return check_filters(filters)


def check_filters(filters: Mapping[str, Sequence[str] | str | bool] | None) -> dict[str, list[str]]:
    """Filters validated the same way for every backend: known fields, booleans exactly true/false, sane sizes."""
    out = normalise_filters(filters)
    for name, values in out.items():
        for v in values:
            if len(v.encode("utf-8")) > MAX_FILTER_VALUE_BYTES:
                raise InvalidQuery(f"filter {name}: a value of {len(v.encode('utf-8'))} bytes is too long "
                                   f"(at most {MAX_FILTER_VALUE_BYTES})")
            if name == "synthetic" and v not in ("true", "false"):
                raise InvalidQuery(f"filter synthetic={v!r} is invalid: use true or false")
    return out


@dataclass
class SearchRequest:
    """One search: query text, page, source mode, filters, and switches for ablation."""

    text: str = ""
    k: int = 10
    page: int = 1
    source: str = "all"
    filters: Mapping[str, Sequence[str] | str | bool] = field(default_factory=dict)
    facets: Sequence[str] | None = None
    facet_size: int = 20                        # values counted per facet field (the most frequent first)
    retrievers: Sequence[str] | None = None     # None: DEFAULT_RETRIEVERS (concepts, lexical); add "vectors" to re-rank
    negation: bool = True                       # False: the ablation without assertion
    fusion: str = "tiered"                      # measured better than RRF on the val split (README)
    explain: bool = True

    def check(self) -> None:
        if not isinstance(self.k, int) or isinstance(self.k, bool) or not 1 <= self.k <= MAX_RESULTS:
            raise InvalidQuery(f"k={self.k!r} is invalid: use an integer from 1 to {MAX_RESULTS}")
        if not isinstance(self.page, int) or isinstance(self.page, bool) or not 1 <= self.page <= MAX_PAGE:
            raise InvalidQuery(f"page={self.page!r} is invalid: use an integer from 1 to {MAX_PAGE}")
        if self.k * self.page > MAX_RESULTS:
            raise InvalidQuery(f"page {self.page} of {self.k} results reaches past result {MAX_RESULTS}; "
                               "narrow the query with filters instead")
        if self.source not in SOURCES:
            raise InvalidQuery(f"source={self.source!r} is invalid; valid: {', '.join(SOURCES)}")
        if (not isinstance(self.facet_size, int) or isinstance(self.facet_size, bool)
                or not 1 <= self.facet_size <= 1000):
            raise InvalidQuery(f"facet_size={self.facet_size!r} is invalid: use an integer from 1 to 1000")
        if self.fusion not in FUSIONS:
            raise InvalidQuery(f"fusion={self.fusion!r} is invalid; valid: {', '.join(FUSIONS)}")
        words = set(tokenize(self.text or ""))
        if len(words) > MAX_DISTINCT_WORDS:
            raise InvalidQuery(f"the query has {len(words)} distinct words; at most {MAX_DISTINCT_WORDS} are searched")


class QueryService:
    """Search and similar images over one text backend and, when given, its live vector stores.

    Args:
        backend: an `indexer.text` TextBackend.
        vectors: `indexer.vectors.live.LiveVectors` for similar images and the vector retriever.
        encoder: an object with `encode(words: list[list[str]]) -> np.ndarray (B, H)` mapping annotation words
            into the joint context space (indexer.query.encoder.QueryEncoder); None: no vector retriever.
        parser: the query parser (default: the project's lexicon and vocabulary).
    """

    def __init__(self, backend, vectors=None, encoder=None, parser: QueryParser | None = None,
                 cache: AnswerCache | None = None):
        self.backend = backend
        self.vectors = vectors
        self.encoder = encoder
        self.parser = parser or default_parser()
        self.cache = cache
        self._synthetic: dict[str, bool] = {}
        self._warnings: dict[str, list[str]] = {}
        self._vector_counts: dict[str, int] = {}
        self._lock = threading.Lock()
        # A CPU-bound backend's searches run one at a time: their ~40 short numpy steps each release the GIL,
        # and threads that trade it at every step spent twice the CPU of the same searches run one after
        # another (4 threads in one process: 3.5 vs 1.8 ms a search on the 2-core build VM).
        self._compute = threading.Lock()
        self._serial = getattr(backend, "cpu_bound", False)
        self._facts: OrderedDict[tuple[str, str], DocumentFacts] = OrderedDict()  # (index state, id) -> facts

    # --- search ------------------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> dict:
        """Ranked, explained results of one query (the body of `/api/search` and `cxrsearch search --json`)."""
        started = time.perf_counter()
        request.check()
        filters = check_filters(request.filters)
        facets = check_facets(request.facets)
        key = self._cache_key(request, filters, facets)
        if key is not None:
            body = self.cache.get(key)
            if body is not None:
                body["cached"] = True
                body["took_ms"] = round((time.perf_counter() - started) * 1000, 2)
                return body
        if self._serial:
            with self._compute:
                return self._answer(request, filters, facets, key, started)
        return self._answer(request, filters, facets, key, started)

    def _answer(self, request: SearchRequest, filters: Mapping[str, Sequence[str]], facets: tuple[str, ...],
                key: tuple | None, started: float) -> dict:
        """Compute (and keep, when there is a cache) the answer to a checked request."""
        parsed = self.parser.parse(request.text or "")
        wanted = tuple(request.retrievers) if request.retrievers is not None else DEFAULT_RETRIEVERS
        plan = build_plan(parsed, request.source, wanted, request.negation)
        depth = max(DEPTH, 2 * request.k * request.page)
        retrieval = self.backend.retrieve(plan, filters=filters, facets=facets, depth=depth,
                                          facet_size=request.facet_size, state=key[0] if key is not None else None)
        rankings = dict(retrieval.rankings)
        used = [name for name in rankings]
        skipped: dict[str, str] = {}
        if plan.wants("vectors") and request.source != "report" and parsed.positive:
            ranking, why = self._vector_ranking(parsed, retrieval.candidates, retrieval.version)
            if ranking:
                rankings["vectors"] = ranking
                used.append("vectors")
            elif why:
                skipped["vectors"] = why
        fused = fuse(request.fusion, rankings) if len(rankings) > 1 or "concepts" in rankings else \
            next(iter(rankings.values()), [])
        # each retriever's rank and score of the documents on the page, for the explanation
        start = (request.page - 1) * request.k
        page = fused[start:start + request.k]
        version = retrieval.version  # the page's documents and the index checks from the version that ranked
        on_page = {i for i, _ in page}
        per_retriever = {name: _positions(r, on_page) for name, r in rankings.items()}
        facts = self._page_facts(self._state(key, version), [i for i, _ in page], version) if page else {}
        explain = _Explainer(plan, per_retriever) if request.explain else None
        results = [_result(image_id, score, facts[image_id], explain) for image_id, score in page]
        synthetic = any(r["synthetic"] for r in results) or self._corpus_synthetic(version)
        warnings = self._index_warnings(version)
        body = {"query": request.text or "", "parsed": parsed.to_dict(), "source": request.source,
                "filters": filters, "total": retrieval.total, "page": request.page, "k": request.k,
                "results": results, "facets": retrieval.facets, "retrievers": used, "skipped": skipped,
                "fusion": request.fusion, "warnings": warnings,
                "backend": self.backend.name, "synthetic": synthetic, "cached": False,
                "took_ms": round((time.perf_counter() - started) * 1000, 2)}
        if synthetic:
            body["note"] = SYNTHETIC_NOTE
        if key is not None and retrieval.version == key[0].rpartition("@")[0]:
            self.cache.put(key, body)
        return body

    def _cache_key(self, request: SearchRequest, filters: Mapping[str, Sequence[str]],
                   facets: tuple[str, ...]) -> tuple | None:
        """The answer cache's key for a checked request: the index state first, then every field that shapes the
        answer; None when there is no cache or the backend cannot name its state (answers are then computed)."""
        if self.cache is None or not self.cache.enabled:
            return None
        try:
            token = self.backend.state_token()
        except IndexerError:
            return None   # the search itself raises the error that explains it
        if token is None:
            return None
        retrievers = tuple(request.retrievers) if request.retrievers is not None else None
        return (token, request.text or "", request.k, request.page, request.source,
                tuple((name, tuple(values)) for name, values in sorted(filters.items())),
                facets, request.facet_size, retrievers, request.negation,
                request.fusion, request.explain)

    def _vector_ranking(self, parsed: ParsedQuery, candidates,
                        version: str | None = None) -> tuple[list[tuple[str, float]], str | None]:
        """Nearest images to the query's annotation words in the joint context space, among the candidates;
        or no ranking and why."""
        if self.vectors is None:
            return [], "no vector stores"
        if self.encoder is None:
            return [], "no query encoder (cascade checkpoint) configured"
        words = query_annotation(parsed)
        if not words:
            return [], None
        try:
            vector = self.encoder.encode([words])          # (1, H)
            live, store = self.vectors.get("context", version)
            neighbours = store.search(vector, min(VECTOR_DEPTH, self._vector_count(live, store)))[0]
        except IndexerError as e:
            return [], getattr(e, "reason", None) or type(e).__name__  # short: answers must not leak server paths
        return [(i, s) for i, s in neighbours.pairs() if candidates is None or i in candidates], None

    def _vector_count(self, version: str | None, store) -> int:
        """len(store), remembered per live version (a version's vectors never change once it is live; on
        Elasticsearch each len() is a _count request)."""
        if version is None:
            return len(store)
        with self._lock:
            cached = self._vector_counts.get(version)
        if cached is None:
            cached = len(store)
            with self._lock:
                if len(self._vector_counts) > 16:
                    self._vector_counts.clear()
                self._vector_counts[version] = cached
        return cached

    def _state(self, key: tuple | None, version: str | None) -> str | None:
        """The backend's state token of the version that ranked (None: it cannot name one, nothing is kept)."""
        if key is not None and version is not None and key[0].rpartition("@")[0] == version:
            return key[0]
        try:
            return self.backend.state_token(version)
        except IndexerError:
            return None

    def _page_facts(self, state: str | None, image_ids: list[str], version: str | None) -> dict[str, DocumentFacts]:
        """`DocumentFacts` of a page's documents: kept per index state (the last DOC_FACTS documents; a new query
        mostly lands on documents an earlier one showed), the others read from the backend (from `version`)."""
        found: dict[str, DocumentFacts] = {}
        if state is not None:
            with self._lock:
                for image_id in image_ids:
                    kept = self._facts.get((state, image_id))
                    if kept is not None:
                        self._facts.move_to_end((state, image_id))
                        found[image_id] = kept
        missing = [i for i in image_ids if i not in found]
        if not missing:
            return found
        docs = self.backend.get_many(missing, version=version)
        for image_id in missing:
            doc = docs.get(image_id)
            found[image_id] = DocumentFacts(doc or {})
            if state is not None and doc:
                with self._lock:
                    self._facts[(state, image_id)] = found[image_id]
                    while len(self._facts) > DOC_FACTS:
                        self._facts.popitem(last=False)
        return found

    def _corpus_synthetic(self, version: str | None = None) -> bool:
        """Whether the index version (the live one when None) holds synthetic documents; cached per version."""
        if version is None:
            try:
                version = self.backend.live_version()
            except IndexerError:
                return False
        key = version or ""
        with self._lock:
            if key in self._synthetic:
                return self._synthetic[key]
        found = self.backend.search("", filters={"synthetic": True}, k=1, facets=(), version=version).total > 0
        with self._lock:
            self._synthetic[key] = found
        return found

    def _index_warnings(self, version: str | None = None) -> list[str]:
        """What the user must know about the index version (the live one when None): documents of an older schema;
        cached per version."""
        if version is None:
            try:
                version = self.backend.live_version()
            except IndexerError:
                return []
        key = version or ""
        with self._lock:
            if key in self._warnings:
                return self._warnings[key]
        hits = self.backend.search("", k=1, facets=(), version=version).hits
        found = hits[0].document.get("schema_version") if hits else SCHEMA_VERSION
        warnings = [] if found == SCHEMA_VERSION else [
            f"the index was built with document schema {found}; this version reads schema {SCHEMA_VERSION}, so "
            "concepts, negation and cascade probabilities are missing: run `cxrsearch reindex`"]
        with self._lock:
            self._warnings[key] = warnings
        return warnings

    # --- images and similar images ------------------------------------------------------------------

    def image(self, image_id: str) -> dict:
        """The stored document of one image (raises UnknownImageId)."""
        doc = self.backend.get(image_id)
        if doc is None:
            raise UnknownImageId(f"unknown image id {image_id!r}: not in the live index")
        return doc

    def similar(self, image_id: str, k: int = 10, kind: str = DEFAULT_KIND, view: str | None = None) -> dict:
        """The k nearest images of an indexed image by findings, CNN embedding or context vector, with documents."""
        from indexer.query.similar import similar_to_image

        return similar_to_image(self, image_id, k, kind, view=view)

    def similar_to_vectors(self, embedding, context_vector, k: int = 10, kind: str = DEFAULT_KIND,
                           findings=None, view: str | None = None) -> dict:
        """The k nearest indexed images of vectors computed for an image outside the index (an upload)."""
        from indexer.query.similar import similar_to_vectors

        return similar_to_vectors(self, embedding, context_vector, k, kind, findings, view)


def query_annotation(parsed: ParsedQuery) -> list[str]:
    """The annotation words a query asks for, in the cascade's word order: finding, location, side."""
    if not parsed.positive:
        return []
    clause = parsed.positive[0]
    words = []
    for g in clause.groups[:1]:
        value = g.split(":", 1)[1].split("@")[0]
        words.append(value.lower())
    words += list(clause.locations[:1])
    if clause.side:
        words.append(clause.side)
    return words


def _positions(ranking: Sequence[tuple[str, float]], wanted: set[str]) -> dict[str, tuple[int, float]]:
    """(competition rank, score) in one ranking of the wanted ids."""
    out: dict[str, tuple[int, float]] = {}
    previous, rank = None, 0
    for position, (image_id, score) in enumerate(ranking, 1):
        if previous is None or score != previous:
            rank, previous = position, score
        if image_id in wanted:
            out[image_id] = (rank, score)
            if len(out) == len(wanted):
                break
    return out


LEVEL_NAMES = {1.0: "exact", 0.9: "bilateral at the location", 0.85: "side, neighbouring place", 0.8: "side",
               0.7: "location", 0.6: "bilateral", 0.5: "finding"}
_FIELD_BIT = {name: 1 << i for i, name in enumerate(TEXT_FIELDS)}
_PLAIN_WORD = re.compile(r"[^\W_]+")
_ATOM_FIELDS = ("report_atoms", "text_atoms", "generated_atoms")
_EXPLAINED_FIELDS = (*TEXT_FIELDS, "generated_scores", "concept_probabilities")
_REPORT_ATOMS = (("report_atoms", REPORT, 1.0), ("text_atoms", "text", TEXT_WEIGHT))
DocumentWords = tuple[dict[str, int], int]


class DocumentFacts:
    """What a result page needs of one stored document, computed once per document and index state
    (QueryService keeps the last DOC_FACTS): the result's document fields (`shown`, shared by every answer
    that shows the document: never mutated), the fields explanations read (`doc`: text fields, cascade
    scores and probabilities), its concept atoms per field as sets (`atoms`) and, on first use, the whole
    words of its text fields (`words`, for `lexical_fields`)."""

    __slots__ = ("shown", "doc", "atoms", "_words")

    def __init__(self, doc: Mapping):
        self.shown = {
            "report_id": doc.get("report_id"), "annotation": display_annotation(doc),
            "generated_annotation": doc.get("generated_annotation"), "report_annotation": doc.get("report_annotation"),
            "label": doc.get("label"), "predicted_labels": doc.get("predicted_labels", []), "view": doc.get("view"),
            "split": doc.get("split"), "synthetic": bool(doc.get("synthetic", False)),
            "concepts": [{k: c[k] for k in ("term", "source", "finding") if k in c} for c in doc.get("concepts", [])],
        }
        self.doc = {name: doc[name] for name in _EXPLAINED_FIELDS if name in doc}
        self.atoms = {name: frozenset(doc.get(name, ())) for name in _ATOM_FIELDS}
        self._words: DocumentWords | None = None

    @property
    def words(self) -> DocumentWords:
        if self._words is None:
            self._words = document_words(self.doc)
        return self._words


def _result(image_id: str, score: float, facts: DocumentFacts, explain: _Explainer | None) -> dict:
    """One hit of a search answer: the document's shown fields, the fused score and, when asked, why it matched."""
    result = {"image_id": image_id, "report_id": None, "score": round(float(score), 6), **facts.shown}
    if explain is not None:
        result["explanation"] = explain(image_id, facts)
    return result


class _Explainer:
    """Explanations of one answer's hits: what depends only on the query (the plan's text fields, the lexical
    words' patterns, each retriever's positions) is worked out once, not once per hit."""

    def __init__(self, plan: RankPlan, positions: Mapping[str, Mapping[str, tuple[int, float]]]):
        self.plan, self.positions = plan, positions
        self.words = _word_pattern(plan.lexical)
        self.fields = tuple(plan.text_fields) if self.words is not None else ()
        self.split = _split_plain(self.words) if self.words is not None else None
        self.generated_weight = GENERATED_IN_ALL if plan.source == "all" else 1.0
        self.clauses = []
        for clause in plan.clauses:
            levels = _strongest_first(clause)
            places = _first_places(levels)
            self.clauses.append((clause, levels, places, frozenset(places)))

    def __call__(self, image_id: str, facts: DocumentFacts) -> dict:
        plan, doc = self.plan, facts.doc
        matched = []
        for clause, levels, places, clause_atoms in self.clauses:
            evidence = _clause_evidence(doc, clause, plan, facts.atoms, self.generated_weight, levels, places,
                                        clause_atoms)
            if evidence:
                matched.append(evidence)
        retrievers = {}
        for name, pos in self.positions.items():
            found = pos.get(image_id)
            if found is not None:
                retrievers[name] = {"rank": found[0], "score": round(float(found[1]), 6)}
        out = {"matched": matched, "retrievers": retrievers}
        if plan.source == "all" and matched and all(m["source"] == "generated" for m in matched):
            out["note"] = "matched only by what the cascade read from the pixels, not by the report"
        if self.words is not None:
            out["lexical_fields"] = lexical_fields(doc, self.fields, self.words, facts.words, self.split)
        return out


def explain_hit(doc: Mapping, plan: RankPlan, positions: Mapping[str, Mapping[str, tuple[int, float]]],
                image_id: str, facts: DocumentFacts | None = None) -> dict:
    """Why a document matched: each clause's best evidence and source, and each retriever's rank and score.

    `facts`: the document's `DocumentFacts`, when the caller keeps them (made here otherwise)."""
    return _Explainer(plan, positions)(image_id, facts if facts is not None else DocumentFacts(doc))


def document_words(doc: Mapping) -> DocumentWords:
    """The whole words of a document's text fields: (lower-cased word -> bit mask of the TEXT_FIELDS holding it,
    mask of the fields that are not plain ASCII text, whose words only the regexes find). In ASCII text a word of
    letters and digits occurs as a whole word exactly when it is one of the maximal letter/digit runs."""
    words: dict[str, int] = {}
    other = 0
    for name, bit in _FIELD_BIT.items():
        text = doc.get(name)
        if not text:
            continue
        if not isinstance(text, str) or not text.isascii():
            other |= bit
            continue
        for word in _PLAIN_WORD.findall(text.lower()):
            words[word] = words.get(word, 0) | bit
    return words, other


def _split_plain(words: tuple[tuple[str, ...] | None, tuple[re.Pattern, ...]]) -> tuple[tuple[str, ...], tuple]:
    """The search words (ASCII, lower case) of letters and digits only, and the others with their regexes."""
    lowered, patterns = words
    plain, rest_words, rest_patterns = [], [], []
    for word, pattern in zip(lowered or (), patterns):
        if _PLAIN_WORD.fullmatch(word):
            plain.append(word)
        else:
            rest_words.append(word)
            rest_patterns.append(pattern)
    return tuple(plain), (tuple(rest_words), tuple(rest_patterns))


def lexical_fields(doc: Mapping, fields: Iterable[str], words: tuple[tuple[str, ...] | None, tuple[re.Pattern, ...]],
                   doc_words: DocumentWords, split: tuple[tuple[str, ...], tuple] | None = None) -> list[str]:
    """The fields (of `fields`) in which a search word occurs as a whole word: a dict lookup per query word of
    letters and digits in ASCII text; the word's regex (`_has_word`) for any other word or text.

    `split`: `_split_plain(words)`, when the caller asks for several documents (worked out here otherwise)."""
    lowered, patterns = words
    if lowered is None:  # a non-ASCII query word: the regexes decide everywhere
        return [name for name in fields if _has_word(doc.get(name), words)]
    held, other = doc_words
    plain, rest = split if split is not None else _split_plain(words)
    rest_words = rest[0]
    mask = 0
    for word in plain:
        mask |= held.get(word, 0)
    out = []
    for name in fields:
        bit = _FIELD_BIT.get(name, 0)
        if mask & bit:
            out.append(name)
        elif not bit or other & bit:
            if _has_word(doc.get(name), words):
                out.append(name)
        elif rest_words and _has_word(doc.get(name), rest):
            out.append(name)
    return out


@lru_cache(maxsize=1024)
def _word_pattern(text: str) -> tuple[tuple[str, ...] | None, tuple[re.Pattern, ...]] | None:
    """The text's search words in lower case (None unless all are ASCII) and, for each, a regex finding it as a
    whole word (case-insensitive); None when the text has no words. One small regex per word, each compiled once
    per process (`_whole_word`): a new query mostly reuses words seen before, where one alternation of all its
    words cost 0.8 ms to compile per new query."""
    words = tokenize(text)
    if not words:
        return None
    unique = tuple(sorted(set(words), key=len, reverse=True))
    lowered = tuple(w.lower() for w in unique) if all(w.isascii() for w in unique) else None
    return lowered, tuple(_whole_word(w) for w in unique)


@lru_cache(maxsize=8192)
def _whole_word(word: str) -> re.Pattern:
    """A regex finding `word` as a whole word: no letter or digit on either side, case-insensitive."""
    return re.compile(r"(?<![^\W_])" + re.escape(word) + r"(?![^\W_])", re.IGNORECASE)


def _has_word(text: str | None, words: tuple[tuple[str, ...] | None, tuple[re.Pattern, ...]]) -> bool:
    """Whether a search word occurs in the text as a whole word. When the words and the text are ASCII, a word
    that is not a substring of the lower-cased text cannot match, so its regex is skipped (most fields; the
    regex's case folding only differs from str.lower outside ASCII); anything else runs the regexes."""
    if not text:
        return False
    lowered, patterns = words
    if lowered is not None and text.isascii():
        low = text.lower()
        return any(word in low and pattern.search(text) is not None for word, pattern in zip(lowered, patterns))
    return any(pattern.search(text) is not None for pattern in patterns)


def _strongest_first(clause: ClausePlan) -> tuple:
    """The clause's levels by weight, strongest first (as listed on ties): the ranker scores a document by the
    strongest level it matches, and the levels are not listed that way (side 0.8, both sides 0.6, place 0.7)."""
    return tuple(sorted(clause.levels, key=lambda level: -level.weight))


def _first_places(levels: tuple) -> dict[str, tuple[int, int]]:
    """Each atom of the levels -> (level index, position) of its first place in `levels` (strongest first): the
    strongest level a document's atoms reach, and the first of its atoms listed there, is the least place among
    the atoms it holds."""
    places: dict[str, tuple[int, int]] = {}
    for li, level in enumerate(levels):
        for pos, a in enumerate(level.atoms):
            places.setdefault(a, (li, pos))
    return places


def _clause_evidence(doc: Mapping, clause: ClausePlan, plan: RankPlan, atoms: Mapping[str, frozenset],
                     generated_weight: float, levels: tuple, places: Mapping[str, tuple[int, int]],
                     clause_atoms: frozenset) -> dict | None:
    """The clause's best evidence in one document: its report atoms (MeSH, then the text's mentions), then what the
    cascade read (probabilities, else the hard annotation's atoms); None when nothing matches. Each source's
    evidence is its strongest matching level, the one the ranker scored; of equally strong evidence (to the
    4 decimals shown) the first in that order is named: the report before what the cascade read.

    `levels`: `_strongest_first(clause)`; `places`: `_first_places(levels)`; `clause_atoms`: its keys (every atom
    of the clause) as a set, so that a document's atoms are intersected with them once per field (most fields of
    most hits hold none) and the levels are never walked (walking them per hit and field took a tenth of a search).
    """
    best: dict | None = None
    best_score = 0.0
    if plan.uses_report:
        for field_name, source, factor in _REPORT_ATOMS:
            have = atoms[field_name] & clause_atoms
            if not have:
                continue
            li, pos = min(places[a] for a in have)
            level = levels[li]
            score = round(level.weight * factor, 4)  # rounded before comparing: equal strengths keep the first
            if best is None or score > best_score:   # (a weaker level of the field cannot do better)
                best_score = score
                best = {"concept": clause.label, "source": source,
                        "match": LEVEL_NAMES.get(level.weight, "finding"), "atom": level.atoms[pos],
                        "score": best_score}
    if plan.uses_generated:
        scores = doc.get("generated_scores") or {}
        if scores:
            probs = doc.get("concept_probabilities") or {}
            g, p = None, 0.0
            for group in clause.groups:
                value = scores.get(group, 0.0)
                if g is None or value > p:
                    g, p = group, value
            loc = max((probs.get(k, 0.0) for k in clause.location_keys), default=None) if clause.location_keys else None
            side = probs.get(clause.side_key, 0.0) if clause.side_key else None
            value = float(generated_clause_score(clause, p, loc, side))
            score = round(value * generated_weight, 4)
            if value >= GENERATED_MIN_SCORE and (best is None or score > best_score):
                best_score = score
                best = {"concept": clause.label, "source": "generated", "match": "probability", "atom": g,
                        "probability": round(p, 4), "score": best_score}
                if loc is not None:
                    best["location_probability"] = round(loc, 4)
                if side is not None:
                    best["side_probability"] = round(side, 4)
        else:
            have = atoms["generated_atoms"] & clause_atoms
            if have:
                li, pos = min(places[a] for a in have)
                level = levels[li]
                score = round(level.weight * generated_weight, 4)
                if best is None or score > best_score:
                    best_score = score
                    best = {"concept": clause.label, "source": "generated", "match": LEVEL_NAMES.get(level.weight),
                            "atom": level.atoms[pos], "score": best_score}
    return best


__all__ = ["MAX_K", "QueryService", "SearchRequest", "check_filters", "explain_hit", "parse_filters",
           "query_annotation"]
