"""Browser fixtures: the web app under `cxrsearch serve` (its defaults, as `make demo` serves it), and
Debian's Chromium driven by Playwright (never its own download).

Screenshots go to tests/browser/artifacts/ (ignored by git); `make test` keeps them as test artifacts.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.search_web.conftest import ADMIN_TOKEN
from tests.search_web.corpus import shared

CHROMIUM = os.environ.get("CXRSEARCH_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """`cxrsearch serve` with its defaults (what `make demo` serves: gunicorn, the event-loop workers) over the
    session corpus on 127.0.0.1:<free port>; yields its URL and the settings it was given."""
    from tests.search_web.test_serve import start_server, stop_server

    web_corpus = shared(tmp_path_factory)
    uploads = tmp_path_factory.mktemp("uploads")
    os.environ["CXRSEARCH_ADMIN_TOKEN"] = ADMIN_TOKEN  # read by the server's workers (and only by them here)
    try:
        proc, base = start_server(web_corpus, uploads, "auto", workers=2, threads=None, answer_cache=None)
    finally:
        del os.environ["CXRSEARCH_ADMIN_TOKEN"]
    try:
        yield base, {"IMAGES_DIR": str(web_corpus.images)}
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def browser_context():
    """A headless Chromium with a fresh profile; fails naming the browser when it is not installed."""
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: install Debian's package "
                    "(`apt-get install -y chromium`, which `make test` does when run as root) "
                    "or set CXRSEARCH_CHROMIUM")
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="cxrsearch-chromium-")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS,
            viewport={"width": 1366, "height": 768}, accept_downloads=False)
        context.set_default_timeout(15_000)
        yield context
        context.close()
    shutil.rmtree(profile, ignore_errors=True)


class Page:
    """A page that records console errors and uncaught exceptions (each test asserts there were none)."""

    def __init__(self, context):
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("console",
                     lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("dialog", lambda d: (self.errors.append(f"dialog: {d.message}"), d.dismiss()))

    def shot(self, name: str, full_page: bool = False) -> Path:
        path = ARTIFACTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture
def page(browser_context):
    p = Page(browser_context)
    yield p
    p.page.close()
    assert not p.errors, p.errors
