"""Search as a radiologist means it: query understanding, retrieval plans, fusion and the one query service.

    from indexer.query import QueryService, SearchRequest, parse_filters

The CLI (`cxrsearch search`, `cxrsearch similar`) and the web app call this service and nothing else
to search; see indexer.query.service.
"""
from indexer.query.cache import AnswerCache
from indexer.query.parse import ParsedQuery, QueryParser, parse_query
from indexer.query.service import QueryService, SearchRequest, check_filters, parse_filters

__all__ = ["AnswerCache", "ParsedQuery", "QueryParser", "QueryService", "SearchRequest", "check_filters",
           "parse_filters", "parse_query"]
