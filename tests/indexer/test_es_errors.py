"""The one translation of "cannot use this Elasticsearch server" errors shared by the text and kNN modules."""
from __future__ import annotations

import elastic_transport

from indexer.errors import IndexUnavailable
from indexer.es_connection import connection_problem


def test_transport_errors_become_index_unavailable_naming_the_url():
    problem = connection_problem("http://127.0.0.1:9", "search", elastic_transport.ConnectionError("refused"))
    assert isinstance(problem, IndexUnavailable)
    assert "Elasticsearch at http://127.0.0.1:9 is unavailable (search)" in str(problem)


def test_other_errors_are_left_to_the_caller():
    assert connection_problem("http://127.0.0.1:9", "search", ValueError("bad")) is None
