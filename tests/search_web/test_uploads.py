"""Search by upload: PNG, JPEG, DICOM (windowing, MONOCHROME1), grey-as-RGB; type sniffed; caps; temp files deleted."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from search_web.uploads import decode, sniff


def post(client, data: bytes, name: str = "x.png", **form):
    return client.post("/api/similar", data={"image": (io.BytesIO(data), name), **form},
                       content_type="multipart/form-data")


def png_bytes(array: np.ndarray, mode: str | None = None) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array, mode=mode).save(out, format="PNG")
    return out.getvalue()


def dicom_bytes(pixels: np.ndarray, photometric: str = "MONOCHROME2", window: tuple | None = None) -> bytes:
    """A minimal but valid DICOM file (explicit VR little endian) holding `pixels` (uint16)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_sniffing_reads_content_not_names():
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "png" and sniff(b"\xff\xd8\xff\xe0") == "jpeg"
    assert sniff(b"\0" * 128 + b"DICM") == "dicom" and sniff(b"GIF89a") is None and sniff(b"") is None


def test_upload_png_finds_itself_first(corpus_client, corpus_app, web_corpus, tmp_path):
    from search_web.services import services

    image_id = web_corpus.ids[5]
    data = (web_corpus.images / f"{image_id}.png").read_bytes()
    response = post(corpus_client, data, "anything.dcm", k="5", kind="embedding")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["hits"][0]["image_id"] == image_id and body["hits"][0]["score"] > 0.999
    upload = body["upload"]
    assert upload["type"] == "png" and upload["width"] == 256 and upload["annotation"]
    assert upload["model_version"] == body["model_version"] and body["synthetic"] is True
    assert len(body["hits"]) == 5
    by_findings = post(corpus_client, data, k="5").get_json()        # the default kind: the same single finding
    assert by_findings["kind"] == "findings" and len(by_findings["hits"]) == 5
    lateral = post(corpus_client, data, k="5", view="lateral").get_json()
    assert lateral["view"] == "lateral" and {h["view"] for h in lateral["hits"]} == {"lateral"}
    same = post(corpus_client, data, view="same")              # an upload's own view is unknown
    assert same.status_code == 400 and "view='same'" in same.get_json()["error"]["message"]
    with corpus_app.app_context():
        _, store = services().vectors.get("findings")
    ids = store.image_ids()
    p = store.get_vectors(ids)[:, :-1]              # (N, L) probabilities of single findings, as stored
    exact = p @ p[ids.index(image_id)]              # the upload is the indexed image: p_q . p_n
    got = [h["image_id"] for h in by_findings["hits"]]
    assert all(exact[ids.index(i)] >= np.sort(exact)[::-1][4] - 1e-3 for i in got)     # the best 5 (near ties)
    np.testing.assert_allclose([h["score"] for h in by_findings["hits"]], np.sort(exact)[::-1][:5], atol=2e-3)


def test_jpeg_and_grey_saved_as_rgb_and_rgba_are_read(corpus_client, web_corpus):
    grey = np.asarray(Image.open(web_corpus.images / f"{web_corpus.ids[2]}.png"))
    out = io.BytesIO()
    Image.fromarray(grey).save(out, format="JPEG", quality=95)
    jpeg = post(corpus_client, out.getvalue(), "x.jpg", kind="embedding")
    assert jpeg.status_code == 200 and jpeg.get_json()["upload"]["type"] == "jpeg"
    rgb = np.stack([grey] * 3, axis=-1)
    assert post(corpus_client, png_bytes(rgb), kind="embedding").status_code == 200
    rgba = np.concatenate([rgb, np.full(grey.shape + (1,), 255, np.uint8)], axis=-1)
    ok = post(corpus_client, png_bytes(rgba), kind="embedding")
    assert ok.status_code == 200
    assert ok.get_json()["hits"][0]["image_id"] == jpeg.get_json()["hits"][0]["image_id"] == web_corpus.ids[2]


def test_colour_images_are_refused(corpus_client):
    colour = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    response = post(corpus_client, png_bytes(colour))
    assert response.status_code == 400 and "not greyscale" in response.get_json()["error"]["message"]


def test_dicom_windowing_and_monochrome1(tmp_path):
    ramp = np.tile(np.linspace(0, 4000, 128), (128, 1)).astype(np.uint16)
    path = tmp_path / "a.bin"
    path.write_bytes(dicom_bytes(ramp))
    plain = decode(path, 10**7)
    assert plain.kind == "dicom" and plain.grey[0, 0] == 0 and plain.grey[0, -1] == 255
    path.write_bytes(dicom_bytes(ramp, "MONOCHROME1"))
    inverted = decode(path, 10**7).grey
    assert inverted[0, 0] == 255 and inverted[0, -1] == 0  # bone bright, as MONOCHROME2
    path.write_bytes(dicom_bytes(ramp, window=(1000, 400)))  # window 800..1200: saturates outside
    windowed = decode(path, 10**7).grey
    column = np.searchsorted(np.linspace(0, 4000, 128), [700, 1300])
    assert windowed[0, :column[0]].max() == 0 and windowed[0, column[1]:].min() == 255


def test_dicom_upload_end_to_end(corpus_client, web_corpus):
    grey = np.asarray(Image.open(web_corpus.images / f"{web_corpus.ids[7]}.png"))
    response = post(corpus_client, dicom_bytes(grey.astype(np.uint16) * 16), "scan.dcm", k="3",
                    kind="embedding")
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    # no window in the file: the full range is shown (min-max), as the same image stretched and sent as PNG
    low, high = int(grey.min()), int(grey.max())
    stretched = np.round((grey.astype(float) - low) / (high - low) * 255).astype(np.uint8)
    as_png = post(corpus_client, png_bytes(stretched), k="3", kind="embedding").get_json()
    assert body["upload"]["type"] == "dicom" and body["upload"]["width"] == grey.shape[1]
    assert [h["image_id"] for h in body["hits"]] == [h["image_id"] for h in as_png["hits"]]


@pytest.mark.parametrize("data, status, says", [
    (b"GIF89a" + b"\0" * 200, 400, "not a PNG, JPEG or DICOM"),
    (b"", 400, "empty"),
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, 400, "cannot be read"),
    (b"\0" * 128 + b"DICM" + b"\xff" * 50, 400, "DICOM"),
])
def test_unusable_uploads_are_clear_4xx(corpus_client, data, status, says):
    response = post(corpus_client, data)
    assert response.status_code == status
    assert says in response.get_json()["error"]["message"]


def test_pixel_bombs_and_size_caps(corpus_client, corpus_app):
    from tests.pipelines.test_reindex import png_claiming_size

    bomb = post(corpus_client, png_claiming_size(20_000, 20_000))
    assert bomb.status_code == 413 and "too many pixels" in bomb.get_json()["error"]["message"]
    dicom_bomb = dicom_bytes(np.zeros((64, 64), np.uint16))
    corpus_app.config["MAX_UPLOAD_PIXELS"] = 1000
    assert post(corpus_client, dicom_bomb).status_code == 413
    corpus_app.config["MAX_UPLOAD_BYTES"] = 1000
    too_big = post(corpus_client, b"\x89PNG\r\n\x1a\n" + b"\0" * 2000)
    assert too_big.status_code == 413 and "1,000 bytes" in too_big.get_json()["error"]["message"]


def test_missing_field_and_bad_options(corpus_client, web_corpus):
    response = corpus_client.post("/api/similar", data={"k": "3"}, content_type="multipart/form-data")
    assert response.status_code == 400 and "'image'" in response.get_json()["error"]["message"]
    png = (web_corpus.images / f"{web_corpus.ids[0]}.png").read_bytes()
    assert post(corpus_client, png, kind="colour").status_code == 400
    assert post(corpus_client, png, k="0").status_code == 400


def test_uploads_leave_nothing_in_the_temp_area(corpus_client, corpus_app, web_corpus):
    from pathlib import Path

    folder = Path(corpus_app.config["UPLOAD_DIR"])
    post(corpus_client, (web_corpus.images / f"{web_corpus.ids[0]}.png").read_bytes())
    post(corpus_client, b"GIF89a" + b"\0" * 200)
    assert folder.is_dir() and list(folder.iterdir()) == []


def test_a_checkpoint_that_did_not_make_the_vectors_is_refused(web_corpus, tmp_path):
    from search_web import create_app
    from tests.pipelines.test_reindex_vectors import make_checkpoint

    other = make_checkpoint(tmp_path / "other.pt")
    client = create_app(web_corpus.config(CHECKPOINT=str(other), UPLOAD_DIR=str(tmp_path / "u"))).test_client()
    response = post(client, (web_corpus.images / f"{web_corpus.ids[0]}.png").read_bytes())
    assert response.status_code == 409 and "no checkpoint matches" in response.get_json()["error"]["message"]


def test_upload_page_shows_annotation_and_neighbours(corpus_client, web_corpus):
    import re

    home = corpus_client.get("/").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', home).group(1)
    png = (web_corpus.images / f"{web_corpus.ids[4]}.png").read_bytes()
    assert '<option value="findings" selected>findings</option>' in home      # the default kind
    page = corpus_client.post("/search/image", data={"image": (io.BytesIO(png), "x.png"), "csrf_token": token,
                                                     "kind": "embedding"}, content_type="multipart/form-data")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Your image" in html and 'src="data:image/png;base64,' in html
    assert f'data-image-id="{web_corpus.ids[4]}"' in html and "by CNN embedding" in html
    for kind, shown in (("context", "by context vector"), ("findings", "by findings")):  # the heading names the kind
        again = corpus_client.post("/search/image", data={"image": (io.BytesIO(png), "x.png"), "csrf_token": token,
                                                          "kind": kind}, content_type="multipart/form-data")
        assert again.status_code == 200 and shown in again.get_data(as_text=True)
