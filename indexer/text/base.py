"""The text-index interface every backend implements, and the query/result types they share.

A backend holds *versions* of one index and an *alias* that names the live one:

    version = backend.create()                  # a new, empty version aside; searches still see the old one
    backend.index(documents, version=version)   # stream documents into it, in batches
    backend.switch(version)                     # one atomic step: the alias now names `version`;
                                                # the previous version is dropped only after that

Every read and write takes `version=None` for "the live version". Writing to the live version
when none exists yet creates one and makes it live (the simple path for small collections).
Backends: `embedded.EmbeddedTextBackend` (SQLite FTS5, no server) and
`elasticsearch.ElasticsearchTextBackend`; `tests/indexer/test_text_contract.py` holds both to the
same contract.
"""
from __future__ import annotations

import abc
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from indexer.documents import DEFAULT_FACETS, FILTER_FIELDS, TEXT_FIELDS, display_annotation
from indexer.errors import InvalidQuery

# Lucene's English stop words: what Elasticsearch's `standard` analyzer drops with "_english_".
ENGLISH_STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)
_TOKEN = re.compile(r"[^\W_]+(?:[.,][^\W_]+)*")  # letters/digits; keeps 3.5 together like the standard tokenizer
_VERSION = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

Filters = Mapping[str, "str | bool | Sequence[str]"]


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens without English stop words (the analysis both backends apply)."""
    return [t for t in (m.group(0).lower() for m in _TOKEN.finditer(text or "")) if t not in ENGLISH_STOP_WORDS]


def new_version_name() -> str:
    """A fresh, sortable version name: UTC time plus a random suffix, e.g. '20250101t120000-3fa2'."""
    return datetime.now(UTC).strftime("%Y%m%dt%H%M%S") + "-" + secrets.token_hex(2)


def check_version_name(version: str) -> str:
    """Return `version` if it is a valid name (lower-case letters, digits, '-' and '_'), else raise."""
    if not isinstance(version, str) or not _VERSION.match(version):
        raise InvalidQuery(f"invalid index version name {version!r}: use lower-case letters, digits, '-' and '_' "
                           "(at most 64 characters, not starting with '-' or '_')")
    return version


def normalise_filters(filters: Filters | None) -> dict[str, list[str]]:
    """Filters as {field: [values]} with string values; raise InvalidQuery for an unknown field."""
    out: dict[str, list[str]] = {}
    for name, value in (filters or {}).items():
        if name not in FILTER_FIELDS:
            raise InvalidQuery(f"unknown filter field {name!r}; valid: {', '.join(FILTER_FIELDS)}")
        values = [value] if isinstance(value, (str, bool)) else list(value)
        norm = [("true" if v else "false") if isinstance(v, bool) else str(v) for v in values]
        if not norm:
            raise InvalidQuery(f"filter {name!r} has no values")
        out[name] = norm
    return out


def check_facets(facets: Sequence[str] | None) -> tuple[str, ...]:
    """The facet fields to count (DEFAULT_FACETS when None); raise InvalidQuery for an unknown field."""
    chosen = DEFAULT_FACETS if facets is None else tuple(facets)
    for name in chosen:
        if name not in FILTER_FIELDS:
            raise InvalidQuery(f"unknown facet field {name!r}; valid: {', '.join(FILTER_FIELDS)}")
    return chosen


def check_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 10_000:
        raise InvalidQuery(f"k must be an integer from 1 to 10000; got {k!r}")
    return k


def matched_fields(doc: Mapping, query_tokens: Iterable[str]) -> tuple[str, ...]:
    """The text fields of `doc` that contain at least one query token, in schema order."""
    wanted = set(query_tokens)
    if not wanted:
        return ()
    return tuple(name for name in TEXT_FIELDS if doc.get(name) and wanted & set(tokenize(doc[name])))


@dataclass(frozen=True)
class Hit:
    """One search result: the image, its BM25 score, which text fields matched, and the stored document."""

    image_id: str
    score: float
    matched_fields: tuple[str, ...]
    document: dict

    @property
    def annotation(self) -> str:
        return display_annotation(self.document)

    @property
    def matched_sources(self) -> tuple[str, ...]:
        """'report' and/or 'generated': who wrote the text that matched."""
        return tuple(dict.fromkeys(TEXT_FIELDS[f][0] for f in self.matched_fields))

    def to_dict(self) -> dict:
        d = self.document
        return {"image_id": self.image_id, "score": round(self.score, 4), "annotation": self.annotation,
                "matched_fields": list(self.matched_fields), "matched_sources": list(self.matched_sources),
                "report_id": d.get("report_id"), "view": d.get("view"), "split": d.get("split"),
                "label": d.get("label"), "predicted_labels": d.get("predicted_labels", []),
                "synthetic": d.get("synthetic", False)}


@dataclass
class SearchResult:
    """Top-k hits, the total number of matching documents, and facet counts over all of them."""

    hits: list[Hit]
    total: int
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    backend: str = ""
    version: str | None = None

    def ids(self) -> list[str]:
        return [h.image_id for h in self.hits]

    def to_dict(self) -> dict:
        return {"backend": self.backend, "version": self.version, "total": self.total,
                "hits": [h.to_dict() for h in self.hits], "facets": self.facets}


@dataclass
class WriteResult:
    """What a batch write did: documents written, and those rejected with the reason."""

    written: int = 0
    failed: dict[str, str] = field(default_factory=dict)


class TextBackend(abc.ABC):
    """A BM25 text index of image documents, with filters, facets and versions behind an alias."""

    name: str = "abstract"
    # True where a search is all CPU in this process (the in-memory ranking); False where it mostly waits on
    # a server. QueryService runs the searches of a CPU-bound backend one at a time (see there).
    cpu_bound: bool = False

    # --- versions and the alias -------------------------------------------------------------------

    @abc.abstractmethod
    def create(self, version: str | None = None) -> str:
        """Create an empty version aside (not live) and return its name (a fresh one when None)."""

    @abc.abstractmethod
    def versions(self) -> list[str]:
        """Names of all existing versions, oldest first."""

    @abc.abstractmethod
    def live_version(self) -> str | None:
        """The version the alias names, or None when nothing was ever made live."""

    @abc.abstractmethod
    def switch(self, version: str, keep_previous: bool = False) -> str | None:
        """Make `version` live in one atomic step; then drop the previous live version unless kept.

        Returns the previous live version (None if there was none).
        """

    @abc.abstractmethod
    def drop(self, version: str) -> None:
        """Delete a version that is not live (raise IndexerError for the live one)."""

    def exists(self) -> bool:
        """Whether a live version exists."""
        return self.live_version() is not None

    def state_token(self, version: str | None = None) -> str | None:
        """A cheap token that changes whenever what a search of `version` (the live one when None) could
        answer changes, or None when the backend cannot tell (then answers are never cached)."""
        return None

    # --- writes -----------------------------------------------------------------------------------

    @abc.abstractmethod
    def index(self, documents: Iterable[Mapping], version: str | None = None, batch_size: int = 500,
              refresh: bool = True) -> WriteResult:
        """Add or replace documents (by image_id), written in batches of `batch_size`."""

    @abc.abstractmethod
    def update(self, image_id: str, fields: Mapping, version: str | None = None, refresh: bool = True) -> None:
        """Replace top-level fields of one document (IndexNotFound-style error if it does not exist)."""

    @abc.abstractmethod
    def delete(self, image_ids: Iterable[str], version: str | None = None, refresh: bool = True) -> int:
        """Delete documents by image id; returns how many existed."""

    # an optional hook: the default suits backends whose writes are visible at once (embedded)
    def refresh(self, version: str | None = None) -> None:  # noqa: B027
        """Make recent writes visible to reads (a no-op where writes are visible at once)."""

    # --- reads ------------------------------------------------------------------------------------

    @abc.abstractmethod
    def search(self, query: str, filters: Filters | None = None, k: int = 10, facets: Sequence[str] | None = None,
               version: str | None = None) -> SearchResult:
        """BM25 search over TEXT_FIELDS; `query=''` matches every document (filters still apply).

        Query words are OR-ed; filters are AND-ed across fields and OR-ed within one field's values.
        """

    @abc.abstractmethod
    def retrieve(self, plan, filters: Filters | None = None, facets: Sequence[str] | None = None, depth: int = 1000,
                 version: str | None = None, facet_size: int = 20, state: str | None = None):
        """Execute a retrieval plan (indexer.query.plan.RankPlan): each retriever's ranking, total, facets.

        Returns an `indexer.query.memory.Retrieval`. Both backends hold to the same ranking contract
        (tests/indexer/test_query_contract.py).

        `state`: a `state_token()` the caller read for this search (with `version` None); a backend may rank on
        exactly that state without reading it again (the embedded one, when it is the state its ranker holds).
        """

    @abc.abstractmethod
    def get_many(self, image_ids: Sequence[str], version: str | None = None) -> dict[str, dict]:
        """The stored documents of those ids that exist."""

    def get(self, image_id: str, version: str | None = None) -> dict | None:
        return self.get_many([image_id], version).get(image_id)

    @abc.abstractmethod
    def count(self, version: str | None = None) -> int:
        """Number of documents."""

    @abc.abstractmethod
    def size_bytes(self, version: str | None = None) -> int:
        """Space the version takes on disk."""

    # --- sharded builds ---------------------------------------------------------------------------

    @abc.abstractmethod
    def record_part(self, version: str, part: str, stats: Mapping) -> dict[str, dict]:
        """Record that one part (shard) of a build finished; returns every part recorded so far.

        Kept with the version itself, so N workers on N machines see each other's parts.
        """

    def check(self) -> dict:
        """Raise IndexUnavailable when the backend cannot be reached; else a small status dict."""
        return {"backend": self.name}

    # an optional hook: backends without connections or open files need not override it
    def close(self) -> None:  # noqa: B027
        """Release connections."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- shared helpers -----------------------------------------------------------------------------

    def _write_target(self, version: str | None) -> str:
        """The version a write goes to: the given one, else the live one (made on first use)."""
        if version is not None:
            return version
        live = self.live_version()
        if live is None:
            live = self.create()
            self.switch(live)
        return live
