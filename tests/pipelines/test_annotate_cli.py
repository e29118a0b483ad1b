"""`cxrsearch annotate`: batches of images, unusable ones skipped with a reason, never a crash."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from models.cascade import Cascade
from models.config import apply_overrides, load_config
from models.vocab import WordVocabulary
from pipelines.cli import annotate
from pipelines.errors import PipelineError


@pytest.fixture
def checkpoint(tmp_path):
    """An untrained but complete tiny cascade checkpoint (inference plumbing needs no training)."""
    cfg = apply_overrides(load_config("tiny"), ["cnn.width=0.0625"])
    vocab = WordVocabulary.build([("normal",), ("cardiomegaly", "mild"), ("opacity", "lung", "base")])
    cascade = Cascade.build(cfg, vocab, ["cardiomegaly", "normal", "opacity"],
                            {"cardiomegaly": "cardiomegaly", "normal": "normal", "opacity": "opacity"})
    return cascade.save(tmp_path / "cascade.pt")


@pytest.fixture
def folder(tmp_path):
    """5 good radiographs, one corrupt PNG, one colour image, one tiny image and a text file."""
    images = tmp_path / "in"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (80 + i, 90), dtype=np.uint8)).save(images / f"CXR{i}_IM-1.png")
    good = (images / "CXR0_IM-1.png").read_bytes()
    (images / "corrupt.png").write_bytes(good[: len(good) // 3])
    Image.new("RGB", (100, 100), (250, 20, 20)).save(images / "colour.png")
    Image.new("L", (16, 16)).save(images / "tiny.png")
    (images / "notes.txt").write_text("not an image")
    return images


def test_batch_with_bad_files_annotates_the_good_ones(checkpoint, folder, tmp_path, capsys):
    out = tmp_path / "out"
    code = annotate.main(["--dir", str(folder), "--checkpoint", str(checkpoint), "--out", str(out),
                          "--batch-size", "2", "--no-progress"])
    assert code == 0
    lines = [json.loads(line) for line in (out / "annotations.jsonl").read_text().splitlines()]
    assert sorted(r["image_id"] for r in lines) == [f"CXR{i}_IM-1" for i in range(5)]
    for r in lines:
        assert r["words"] and r["annotation"] == " ".join(r["words"])
        assert set(r["by_rnn"]) == {"lstm", "gru"}
        assert abs(sum(r["label_probabilities"].values()) - 1) < 1e-4
        assert r["label"] == max(r["label_probabilities"], key=r["label_probabilities"].get)
        assert r["finding"] == r["label"]          # no cluster suffix in an iteration-0 checkpoint
    assert [r["row"] for r in lines] == list(range(5))
    skipped = {json.loads(x)["path"].rsplit("/", 1)[-1]: json.loads(x)["reason"]
               for x in (out / "skipped.jsonl").read_text().splitlines()}
    assert skipped == {"corrupt.png": "unreadable", "colour.png": "wrong_mode", "tiny.png": "too_small"}
    emb, ctx = np.load(out / "embeddings.npy"), np.load(out / "context_vectors.npy")
    assert emb.shape[0] == ctx.shape[0] == 5 and emb.dtype == np.float32
    findings = np.load(out / "findings.npy")                   # (5, L + 1) unit rows (models.findings.vector)
    assert findings.shape[0] == 5 and np.allclose(np.linalg.norm(findings, axis=1), 1, atol=1e-5)
    assert "skipped 3" in capsys.readouterr().out


def test_explicit_files_and_top_k(checkpoint, folder, tmp_path):
    out = tmp_path / "out2"
    files = [str(folder / "CXR1_IM-1.png"), str(folder / "missing.png")]
    assert annotate.main([*files, "--checkpoint", str(checkpoint), "--out", str(out), "--top", "2",
                          "--no-progress"]) == 0
    (line,) = (out / "annotations.jsonl").read_text().splitlines()
    assert len(json.loads(line)["label_probabilities"]) == 2
    assert json.loads((out / "skipped.jsonl").read_text())["reason"] == "missing"


def test_all_bad_input_exits_non_zero_and_bad_checkpoint_is_clear(checkpoint, folder, tmp_path):
    assert annotate.main([str(folder / "corrupt.png"), "--checkpoint", str(checkpoint),
                          "--out", str(tmp_path / "o"), "--no-progress"]) == 1
    with pytest.raises(PipelineError, match="no checkpoint"):
        annotate.main([str(folder / "CXR1_IM-1.png"), "--checkpoint", str(tmp_path / "nope.pt"),
                       "--out", str(tmp_path / "o")])
    with pytest.raises(PipelineError, match="no input images"):
        annotate.main(["--checkpoint", str(checkpoint), "--out", str(tmp_path / "o")])


CONCEPTS = ["findings:cardiomegaly", "findings:opacity", "laterality:left"]


@pytest.fixture
def concept_checkpoint(tmp_path):
    """An untrained cascade with a concept head over three keys."""
    cfg = apply_overrides(load_config("tiny"), ["cnn.arch=resnet", "cnn.width=0.125", "cnn.depth=1",
                                                "cnn.input_size=64", "cnn.resize=64"])
    vocab = WordVocabulary.build([("normal",), ("cardiomegaly", "mild"), ("opacity", "lung", "base")])
    cascade = Cascade.build(cfg, vocab, ["cardiomegaly", "normal", "opacity"],
                            {"cardiomegaly": "cardiomegaly", "normal": "normal", "opacity": "opacity"},
                            concept_names=CONCEPTS)
    return cascade.save(tmp_path / "concepts.pt")


def test_concept_probabilities_in_annotations_jsonl_and_for_the_index(concept_checkpoint, folder, tmp_path):
    from pipelines.annotator import load_annotator

    out = tmp_path / "out3"
    assert annotate.main(["--dir", str(folder), "--checkpoint", str(concept_checkpoint), "--out", str(out),
                          "--no-progress"]) == 0
    for line in (out / "annotations.jsonl").read_text().splitlines():
        probs = json.loads(line)["concept_probabilities"]
        assert list(probs) == CONCEPTS and all(0.0 <= p <= 1.0 for p in probs.values())
    annotator = load_annotator(concept_checkpoint)
    (done,) = annotator([("CXR2_IM-1", folder / "CXR2_IM-1.png")])
    probs = done.annotation.concept_probabilities
    assert list(probs) == CONCEPTS                                      # every kept concept
    assert all(round(p, 4) == p for p in probs.values())                # rounded to 4 decimals


def test_checkpoint_without_concept_head_gives_empty_concept_probabilities(checkpoint, folder):
    from pipelines.annotator import load_annotator

    (done,) = load_annotator(checkpoint)([("CXR2_IM-1", folder / "CXR2_IM-1.png")])
    assert done.annotation.concept_probabilities == {} and done.annotation.words
