"""A radiologist's path in a real browser: search -> results -> image -> similar -> back -> upload.

Script in the query is shown, not run (XSS).
"""
from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.search_web.conftest import ADMIN_TOKEN

pytestmark = pytest.mark.browser


def query_of(url: str) -> dict:
    return parse_qs(urlsplit(url).query)


def test_search_results_image_similar_back_upload(live_server, page, tmp_path):
    base, app = live_server
    p = page.page
    p.goto(base + "/")
    assert p.locator("#synthetic-banner").is_visible()
    assert "synthetic" in p.locator("#synthetic-banner").inner_text().lower()
    page.shot("01-home")

    # concept autocomplete: type part of a concept, pick it with the keyboard
    box = p.locator("input[name=q]")
    box.click()
    box.type("calcified gran", delay=20)
    option = p.locator("#suggestions li", has_text="calcified granuloma").first
    option.wait_for(state="visible")
    page.shot("02-autocomplete")
    while p.locator("#suggestions li[aria-selected=true]").count() == 0 or \
            "calcified granuloma" not in p.locator("#suggestions li[aria-selected=true]").inner_text():
        box.press("ArrowDown")
    box.press("Enter")
    assert box.input_value() == "calcified granuloma "
    box.type("upper lobe right")
    box.press("Enter")
    p.wait_for_url(re.compile(r"/search\?"))
    assert query_of(p.url)["q"] == ["calcified granuloma upper lobe right"]

    # results: cards with thumbnails, highlighted words, facets with counts
    cards = p.locator(".card[data-image-id]")
    assert cards.count() >= 4
    first = cards.first
    assert first.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert "calcified granuloma" in first.inner_text().lower()
    assert first.locator("mark").count() >= 1
    assert re.match(r"[\d,]+ images? · page 1", p.locator("#result-count").inner_text())
    first.locator("summary").click()
    assert first.locator(".why table").is_visible()
    page.shot("03-results")
    p.set_viewport_size({"width": 1920, "height": 1080})
    page.shot("03b-results-1080p")
    p.set_viewport_size({"width": 1366, "height": 768})

    # a facet filters; its chip removes the filter again
    p.locator('.facet[data-facet="view"] a', has_text="frontal").click()
    p.wait_for_url(re.compile(r"filter=view%3Afrontal|filter=view:frontal"))
    assert all(t.strip() == "frontal" for t in p.locator(".card .tag.view").all_inner_texts())
    p.locator(".chip-filter .chip-x").click()
    p.wait_for_load_state()
    assert "filter" not in query_of(p.url)
    results_url = p.url

    # the image page: viewer, both annotations, labels, similar strip
    image_id = cards.first.get_attribute("data-image-id")
    cards.first.locator(".card-title a").click()
    p.wait_for_url(re.compile(rf"/images/{re.escape(image_id)}"))
    assert p.locator("h1.image-title").inner_text().startswith(image_id)
    assert p.locator("#viewer-img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert p.locator("#report-annotation").inner_text().strip() != "—"
    assert p.locator("#generated-annotation").inner_text().strip()
    strip = p.locator(".strip li[data-image-id]")
    assert strip.count() >= 5
    assert image_id not in strip.evaluate_all("els => els.map(e => e.dataset.imageId)")
    p.locator("#viewer").focus()
    p.keyboard.press("+")
    assert "scale(1.25)" in p.locator("#viewer-img").get_attribute("style")
    page.shot("04-image")
    kinds = p.locator('.seg-links[aria-label="Find similar by"]')
    views = p.locator('.seg-links[aria-label="Views shown"]')
    assert kinds.locator("a[aria-current]").inner_text() == "by findings"  # the default kind
    assert views.locator("a[aria-current]").inner_text() == "any view"
    views.locator("a", has_text="only").click()                               # e.g. "lateral only"
    p.wait_for_url(re.compile(r"kind=findings&view=same"))
    assert views.locator("a[aria-current]").inner_text().endswith(" only")
    assert p.locator(".strip li[data-image-id]").count() >= 5
    kinds.locator("a", has_text="context vector").click()
    p.wait_for_url(re.compile(r"kind=context&view=same"))                     # the view choice is kept
    assert p.locator(".strip li[data-image-id]").count() >= 5

    # a similar image opens its own page; back twice returns to the same results
    other = p.locator(".strip li[data-image-id]").first.get_attribute("data-image-id")
    p.locator(".strip li[data-image-id] a").first.click()
    p.wait_for_url(re.compile(rf"/images/{re.escape(other)}"))
    assert p.locator("h1.image-title").inner_text().startswith(other)
    for _ in range(4):       # the similar image, context vector, same view, the image page
        p.go_back()
    p.wait_for_url(results_url)
    assert p.locator("input[name=q]").input_value() == "calcified granuloma upper lobe right"
    assert p.locator(".card[data-image-id]").count() >= 4

    # upload from the home page, compared by CNN embedding: the file is searched, its nearest image is itself
    p.goto(base + "/")
    assert p.locator("select[name=kind]").input_value() == "findings"     # the default kind
    p.locator("select[name=kind]").select_option("embedding")
    corpus_image = app["IMAGES_DIR"] + f"/{image_id}.png"
    p.locator("input[name=image]").set_input_files(corpus_image)
    p.wait_for_url(re.compile(r"/search/image"))
    assert p.locator("h1", has_text="Your image").is_visible()
    assert p.locator("#upload-annotation").inner_text().strip() not in ("", "—")
    nearest = p.locator(".strip li[data-image-id]")
    assert nearest.count() >= 5 and nearest.first.get_attribute("data-image-id") == image_id
    page.shot("05-upload")


def test_script_in_the_query_is_shown_not_run(live_server, page):
    base, _ = live_server
    p = page.page
    attack = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    p.goto(base + "/search?q=" + re.sub(r"[^A-Za-z0-9]", lambda m: f"%{ord(m.group(0)):02X}", attack))
    assert p.locator("input[name=q]").input_value() == attack
    assert p.evaluate("window.__pwned") is None
    assert p.title().startswith("<script>window.__pwned")          # shown as text in the title and the box
    assert p.locator('img[src="x"]').count() == 0 and p.locator("main script").count() == 0
    page.shot("06-xss")


def test_context_map_links_points_to_images(live_server, page):
    base, _ = live_server
    p = page.page
    p.goto(base + "/map")
    points = p.locator("#context-map a[data-image-id]")
    assert points.count() >= 3
    assert p.locator(".legend li").count() >= 2
    page.shot("07-map")
    target = points.first.get_attribute("data-image-id")
    points.first.locator("circle").click(force=True)
    p.wait_for_url(re.compile(rf"/images/{re.escape(target)}"))


def test_admin_login_reindex_and_live_progress(live_server, page):
    base, _ = live_server
    p = page.page
    p.goto(base + "/admin")
    p.locator("#token").fill("wrong-token-wrong-token")
    p.locator("#token").press("Enter")
    assert p.locator(".alert", has_text="not valid").is_visible()
    page.errors.clear()  # the 401 of the wrong login is logged by Chromium as a failed resource
    p.locator("#token").fill(ADMIN_TOKEN)
    p.locator("#token").press("Enter")
    p.wait_for_selector("#index-stats")
    assert p.locator("#stat-documents").inner_text() == "48"
    p.locator("#reindex-form button").click()
    row = p.locator("#jobs tr[data-job-id]").first
    row.locator(".state.s-succeeded").wait_for(timeout=60_000)
    assert "indexed" in row.locator(".job-result").inner_text()
    page.shot("08-admin")
