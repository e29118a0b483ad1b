"""The one query service the web app calls (indexer.query, shared with the CLI), imported in one place."""
from __future__ import annotations

try:  # the lead's query service (issue 8 §4)
    from indexer.query import QueryService, SearchRequest, parse_filters  # noqa: F401
    INTERIM = False
except ImportError:  # until it lands on main
    from search_web.interim_query import QueryService, SearchRequest, parse_filters  # noqa: F401
    INTERIM = True
