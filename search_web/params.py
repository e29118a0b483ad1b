"""Reading and checking request parameters, the same for the HTML pages and the JSON API.

The limits below keep a bad request a clear 400 on both text backends (Elasticsearch would
otherwise fail with a 500: an immense keyword term, too many clauses, a boolean it cannot parse).
"""
from __future__ import annotations

from collections.abc import Mapping

from indexer.documents import BOOLEAN_FIELDS
from indexer.errors import InvalidQuery
from indexer.text.base import tokenize
from search_web.errors import BadRequest
from search_web.query import parse_filters

MAX_K = 100
MAX_PAGE = 500
MAX_RESULTS_DEPTH = 10_000           # k * page: Elasticsearch's default max_result_window
MAX_FILTER_VALUE_BYTES = 32_765      # Lucene refuses keyword terms of 32,766 bytes and more
MAX_FILTERS = 64
MAX_QUERY_WORDS = 1_024              # distinct words; Elasticsearch's default max_clause_count per field
SOURCES = ("all", "report", "generated")
KINDS = ("context", "embedding")


def parse_int(name: str, raw: str | None, default: int, low: int, high: int) -> int:
    """An integer parameter from low to high, else BadRequest naming the value."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high or str(raw).strip() != str(raw):
        raise BadRequest(f"{name}={raw!r} is invalid: use an integer from {low} to {high}")
    return value


def parse_choice(name: str, raw: str | None, choices: tuple[str, ...], default: str) -> str:
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise BadRequest(f"{name}={raw!r} is invalid; valid: {', '.join(choices)}")
    return raw


def check_query_text(text: str) -> str:
    """The query text, or BadRequest when it has more than MAX_QUERY_WORDS distinct words."""
    distinct = len(set(tokenize(text)))
    if distinct > MAX_QUERY_WORDS:
        raise BadRequest(f"the query has {distinct} distinct words; at most {MAX_QUERY_WORDS} are allowed")
    return text


def check_filters(filters: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """Filter values: at most MAX_FILTER_VALUE_BYTES each, booleans exactly 'true' or 'false'."""
    count = sum(len(v) for v in filters.values())
    if count > MAX_FILTERS:
        raise BadRequest(f"{count} filter values; at most {MAX_FILTERS} are allowed")
    for name, values in filters.items():
        for value in values:
            size = len(value.encode("utf-8"))
            if size > MAX_FILTER_VALUE_BYTES:
                raise BadRequest(f"filter {name!r} has a value of {size} bytes; at most {MAX_FILTER_VALUE_BYTES} "
                                 "bytes are allowed")
            if name in BOOLEAN_FIELDS and value not in ("true", "false"):
                shown = value if len(value) <= 40 else value[:40] + "..."
                raise BadRequest(f"filter {name}:{shown!r} is invalid: {name} takes exactly true or false")
    return dict(filters)


def filters_from(items: list[str]) -> dict[str, list[str]]:
    """Repeated `filter=FIELD:VALUE` parameters -> {field: [values]}, checked."""
    try:
        filters = parse_filters(items)
    except InvalidQuery as e:
        raise BadRequest(str(e)) from e
    return check_filters(filters)


def search_params(args) -> dict:
    """q, k, page, source and filter from a query string (request.args), checked; -> SearchRequest keywords."""
    text = check_query_text(args.get("q", ""))
    k = parse_int("k", args.get("k"), 20, 1, MAX_K)
    page = parse_int("page", args.get("page"), 1, 1, MAX_PAGE)
    if k * page > MAX_RESULTS_DEPTH:
        raise BadRequest(f"page={page} with k={k} reaches past result {MAX_RESULTS_DEPTH}; narrow the search")
    source = parse_choice("source", args.get("source"), SOURCES, "all")
    return {"text": text, "k": k, "page": page, "source": source, "filters": filters_from(args.getlist("filter"))}
