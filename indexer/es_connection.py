"""The connection to Elasticsearch: settings, the client, and the one error boundary of every call.

Both Elasticsearch modules (the text backend, indexer.text.elasticsearch, and the kNN vector index,
indexer.vectors.es_knn) open their client and translate client errors here, so that an unreachable
server, refused credentials or a server that is not Elasticsearch read the same everywhere, naming
the URL (never a password).

Settings come from `ESSettings` (typed config), usually `ESSettings.from_env()`: CXRSEARCH_ES_URL,
CXRSEARCH_ES_API_KEY or CXRSEARCH_ES_USER/CXRSEARCH_ES_PASSWORD, CXRSEARCH_ES_CA (CA certificate file
for https), CXRSEARCH_ES_INDEX (alias name), CXRSEARCH_ES_TIMEOUT (seconds).
"""
from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit, urlunsplit

import elastic_transport
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
    UnsupportedProductError,
)
from elasticsearch.serializer import OrjsonSerializer

from indexer.errors import IndexerError, IndexUnavailable

DEFAULT_URL = "http://127.0.0.1:9200"
DEFAULT_INDEX = "cxrsearch-images"


@dataclass(frozen=True)
class ESSettings:
    """How to reach Elasticsearch and which alias to serve.

    Attributes:
        url: server URL, e.g. https://es.hospital.local:9200.
        index: the alias searches use; versions are concrete indices `<index>-v<version>`.
        api_key: an API key (base64 'id:key' form), preferred over basic auth when both are set.
        user, password: basic auth.
        ca_certs: path of a CA certificate bundle for https with a private CA.
        request_timeout: seconds per request.
    """

    url: str = DEFAULT_URL
    index: str = DEFAULT_INDEX
    api_key: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None
    request_timeout: float = 30.0
    shards: int = 1
    replicas: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> ESSettings:
        """Settings from CXRSEARCH_ES_* variables; keyword overrides that are not None win."""
        env = os.environ if environ is None else environ
        settings = cls(
            url=env.get("CXRSEARCH_ES_URL") or DEFAULT_URL,
            index=env.get("CXRSEARCH_ES_INDEX") or DEFAULT_INDEX,
            api_key=env.get("CXRSEARCH_ES_API_KEY") or None,
            user=env.get("CXRSEARCH_ES_USER") or None,
            password=env.get("CXRSEARCH_ES_PASSWORD") or None,
            ca_certs=env.get("CXRSEARCH_ES_CA") or None,
            request_timeout=float(env.get("CXRSEARCH_ES_TIMEOUT") or 30.0),
        )
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})

    def __repr__(self) -> str:  # never print a password or key
        return (f"ESSettings(url={self.safe_url!r}, index={self.index!r}, api_key={'***' if self.api_key else None}, "
                f"user={self.user!r}, ca_certs={self.ca_certs!r}, request_timeout={self.request_timeout})")

    @property
    def safe_url(self) -> str:
        """The URL with any password in it masked, for messages."""
        parts = urlsplit(self.url)
        if parts.password:
            netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
            return urlunsplit(parts._replace(netloc=netloc))
        return self.url


def connection_problem(url: str, action: str, e: Exception) -> IndexUnavailable | None:
    """The IndexUnavailable for a client error that means "cannot use this server", else None.

    Unreachable (refused, timeout, TLS), refused credentials and a server that is not Elasticsearch
    all name the URL; both ES modules (text and kNN vectors) translate errors through this.
    """
    if isinstance(e, (AuthenticationException, AuthorizationException)):
        return IndexUnavailable(f"Elasticsearch at {url} refused the credentials ({action}): {reason(e)}; "
                                "check CXRSEARCH_ES_API_KEY or CXRSEARCH_ES_USER/CXRSEARCH_ES_PASSWORD")
    if isinstance(e, UnsupportedProductError):
        return IndexUnavailable(f"the server at {url} is not Elasticsearch ({action}): {e}")
    if isinstance(e, elastic_transport.TransportError):
        return IndexUnavailable(f"Elasticsearch at {url} is unavailable ({action}): {type(e).__name__}: "
                                f"{e.message if hasattr(e, 'message') else e}")
    return None


def connect(settings: ESSettings) -> Elasticsearch:
    """An Elasticsearch client from `settings` (URL, API key or basic auth, CA certificate).

    Raises:
        IndexUnavailable: a malformed URL or an unreadable CA file, naming the URL.
    """
    s = settings
    # orjson decodes the answers (a page's documents are ~150 KB of JSON: 2.1 -> 0.5 ms per search)
    kwargs: dict = {"request_timeout": s.request_timeout, "max_retries": 1, "retry_on_timeout": False,
                    "serializer": OrjsonSerializer()}
    if s.api_key:
        kwargs["api_key"] = s.api_key
    elif s.user:
        kwargs["basic_auth"] = (s.user, s.password or "")
    if s.ca_certs:
        kwargs["ca_certs"] = s.ca_certs
    try:
        return Elasticsearch(s.url, **kwargs)
    except (ValueError, elastic_transport.TransportError) as e:
        raise IndexUnavailable(f"cannot connect to Elasticsearch at {s.safe_url}: {e}") from e


def reason(e: ApiError) -> str:
    info = getattr(e, "info", None)
    if isinstance(info, dict) and isinstance(info.get("error"), dict):
        err = info["error"]
        return f"{err.get('type')}: {err.get('reason')}"
    return str(getattr(e, "message", e))




class ESConnection:
    """A lazily opened client for one server, and the error boundary every Elasticsearch call goes through."""

    def __init__(self, settings: ESSettings, client: Elasticsearch | None = None):
        self.settings = settings
        self._client = client
        self._lock = threading.Lock()

    @property
    def client(self) -> Elasticsearch:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = connect(self.settings)
        return self._client

    @contextlib.contextmanager
    def guard(self, action: str, not_found: Callable[[str], IndexerError],
              failed: type[IndexerError] = IndexerError) -> Iterator[None]:
        """Translate client errors raised inside the block.

        Args:
            action: what was being done, for the message ("search cxrsearch-images").
            not_found: builds the error for a 404, from a message naming the URL and action.
            failed: the class of any other server error.
        Raises:
            IndexUnavailable: unreachable, refused credentials, not Elasticsearch (naming the URL).
        """
        url = self.settings.safe_url
        try:
            yield
        except NotFoundError as e:
            raise not_found(f"Elasticsearch at {url}: {action}: not found ({reason(e)})") from e
        except (ApiError, elastic_transport.TransportError) as e:
            problem = connection_problem(url, action, e)
            if problem is not None:
                raise problem from e
            raise failed(f"Elasticsearch at {url}: {action} failed: {reason(e)}") from e

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
