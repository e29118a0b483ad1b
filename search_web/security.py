"""Security at the edge: response headers, request-target length, no Host reflection, CSRF and the admin token."""
from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, request, session
from flask.sessions import SecureCookieSessionInterface

from search_web.errors import Forbidden, Unauthorized

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")

HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}

CSRF_FIELD = "csrf_token"
_CSRF_KEY = "_csrf"


def target_length(environ) -> int:
    """Bytes of the request target (path and query string) as the client sent it."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw:
        return len(raw)
    return len(environ.get("PATH_INFO", "").encode("latin-1", "replace")) + len(environ.get("QUERY_STRING", "")) + 1


def check_request() -> None:
    """before_request: a request target over MAX_URL_BYTES is a 414 (JSON under /api)."""
    limit = current_app.config["MAX_URL_BYTES"]
    if target_length(request.environ) > limit:
        abort(414, description=f"the request URL is longer than {limit} bytes; send fewer or shorter parameters")


_HEADERS_LOWER = tuple((name.lower(), name, value) for name, value in HEADERS.items())


def add_headers(response):
    """after_request: security headers on every answer; never an absolute Location naming the Host we were sent.

    The names already set are read once: werkzeug's `Headers.setdefault` and `get` raise and catch a KeyError
    for every missing name (nine per answer, about 0.1 ms of a 0.35 ms answer)."""
    headers = response.headers
    present = {name.lower() for name in headers.keys()}
    for lower, name, value in _HEADERS_LOWER:
        if lower not in present:
            headers.add(name, value)
    if "location" in present:
        parts = urlsplit(headers["Location"])
        if parts.scheme or parts.netloc:  # keep redirects on this site, whatever Host said
            headers["Location"] = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if "cache-control" not in present and response.mimetype == "text/html":
        headers.add("Cache-Control", "no-store")
    return response


# --- CSRF: a per-session token in a hidden field of every state-changing form -----------------------

def csrf_token() -> str:
    """The session's CSRF token (made on first use); templates put it in a hidden field."""
    token = session.get(_CSRF_KEY)
    if not token:
        token = session[_CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def check_csrf() -> None:
    """Raise Forbidden unless the form carries the session's CSRF token."""
    expected = session.get(_CSRF_KEY)
    given = request.form.get(CSRF_FIELD, "")
    if not expected or not given or not hmac.compare_digest(expected.encode(), given.encode()):
        raise Forbidden("the form's CSRF token is missing or stale: reload the page and try again")


# --- the admin token ---------------------------------------------------------------------------------

def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def token_matches(given: str | None) -> bool:
    """Constant-time comparison with ADMIN_TOKEN (digests, so the length does not leak either)."""
    expected = current_app.config.get("ADMIN_TOKEN")
    if not expected or given is None:
        return False
    return hmac.compare_digest(_digest(given), _digest(expected))


def admin_enabled() -> bool:
    return bool(current_app.config.get("ADMIN_TOKEN"))


def require_admin_token() -> None:
    """For the API: `Authorization: Bearer <token>`; 403 when admin is off, 401 when missing or wrong."""
    if not admin_enabled():
        raise Forbidden("admin is switched off: start the app with CXRSEARCH_ADMIN_TOKEN set")
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token_matches(token.strip()):
        raise Unauthorized("a valid admin token is required: send `Authorization: Bearer <token>`")


def session_is_admin() -> bool:
    """Whether this browser session logged in with the current admin token."""
    expected = current_app.config.get("ADMIN_TOKEN")
    mark = session.get("admin")
    return bool(expected and mark and hmac.compare_digest(str(mark), _admin_mark(expected)))


def _admin_mark(token: str) -> str:
    """What the session keeps after a login: a keyed hash of the token (a new token logs everyone out)."""
    key = current_app.config["SECRET_KEY"]
    return hmac.new(str(key).encode(), _digest(token), hashlib.sha256).hexdigest()


def login_admin(given: str) -> bool:
    if not token_matches(given):
        return False
    session["admin"] = _admin_mark(current_app.config["ADMIN_TOKEN"])
    return True


def logout_admin() -> None:
    session.pop("admin", None)


class SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signing serializer for a request that carries no
    session cookie (every API call): Flask built one per request, a sixth of an answer's time in the app."""

    def open_session(self, app: Flask, request):
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def install(app: Flask) -> None:
    app.session_interface = SessionInterface()
    app.url_map.strict_slashes = False  # no trailing-slash redirects (Werkzeug builds them from Host)
    app.url_map.merge_slashes = False
    app.before_request(check_request)
    app.after_request(add_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["CSRF_FIELD"] = CSRF_FIELD
