"""End to end: `cxrsearch train` runs the whole cascade on 64 small generated radiographs."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.cascade import Cascade
from models.preprocess import prepare
from pipelines.cli import evaluate, train
from pipelines.manifest import ManifestEntry, write_manifest

# label -> [(annotation words, blob centre (x, y) in [0, 1]), ...]; granuloma has two sub-patterns
TOY = {
    "normal": [(("normal",), None)],
    "calcified granuloma": [(("calcified granuloma", "lung", "upper lobe", "right"), (0.25, 0.25)),
                            (("calcified granuloma", "lung", "base", "left"), (0.75, 0.75))],
    "cardiomegaly": [(("cardiomegaly", "mild"), (0.5, 0.6))],
    "opacity": [(("opacity", "lung", "base", "right"), (0.25, 0.75))],
}
PLAN = ["normal"] * 16 + ["calcified granuloma"] * 24 + ["cardiomegaly"] * 12 + ["opacity"] * 12
FAST = ["cnn.width=0.0625", "cnn_train.epochs=10", "cnn_train.finetune_epochs=2", "cnn_train.max_per_label=48",
        "cnn_train.lr=0.01", "lstm.lr=0.01", "gru.lr=0.01", "lstm.epochs=40", "gru.epochs=40",
        "lstm.word_dim=16", "gru.word_dim=16", "gru.dropout=0.0", "cases_per_cluster=10", "min_label_cases=4",
        "num_threads=1", "concept_min_positives=4", "cnn_train.concept_weight=1.0", "cnn.input_size=64",
        "cnn.resize=64"]


def toy_radiograph(rng: np.random.Generator, centre, size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = 0.3 + 0.08 * rng.standard_normal((size, size))
    if centre is not None:
        img += 0.7 * np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / 0.008)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def make_toy_corpus(root: Path, seed: int = 0) -> tuple[Path, Path]:
    """64 PNGs named like Open-i files and their manifest; splits by report (two images each)."""
    rng = np.random.default_rng(seed)
    images = root / "NLMCXR_png"
    images.mkdir(parents=True)
    entries = []
    regions = []
    for i, label in enumerate(PLAN):
        words, centre = TOY[label][(i // 2) % len(TOY[label])]
        image_id = f"CXR{i // 2}_IM-{i:04d}-1001"
        Image.fromarray(toy_radiograph(rng, centre)).save(images / f"{image_id}.png")
        if centre is not None:     # the blob's box in a 96 px frame, as regions.jsonl of the synthetic corpus
            cx, cy = centre[0] * 96, centre[1] * 96
            regions.append({"image_id": image_id, "size": 96, "regions": [
                {"concept": label, "term": "/".join(words), "box": [cx - 12, cy - 12, cx + 12, cy + 12]}]})
        split = ("train", "train", "train", "val", "test")[(i // 2) % 5] if i >= 4 else "train"
        entries.append(ManifestEntry(image_id, str(i // 2), split, label, label, words,
                                     "frontal", ("/".join(words),)))
    write_manifest(root / "manifest.jsonl", entries)
    (images / "regions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in regions))
    return images, root / "manifest.jsonl"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    images, manifest = make_toy_corpus(root)
    out = root / "run"
    args = ["--preset", "tiny", "--images", str(images), "--manifest", str(manifest), "--out", str(out),
            "--no-progress", *[a for item in FAST for a in ("--set", item)]]
    started = time.perf_counter()
    code = train.main(args)
    return {"code": code, "out": out, "seconds": time.perf_counter() - started, "args": args,
            "images": images, "manifest": manifest}


def test_cascade_runs_and_writes_everything(trained):
    # its speed is measured by scripts/bench_train.py, not asserted here (shared machines are noisy)
    assert trained["code"] == 0
    out = trained["out"]
    for name in ("cascade_iter0.pt", "cascade_iter1.pt", "cascade.pt", "results.json", "results.md",
                 "config.json", "train_stamp.json"):
        assert (out / name).is_file(), name
    assert list(out.glob("context_map_*.png"))


def test_results_have_both_iterations_both_rnns_all_splits(trained):
    results = json.loads((trained["out"] / "results.json").read_text())
    assert set(results["iterations"]) == {"0", "1"}
    for m in results["iterations"].values():
        for subset in ("labelled", "all"):
            for cell in ("lstm", "gru"):
                for split in ("train", "val", "test"):
                    bleu = m["bleu"][subset][cell][split]["bleu"]
                    assert len(bleu) == 4 and bleu[0] is not None and 0 <= bleu[0] <= 100
        assert {"train", "val"} <= set(m["cnn_accuracy"])
    assert "labelled/gru/test" in results["iteration1_vs_0"]
    # it learned: far above the ~2.5 BLEU-1 of emitting only the first word of a 4-word annotation
    assert max(results["iterations"]["0"]["bleu"]["labelled"][c]["train"]["bleu"][0] for c in ("lstm", "gru")) > 40
    assert results["relabel"]["splits"] == {"calcified granuloma": 2}
    assert results["relabel"]["new_labels"] == 5
    md = (trained["out"] / "results.md").read_text()
    assert "BLEU-1 / -2 / -3 / -4" in md and "| 1 | GRU |" in md


def test_annotations_are_non_empty_and_start_with_a_label_word(trained):
    results = json.loads((trained["out"] / "results.json").read_text())
    assert results["examples"]
    first_words = {words[0] for variants in TOY.values() for words, _ in variants}
    for example in results["examples"]:
        for key, words in example.items():
            if key.startswith("iter"):
                assert words and words[0] in first_words and len(words) <= 5


def test_checkpoint_carries_what_inference_needs(trained):
    c0 = Cascade.load(trained["out"] / "cascade_iter0.pt")
    c1 = Cascade.load(trained["out"] / "cascade_iter1.pt")
    assert (c0.iteration, c1.iteration) == (0, 1)
    assert c0.label_names == sorted(TOY)
    relabelled = json.loads((trained["out"] / "results.json").read_text())["relabel"]["sizes"]
    # iteration 1 trains on the clusters that have training images (a small cluster may hold only val images)
    assert set(c1.label_names) <= set(relabelled) and "calcified granuloma#1" in c1.label_names
    assert len(c1.label_names) >= 4
    assert c1.config.cnn.width == 0.0625 and c1.config.name == "tiny"
    assert "upper lobe" in c1.vocab and c1.metrics["bleu"]["labelled"]["gru"]["test"]["cases"][0] > 0
    image = next(trained["images"].glob("*.png"))
    out = c1.annotate(np.stack([prepare(image, c1.config.cnn)]))[0]
    assert out.words and out.label in c1.label_names


def test_cascade_pt_is_the_iteration_with_the_better_validation_accuracy(trained):
    """tiny ships by validation (`ship=best_val`); the test split plays no part in the choice."""
    results = json.loads((trained["out"] / "results.json").read_text())
    assert results["shipped_iteration"]["rule"] == "best_val"
    val = {int(n): m["mined_label_accuracy"]["val"]["accuracy"] for n, m in results["iterations"].items()}
    expected = max(n for n, v in val.items() if v == max(val.values()))
    assert results["shipped_iteration"]["iteration"] == expected
    assert Cascade.load(trained["out"] / "cascade.pt").iteration == expected
    assert f"Shipped in `cascade.pt`: iteration {expected}" in (trained["out"] / "results.md").read_text()


def test_ship_rule_picks_last_or_best_validation_without_looking_at_test():
    from types import SimpleNamespace

    from models.config import apply_overrides, load_config
    from pipelines.train.cascade import shipped_iteration

    def it(number, val, test):
        return SimpleNamespace(number=number, metrics={"mined_label_accuracy": {
            "val": {"accuracy": val}, "test": {"accuracy": test}}})
    tiny = load_config("tiny")
    last, best = apply_overrides(tiny, ["ship=last"]), apply_overrides(tiny, ["ship=best_val"])
    assert shipped_iteration(last, [it(0, 75.0, 70.0), it(1, 70.0, 80.0)]).number == 1
    assert shipped_iteration(best, [it(0, 75.0, 70.0), it(1, 70.0, 80.0)]).number == 0
    assert shipped_iteration(best, [it(0, 70.0, 70.0), it(1, 72.0, 60.0)]).number == 1
    assert shipped_iteration(best, [it(0, 72.0, 90.0), it(1, 72.0, 60.0)]).number == 1   # a tie: the last


@pytest.mark.parametrize("iteration", [0, 1])
def test_evaluate_reproduces_the_recorded_metrics_from_the_checkpoint(trained, iteration, tmp_path):
    out = tmp_path / "eval"
    assert evaluate.main(["--checkpoint", str(trained["out"] / f"cascade_iter{iteration}.pt"),
                          "--images", str(trained["images"]), "--manifest", str(trained["manifest"]),
                          "--out", str(out), "--no-progress"]) == 0
    again = json.loads((out / "results.json").read_text())["iterations"][str(iteration)]
    recorded = json.loads((trained["out"] / "results.json").read_text())["iterations"][str(iteration)]
    assert again["bleu"] == recorded["bleu"]
    assert again["mined_label_accuracy"] == recorded["mined_label_accuracy"]


def test_runs_are_reproducible(trained, tmp_path):
    args = list(trained["args"])
    args[args.index("--out") + 1] = str(tmp_path / "again")
    assert train.main(args) == 0
    first = json.loads((trained["out"] / "results.json").read_text())
    second = json.loads((tmp_path / "again" / "results.json").read_text())
    assert first["iterations"] == second["iterations"] and first["relabel"] == second["relabel"]


def test_reuse_skips_an_up_to_date_run(trained, capsys):
    started = time.perf_counter()
    assert train.main([*trained["args"], "--reuse"]) == 0
    assert "up to date" in capsys.readouterr().out
    assert time.perf_counter() - started < 10


def test_missing_manifest_is_a_clear_error(tmp_path):
    from pipelines.errors import PipelineError
    with pytest.raises(PipelineError, match="no manifest"):
        train.main(["--manifest", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")])


def test_reuse_takes_the_committed_checkpoint_only_when_config_and_corpus_match(trained, tmp_path, monkeypatch,
                                                                                capsys):
    """`train --reuse` copies a committed checkpoint made with the same config on the same corpus."""
    cfg = train.apply_overrides(train.load_config("tiny"), FAST)
    key = train.corpus_key(trained["manifest"], trained["images"], 0)
    committed = tmp_path / "checkpoints" / "tiny"
    committed.mkdir(parents=True)
    for name in train.COMMITTED_FILES:
        (committed / name).write_bytes((trained["out"] / name).read_bytes())
    (committed / "train_stamp.json").write_text(json.dumps({"config_fingerprint": cfg.fingerprint(), "corpus": key}))
    monkeypatch.setattr(train, "COMMITTED_DIR", tmp_path / "checkpoints")

    out = tmp_path / "fresh"
    args = [a if a != str(trained["out"]) else str(out) for a in trained["args"]]
    assert train.main([*args, "--reuse"]) == 0
    assert (out / "cascade.pt").read_bytes() == (trained["out"] / "cascade.pt").read_bytes()
    assert json.loads((out / "train_stamp.json").read_text())["from"] == str(committed)
    assert not (out / "cascade_iter0.pt").exists()  # copied, not trained
    capsys.readouterr()
    assert train.main([*args, "--reuse"]) == 0 and "up to date" in capsys.readouterr().out
    (committed / "cascade.pt").write_bytes((trained["out"] / "cascade_iter0.pt").read_bytes())  # a newer commit
    assert train.main([*args, "--reuse"]) == 0 and "using the committed checkpoint" in capsys.readouterr().out
    assert (out / "cascade.pt").read_bytes() == (committed / "cascade.pt").read_bytes()      # copied again

    other = train.apply_overrides(cfg, ["seed=7"])
    assert train.committed_checkpoint(other, key) is None
    assert train.committed_checkpoint(cfg, {**key, "manifest_sha256": "0" * 16}) is None
    assert train.committed_checkpoint(cfg, key) == committed


def test_the_committed_tiny_checkpoint_loads_and_annotates():
    path = train.COMMITTED_DIR / "tiny" / "cascade.pt"
    cascade = Cascade.load(path)
    stamp = json.loads((path.parent / "train_stamp.json").read_text())
    assert stamp["corpus"]["images"].startswith("cxrsearch-synth")
    image = np.full((256, 256), 120, dtype=np.uint8)
    annotations = cascade.annotate(prepare(image, cascade.config.cnn)[None])
    assert len(annotations) == 1 and annotations[0].words
    assert annotations[0].context_vector.ndim == 1 and annotations[0].context_vector.size > 0
    head = cascade.findings_head            # fitted by pipelines.train.findings on the committed checkpoint
    assert head is not None and head.labels == sorted(head.labels) and len(head.labels) == 17
    assert annotations[0].findings.shape == (18,) and abs(np.linalg.norm(annotations[0].findings) - 1) < 1e-5
    assert cascade.metrics["findings_head"]["fit_splits"] == ["train", "val"]


def test_training_fits_the_findings_head_of_the_shipped_cascade(trained):
    cascade = Cascade.load(trained["out"] / "cascade.pt")
    results = json.loads((trained["out"] / "results.json").read_text())
    head = cascade.findings_head
    assert head is not None and head.classes[-1] == "<other>"
    assert set(head.labels) <= {"normal", "calcified granuloma", "cardiomegaly", "opacity"}   # the toy's labels
    assert head.concept_mean.numel() == len(cascade.concept_names)
    assert results["findings_head"]["accuracy"]["train"] is not None
    assert "## Findings head" in (trained["out"] / "results.md").read_text()
    (a,) = cascade.annotate(np.full((1, 64, 64), 120, dtype=np.uint8))
    assert a.findings.shape == (len(head.labels) + 1,)


def test_concept_head_keys_come_from_the_mesh_terms_and_are_scored(trained):
    """The head is over concept keys of indexer.concepts with enough training positives, in the checkpoint."""
    cascade = Cascade.load(trained["out"] / "cascade.pt")
    assert cascade.concept_names == sorted(cascade.concept_names)
    assert {"findings:calcified granuloma", "findings:cardiomegaly", "laterality:right"} <= set(cascade.concept_names)
    assert all(k.split(":")[0] in ("findings", "organs", "locations", "laterality") for k in cascade.concept_names)
    assert cascade.cnn.num_concepts == len(cascade.concept_names)
    results = json.loads((trained["out"] / "results.json").read_text())
    concepts = results["iterations"]["1"]["concepts"]
    assert concepts["names"] == len(cascade.concept_names) and concepts["train"]["mean_auc"] > 0.5
    assert {row["concept"] for row in concepts["test_table"]} == set(cascade.concept_names)
    assert "## Concept head" in (trained["out"] / "results.md").read_text()


def test_text_context_of_a_trained_cascade(trained):
    cascade = Cascade.load(trained["out"] / "cascade.pt")
    assert {"normal", "calcified granuloma", "cardiomegaly", "opacity"} <= set(cascade.first_word_mean_embeddings)
    vectors = cascade.text_context([["calcified granuloma", "lung", "upper lobe", "right"], ["cardiomegaly", "mild"]])
    assert vectors.shape == (2, cascade.decoders["gru"].hidden_size) and np.isfinite(vectors).all()


def test_evaluate_concepts_pointing_similar_and_confusion(trained, tmp_path, capsys):
    out = tmp_path / "extra"
    assert evaluate.main(["--checkpoint", str(trained["out"] / "cascade.pt"), "--images", str(trained["images"]),
                          "--manifest", str(trained["manifest"]), "--out", str(out), "--no-progress",
                          "--concepts", "--pointing", "--similar", "--confusion", "--split", "train"]) == 0
    auc = json.loads((out / "concept_auc.json").read_text())
    assert auc["split"] == "train" and auc["summary"]["concepts"] > 0
    pointing = json.loads((out / "pointing_game.json").read_text())
    truth = pointing["truth"]
    assert truth["images"] == sum(r["images"] for r in truth["per_finding"].values()) > 0
    assert set(truth["per_finding"]) == {"calcified granuloma", "cardiomegaly", "opacity"}
    assert 0 <= truth["accuracy"] <= 1 and 0 < truth["chance"] < 1
    similar = json.loads((out / "similar.json").read_text())
    assert set(similar) == {"all", "labelled"}
    assert set(similar["all"]) == {"findings", "embedding", "context", "concepts"}
    assert all(0 <= r["precision"] <= 1 for pool in similar.values() for r in pool.values())
    assert json.loads((out / "confusion.json").read_text())["normal"]["images"] > 0
    assert "Pointing game" in (out / "pointing_game.md").read_text()
    assert "| label | queries |" in (out / "similar.md").read_text()


def test_explain_writes_an_overlay_png(trained, tmp_path, capsys):
    from pipelines.cli import explain

    image_id = next(trained["images"].glob("*.png")).stem
    out = tmp_path / "cam.png"
    assert explain.main([image_id, "--images", str(trained["images"]), "--checkpoint",
                         str(trained["out"] / "cascade.pt"), "--out", str(out), "--target", "cardiomegaly"]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG" and "peak at" in capsys.readouterr().out
    from pipelines.errors import PipelineError
    with pytest.raises(PipelineError, match="neither a file nor an image id"):
        explain.main(["CXR_nope", "--images", str(trained["images"]), "--checkpoint",
                      str(trained["out"] / "cascade.pt"), "--out", str(out)])
    with pytest.raises(PipelineError, match="unknown label 'pneumonia'"):
        explain.main([image_id, "--images", str(trained["images"]), "--checkpoint",
                      str(trained["out"] / "cascade.pt"), "--out", str(out), "--target", "pneumonia"])
