"""Reading request parameters (strings) into the query service's typed request; the service checks the values.

Bad filters (unknown field, a boolean other than exactly true/false, an over-long value) and queries
with too many distinct words are refused by `indexer.query` itself, so the CLI and both text
backends answer them alike; this module only turns query-string text into numbers and lists.
"""
from __future__ import annotations

from search_web.errors import BadRequest
from search_web.query import parse_filters

MAX_K = 100          # results per page through the web (the service allows deeper pages for evaluation)
MAX_PAGE = 500
KINDS = ("findings", "embedding", "context")


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


def search_params(args) -> dict:
    """q, k, page, source and filter from a query string (request.args) -> SearchRequest keywords.

    Raises BadRequest for a malformed number, InvalidQuery (from the service) for a bad filter.
    """
    return {"text": args.get("q", ""), "k": parse_int("k", args.get("k"), 20, 1, MAX_K),
            "page": parse_int("page", args.get("page"), 1, 1, MAX_PAGE), "source": args.get("source") or "all",
            "filters": parse_filters(args.getlist("filter"))}
