"""The HTML pages through the test client: search state in the URL, chips, facets, pages, image page, map, banner."""
from __future__ import annotations

import html as htmllib
import re

import pytest

from search_web.pages import highlight, label_name, search_url


def hrefs(page: str, cls: str) -> list[str]:
    return [htmllib.unescape(h) for h in re.findall(rf'<a href="([^"]+)"\s+class="{cls}"', page)]


def test_home_has_search_box_upload_and_banner(corpus_client):
    page = corpus_client.get("/").get_data(as_text=True)
    assert '<input id="q" name="q" type="search"' in page and 'method="get"' in page
    assert '<input type="file" name="image"' in page and 'enctype="multipart/form-data"' in page
    assert 'id="synthetic-banner"' in page and "not radiographs of any patient" in page


def test_no_banner_when_the_corpus_is_not_synthetic(tmp_path, index_dir):
    from search_web import create_app

    client = create_app({"TESTING": True, "INDEX_DIR": str(tmp_path / "none"), "DATA_DIR": str(tmp_path)}).test_client()
    assert 'id="synthetic-banner"' not in client.get("/").get_data(as_text=True)


def test_results_page_holds_its_state_in_the_url(corpus_client):
    response = corpus_client.get("/search?q=calcified+granuloma&filter=view:frontal&source=report")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    cards = re.findall(r'<article class="card" data-image-id="([^"]+)"', page)
    assert cards and all(i.endswith("-1001") for i in cards)  # frontal views end in -1001 in the corpus
    assert '<mark>granuloma</mark>' in page and 'value="calcified granuloma"' in page
    assert re.search(r'name="source" value="report" checked', page)
    chip = re.search(r'data-filter="view:frontal">.*?href="([^"]+)"', page, re.S).group(1)
    assert "filter" not in htmllib.unescape(chip) and "source=report" in htmllib.unescape(chip)
    facet_links = [htmllib.unescape(h) for h in re.findall(r'<li><a href="([^"]+)"', page)]
    assert any("filter=view:frontal&filter=" in h or "filter=view%3Afrontal&filter=" in h for h in facet_links)


def test_pagination_links(corpus_client):
    page = corpus_client.get("/search?q=&filter=sources:report&page=2").get_data(as_text=True)
    assert '<span aria-current="page">2</span>' in page and 'rel="prev"' in page
    assert "page 2 of 3" in page  # 48 documents, 20 per page


def test_bad_search_shows_an_inline_error_with_status(corpus_client):
    response = corpus_client.get("/search?q=lung&filter=synthetic:True")
    assert response.status_code == 400
    assert "use true or false" in response.get_data(as_text=True)


def test_image_page(corpus_client, web_corpus):
    image_id = next(i for i in web_corpus.ids if "Calcified Granuloma/lung/upper lobe/right" in web_corpus.terms[i])
    page = corpus_client.get(f"/images/{image_id}").get_data(as_text=True)
    assert f'data-image-id="{image_id}"' in page and 'id="viewer"' in page
    assert "calcified granuloma lung upper lobe right" in page and "Radiologist" in page and "Findings" in page
    strip = re.findall(r'<li class="sim" data-image-id="([^"]+)"', page)
    assert len(strip) == 12 and image_id not in strip
    assert 'aria-current="true">by findings</a>' in page                       # the default kind
    assert page.count('class="sim-score" title="the probability that both images show the same single finding') == 12
    emb = corpus_client.get(f"/images/{image_id}?kind=context").get_data(as_text=True)
    assert re.findall(r'<li class="sim" data-image-id="([^"]+)"', emb) != strip
    assert emb.count('<span class="sim-score">cos ') == 12
    assert corpus_client.get("/images/NO-SUCH").status_code == 404
    assert corpus_client.get(f"/images/{image_id}?kind=colour").status_code == 400
    same = corpus_client.get(f"/images/{image_id}?view=same&kind=embedding").get_data(as_text=True)
    assert 'aria-current="true">frontal only</a>' in same and 'aria-current="true">by CNN embedding</a>' in same
    assert 'href="/images/' + image_id + '?kind=findings&amp;view=same#similar"' in same   # the kind links keep it
    assert corpus_client.get(f"/images/{image_id}?view=oblique").status_code == 400


def test_context_map_page(corpus_client):
    page = corpus_client.get("/map?label=calcified+granuloma&method=pca").get_data(as_text=True)
    points = re.findall(r'<a href="/images/([^"]+)" data-image-id="\1">', page)
    assert len(points) == 12 and "2 clusters" in page
    tsne = corpus_client.get("/map?label=calcified+granuloma&method=tsne")
    assert tsne.status_code == 200 and "TSNE" in tsne.get_data(as_text=True)
    assert corpus_client.get("/map?label=nonsense").status_code == 400
    assert corpus_client.get("/map?method=umap").status_code == 400


@pytest.mark.parametrize("text, words, expected", [
    ("calcified granuloma lung", {"granuloma"}, "calcified <mark>granuloma</mark> lung"),
    ("<b>x</b>", {"b"}, "&lt;<mark>b</mark>&gt;x&lt;/<mark>b</mark>&gt;"),
    ("Right upper", {"right"}, "<mark>Right</mark> upper"),
])
def test_highlight_escapes_and_marks(text, words, expected):
    assert str(highlight(text, words)) == expected


def test_helpers(app):
    with app.test_request_context():
        assert search_url("a b", "report", ["view:frontal", "split:test"], 2) == (
            "/search?q=a+b&source=report&filter=view:frontal&filter=split:test&page=2")
    assert label_name("calcified granuloma#2") == "calcified granuloma (cluster 2)" and label_name("normal") == "normal"


def test_metrics_count_requests_and_show_index_size(corpus_client, web_corpus):
    corpus_client.get("/api/search?q=granuloma")
    corpus_client.get("/api/search?k=0")
    text = corpus_client.get("/metrics").get_data(as_text=True)
    assert re.search(r'cxrsearch_http_requests_total\{endpoint="/api/search",method="GET",status="400"\} [1-9]', text)
    assert 'cxrsearch_http_request_duration_seconds_bucket{endpoint="/api/search",le="0.1"}' in text
    assert f'cxrsearch_index_documents{{backend="embedded"}} {len(web_corpus.ids)}.0' in text
    assert re.search(r'cxrsearch_index_size_bytes\{backend="embedded"\} [1-9]', text)
    assert f'cxrsearch_vectors{{kind="context"}} {len(web_corpus.ids)}.0' in text


def test_class_activation_overlay_appears_when_models_cam_exists(corpus_client, web_corpus, monkeypatch):
    import types

    import numpy as np

    from search_web import pages
    from search_web.images import grey_png

    image_id = web_corpus.ids[1]
    if pages._cam is None:  # without models.cam: no button, and the overlay URL says why
        assert 'id="toggle-overlay"' not in corpus_client.get(f"/images/{image_id}").get_data(as_text=True)
        missing = corpus_client.get(f"/images/{image_id}/overlay.png")
        assert missing.status_code == 404 and b"models.cam" in missing.data
    seen = {}

    def class_activation_map(cascade, stored, target=None):
        seen["shape"] = stored.shape
        return np.ones(stored.shape, np.float32)

    fake = types.SimpleNamespace(class_activation_map=class_activation_map,
                                 overlay_png=lambda stored, cam: grey_png((stored * cam).astype(np.uint8)))
    monkeypatch.setattr(pages, "_cam", fake)
    page = corpus_client.get(f"/images/{image_id}").get_data(as_text=True)
    assert 'id="toggle-overlay"' in page and f'src="/images/{image_id}/overlay.png"' in page
    overlay = corpus_client.get(f"/images/{image_id}/overlay.png")
    assert overlay.status_code == 200 and overlay.mimetype == "image/png" and overlay.data[:4] == b"\x89PNG"
    assert seen["shape"][0] == seen["shape"][1]  # the cascade's stored-size square image


@pytest.mark.parametrize("source, first", [("report", "rep"), ("text", "rep"), ("generated", "gen")])
def test_a_card_leads_with_the_annotation_that_matched(app, source, first):
    """A hit matched by its report shows the report's line first (the cascade may say another side)."""
    from flask import render_template

    r = {"image_id": "CXR1_IM-1", "generated_annotation": "pleural effusion left <b>",
         "report_annotation": "pleural effusion right", "view": "frontal", "score": 1.0,
         "explanation": {"matched": [{"concept": "pleural effusion", "source": source, "match": "exact"}],
                         "retrievers": {}}}
    with app.test_request_context("/"):
        card = render_template("_card.html", r=r, words=["right"])
    order = re.findall(r'<p class="ann (gen|rep)">', card)
    assert order == [first, "rep" if first == "gen" else "gen"]
    assert "left &lt;b&gt;" in card and "<mark>right</mark>" in card  # escaped once, highlighted


def test_a_card_whose_model_wrote_the_report_annotation_says_both_on_one_line(app):
    from flask import render_template

    r = {"image_id": "CXR1_IM-1", "generated_annotation": "cardiomegaly mild", "report_annotation": "cardiomegaly mild",
         "view": "frontal", "score": 1.0, "explanation": {"matched": [], "retrievers": {}}}
    with app.test_request_context("/"):
        card = render_template("_card.html", r=r, words=[])
    lines = re.findall(r'<p class="ann (?:gen|rep)">.*?</p>', card)
    assert len(lines) == 1 and ">Report</span>" in lines[0] and ">Model</span>" in lines[0]
    r["report_annotation"] = "cardiomegaly"
    with app.test_request_context("/"):
        card = render_template("_card.html", r=r, words=[])
    assert "src-rep" not in card and len(re.findall(r'<p class="ann (gen|rep)">', card)) == 2
