"""Errors of the web app (one base class) and how every error becomes an HTTP answer.

JSON under /api, HTML elsewhere.
"""
from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from indexer.errors import (
    DocumentNotFound,
    IndexerError,
    IndexNotFound,
    IndexUnavailable,
    InvalidQuery,
    InvalidVectorConfig,
    InvalidVectors,
    UnknownImageId,
    VectorStoreNotFound,
)


class WebError(Exception):
    """Base class of every error raised by `search_web`; `status` is its HTTP status."""

    status = 500


class ConfigError(WebError):
    """A setting of the app is invalid (the message names it and what is valid)."""


class BadRequest(WebError, ValueError):
    """A request parameter the app cannot use (the message names the value and what is valid)."""

    status = 400


class UploadRejected(BadRequest):
    """An uploaded file that is not a usable radiograph (type, size, pixels, mode)."""


class UploadTooLarge(UploadRejected):
    """An upload over the byte or pixel limit."""

    status = 413


class NotFound(WebError):
    """No such image, job or file."""

    status = 404


class Unauthorized(WebError):
    """The admin token is missing or wrong."""

    status = 401


class Forbidden(WebError):
    """A state-changing form without a valid CSRF token, or admin switched off."""

    status = 403


class Conflict(WebError):
    """The request cannot be served in the current state (no vectors, another job running, model mismatch)."""

    status = 409


class ServiceUnavailable(WebError):
    """A dependency is down or restarting; the client may retry (Retry-After)."""

    status = 503


# indexer error class -> HTTP status; the first match in this order wins
INDEXER_STATUS = ((InvalidQuery, 400), (InvalidVectorConfig, 400), (InvalidVectors, 400), (IndexUnavailable, 503),
                  (IndexNotFound, 404), (UnknownImageId, 404), (DocumentNotFound, 404), (VectorStoreNotFound, 409),
                  (IndexerError, 500))

_RETRYABLE_ES = ("all shards failed", "search_phase_execution_exception", "no_shard_available_action_exception",
                 "cluster_block_exception", "unavailable_shards_exception", "node_not_connected_exception")


def _es_status(e: BaseException) -> int | None:
    """The HTTP status Elasticsearch answered with, from an error's cause chain (None when none)."""
    seen = 0
    cause: BaseException | None = e
    while cause is not None and seen < 5:
        if isinstance(getattr(cause, "es_status", None), int):  # an _msearch item's status (indexer.text.elasticsearch)
            return cause.es_status
        meta = getattr(cause, "meta", None)
        status = getattr(meta, "status", None) or getattr(cause, "status_code", None)
        if isinstance(status, int) and type(cause).__module__.startswith(("elasticsearch", "elastic_transport")):
            return status
        cause, seen = cause.__cause__ or cause.__context__, seen + 1
    return None


def is_retryable(e: BaseException) -> bool:
    """Whether an indexer error is Elasticsearch (re)starting: shards not allocated yet, 503/429 from the server."""
    status = _es_status(e)
    if status in (429, 502, 503, 504):
        return True
    text = str(e).lower()
    if status is None:  # the query service's msearch path reports item errors as text only
        return "elasticsearch" in text and any(marker in text for marker in _RETRYABLE_ES)
    return status >= 500 and any(marker in text for marker in _RETRYABLE_ES)


def classify(e: Exception) -> tuple[int, str, str]:
    """(HTTP status, error type, message) for any exception the app lets out of a view."""
    if isinstance(e, HTTPException):
        return e.code or 500, type(e).__name__, e.description or e.name
    if isinstance(e, WebError):
        return e.status, type(e).__name__, str(e)
    if isinstance(e, IndexerError):
        if is_retryable(e):
            return 503, "IndexUnavailable", f"the text index is restarting or recovering, retry shortly: {e}"
        status = next(code for cls, code in INDEXER_STATUS if isinstance(e, cls))
        message = str(e)
        if isinstance(e, IndexUnavailable):
            message = f"the text index is unavailable: {message}"
        return status, type(e).__name__, message
    return 500, type(e).__name__, f"internal error: {type(e).__name__}"


def wants_json() -> bool:
    """JSON answers for the API, the metrics endpoint and clients that ask only for JSON."""
    path = request.path
    if path == "/api" or path.startswith("/api/") or path == "/metrics":
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" and request.accept_mimetypes["text/html"] == 0


def error_response(status: int, kind: str, message: str, allow: list[str] | None = None):
    """The answer for an error: `{"error": {"type", "message"}}` or the HTML error page."""
    if wants_json():
        response = jsonify({"error": {"type": kind, "message": message}})
    else:
        response = current_app.response_class(
            render_template("error.html", status=status, kind=kind, message=message), mimetype="text/html")
    response.status_code = status
    if status == 503:
        response.headers["Retry-After"] = str(current_app.config.get("RETRY_AFTER_S", 2))
    if allow:
        response.headers["Allow"] = ", ".join(allow)
    return response


def handle(e: Exception):
    """Flask error handler for every exception (registered for Exception and HTTPException)."""
    status, kind, message = classify(e)
    if status >= 500 and not isinstance(e, (HTTPException, IndexerError, WebError)):
        current_app.logger.exception("unexpected error in %s %s", request.method, request.path)
    elif status >= 500:
        current_app.logger.warning("%s %s -> %s %s: %s", request.method, request.path, status, kind, message)
    if isinstance(e, HTTPException) and e.code is not None and e.code < 400:
        return e  # redirects raised as exceptions (e.g. RequestRedirect) pass through
    return error_response(status, kind, message, getattr(e, "valid_methods", None))


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle)
    app.register_error_handler(Exception, handle)
