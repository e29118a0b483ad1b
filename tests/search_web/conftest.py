"""Fixtures for the web app: a small embedded index (text only), a real indexed corpus with vectors, test clients."""
from __future__ import annotations

import socket

import pytest

from indexer.documents import build_document
from indexer.text.embedded import EmbeddedTextBackend
from indexer.vocabulary import Vocabulary
from search_web import create_app
from tests.indexer.conftest import CORPUS, make_inputs
from tests.search_web.corpus import WebCorpus, shared

ADMIN_TOKEN = "test-admin-token-0123456789"


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory):
    """An index directory whose embedded text index holds the ten indexer-test documents, all synthetic (no vectors)."""
    root = tmp_path_factory.mktemp("web") / "index"
    documents = [build_document(item, Vocabulary.load()) for item in make_inputs(synthetic_ids=tuple(CORPUS))]
    with EmbeddedTextBackend(root / "text") as backend:
        result = backend.index(documents)
    assert result.written == len(CORPUS) and not result.failed
    return root


@pytest.fixture
def app(index_dir, tmp_path):
    return create_app({"TESTING": True, "BACKEND": "embedded", "INDEX_DIR": str(index_dir),
                       "DATA_DIR": str(tmp_path), "UPLOAD_DIR": str(tmp_path / "uploads")})


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="session")
def web_corpus(tmp_path_factory) -> WebCorpus:
    """48 rendered images indexed with the committed cascade: text, vectors and upload encoder agree."""
    return shared(tmp_path_factory)


@pytest.fixture
def corpus_app(web_corpus, tmp_path):
    return create_app(web_corpus.config(ADMIN_TOKEN=ADMIN_TOKEN, UPLOAD_DIR=str(tmp_path / "uploads")))


@pytest.fixture
def corpus_client(corpus_app):
    return corpus_app.test_client()


@pytest.fixture
def closed_es_url() -> str:
    """The URL of a local port nothing listens on: Elasticsearch down, for real (no mock)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def es_down_client(closed_es_url, tmp_path):
    app = create_app({"TESTING": True, "BACKEND": "es", "ES_URL": closed_es_url, "INDEX_DIR": str(tmp_path),
                      "DATA_DIR": str(tmp_path)})
    return app.test_client()
