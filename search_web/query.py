"""The one query service the web app calls (indexer.query, shared with the CLI), imported in one place."""
from indexer.query import AnswerCache, QueryService, SearchRequest, parse_filters  # noqa: F401
