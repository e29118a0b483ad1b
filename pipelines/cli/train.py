"""Train the recurrent neural cascade (CNN -> RNN -> context -> relabel -> CNN/RNN again)."""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

from models.config import CascadeConfig, apply_overrides, load_config, save_config
from models.errors import ModelError
from pipelines.errors import PipelineError
from pipelines.settings import data_dir, manifest_path


class TrainError(PipelineError):
    """The training run cannot start (bad config, no data)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch train", description=__doc__)
    p.add_argument("--preset", default="tiny", help="preset name (tiny, paper) or a .json/.toml config file")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set cnn_train.epochs=3 (repeatable)")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--images", help="folder of <image_id>.png (default <data>/images/synthetic/NLMCXR_png)")
    p.add_argument("--manifest", help="manifest JSONL (default <data>/manifest.jsonl)")
    p.add_argument("--out", help="output folder (default <data>/models/<preset>)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--max-images", type=int, default=0, help="use a deterministic subset of N images (quick runs)")
    p.add_argument("--reuse", action="store_true",
                   help="do nothing when <out>/cascade.pt was trained with this config on this manifest")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def subset(entries: list, n: int) -> list:
    """A deterministic subset of n entries (by a hash of the image id), kept in manifest order."""
    if n <= 0 or n >= len(entries):
        return entries
    ranked = sorted(entries, key=lambda e: hashlib.sha256(e.image_id.encode()).hexdigest())[:n]
    keep = {e.image_id for e in ranked}
    return [e for e in entries if e.image_id in keep]


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _up_to_date(checkpoint: Path, cfg: CascadeConfig, manifest_digest: str) -> bool:
    """Whether `checkpoint` was made with this config on this manifest, and, when it is a copy of a committed
    checkpoint, that file has not changed since (e.g. a findings head added to it by a newer version)."""
    stamp = checkpoint.parent / "train_stamp.json"
    if not checkpoint.is_file() or not stamp.is_file():
        return False
    try:
        data = json.loads(stamp.read_text())
    except ValueError:
        return False
    if data.get("from"):
        source = Path(data["from"]) / "cascade.pt"
        if source.is_file() and _file_digest(source) != _file_digest(checkpoint):
            return False
    return data.get("config_fingerprint") == cfg.fingerprint() and data.get("manifest") == manifest_digest


COMMITTED_DIR = Path(__file__).resolve().parents[2] / "models" / "checkpoints"
COMMITTED_FILES = ("cascade.pt", "results.json", "results.md")


def corpus_key(manifest: Path, images: Path, max_images: int) -> dict:
    """What a trained checkpoint depends on besides its config: the manifest and the image corpus.

    A synthetic corpus is identified by its generator version and size (it renders the same bytes
    on every machine), a real image folder by its path.
    """
    from pipelines.sources.images import read_marker

    marker = read_marker(images) or {}
    if marker.get("synthetic") is True:
        images_key = f"{marker.get('generator')} {marker.get('version')} size {marker.get('size')}"
    else:
        images_key = str(images.resolve())
    return {"manifest_sha256": _file_digest(manifest), "max_images": max_images, "images": images_key}


def committed_checkpoint(cfg: CascadeConfig, key: dict) -> Path | None:
    """The repository's committed checkpoint of this preset, when it was trained with this config on this corpus."""
    folder = COMMITTED_DIR / cfg.name
    try:
        stamp = json.loads((folder / "train_stamp.json").read_text())
    except (OSError, ValueError):
        return None
    if not all((folder / name).is_file() for name in COMMITTED_FILES):
        return None
    if stamp.get("config_fingerprint") != cfg.fingerprint() or stamp.get("corpus") != key:
        return None
    return folder


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    args.argv = argv
    try:
        cfg = apply_overrides(load_config(args.preset), args.overrides)
    except ModelError as e:
        raise TrainError(str(e)) from e
    root = data_dir(args.data_dir)
    from pipelines.train.data import default_image_dir
    images = Path(args.images) if args.images else default_image_dir(root)
    manifest = Path(args.manifest) if args.manifest else manifest_path(root)
    out = Path(args.out) if args.out else root / "models" / cfg.name
    if not manifest.is_file():
        raise TrainError(f"{manifest}: no manifest; run `cxrsearch data prepare` first or pass --manifest")
    digest = _file_digest(manifest) + f":{args.max_images}:{images.resolve()}"
    if args.reuse and _up_to_date(out / "cascade.pt", cfg, digest):
        print(f"cxrsearch train: {out / 'cascade.pt'} is up to date (config {cfg.fingerprint()}); nothing to do")
        return 0
    key = corpus_key(manifest, images, args.max_images)
    committed = committed_checkpoint(cfg, key) if args.reuse else None
    if committed is not None:
        out.mkdir(parents=True, exist_ok=True)
        for name in COMMITTED_FILES:
            shutil.copyfile(committed / name, out / name)
        (out / "train_stamp.json").write_text(json.dumps({"config_fingerprint": cfg.fingerprint(), "manifest": digest,
                                                          "corpus": key, "from": str(committed)}))
        print(f"cxrsearch train: using the committed checkpoint {committed / 'cascade.pt'} (made by "
              f"`cxrsearch train --preset {cfg.name}`; same config {cfg.fingerprint()} and corpus) -> {out}; "
              "run without --reuse to train anew")
        return 0
    return run(cfg, manifest, images, out, args, digest, key)


def run(cfg: CascadeConfig, manifest: Path, images: Path, out: Path, args: argparse.Namespace, digest: str,
        key: dict) -> int:
    """Load data, run the cascade, write results; print a summary."""
    from models.preprocess import stored_size
    from pipelines.manifest import read_manifest
    from pipelines.sources.images import is_synthetic
    from pipelines.train.cascade import run_cascade
    from pipelines.train.data import Corpus, load_image_set
    from pipelines.train.evaluate import write_results
    from pipelines.train.runtime import machine, pick_device, seed_everything

    started, cpu_started = time.perf_counter(), time.process_time()
    from pipelines.train.runtime import load_average
    load_before = load_average()
    seed_everything(cfg.seed, cfg.num_threads)
    device = pick_device(args.device)
    entries = subset(read_manifest(manifest), args.max_images)
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out / "config.json")
    image_set = load_image_set([e.image_id for e in entries], images, stored_size(cfg.cnn),
                               cache_dir=out / "cache", progress=not args.no_progress)
    corpus = Corpus.build(entries, image_set)
    synthetic = is_synthetic(images)
    note = "SYNTHETIC corpus (rendered stand-ins; not a clinical measurement)" if synthetic else f"images from {images}"
    print(f"cxrsearch train: preset {cfg.name}, {image_set.summary()}, {note}")
    load_s = round(time.perf_counter() - started, 2)
    try:
        results = run_cascade(cfg, corpus, out, device, progress=not args.no_progress,
                              corpus_note="synthetic corpus" if synthetic else "")
    except ModelError as e:
        raise TrainError(f"training failed: {e}") from e
    results["timings_s"]["load_images"] = load_s
    results["timings_s"]["total"] = round(time.perf_counter() - started, 2)
    results["cpu_s"]["total"] = round(time.process_time() - cpu_started, 2)
    results["load_average"] = {"start": load_before, "end": load_average()}
    results.update({"preset": cfg.name, "corpus": note, "machine": machine(), "device": str(device),
                    "command": " ".join(["cxrsearch", "train", *args.argv]),
                    "images": {"used": len(corpus.entries), "skipped": len(image_set.skipped)},
                    "config": cfg.to_dict()})
    json_path, md_path = write_results(results, out)
    (out / "train_stamp.json").write_text(json.dumps({"config_fingerprint": cfg.fingerprint(), "manifest": digest,
                                                      "corpus": key}))
    print_summary(results, out, json_path, md_path)
    return 0


def print_summary(results: dict, out: Path, json_path: Path, md_path: Path) -> None:
    """Short end-of-run report."""
    print(f"done in {results['timings_s']['total']:.0f} s wall, {results['cpu_s']['total']:.0f} s CPU "
          f"(load {results['load_average']['start']} -> {results['load_average']['end']}) on {results['device']}: "
          f"{results['images']['used']} images, {results['images']['skipped']} skipped")
    for number, m in results["iterations"].items():
        acc = ", ".join(f"{s} {v['accuracy']:.1f}%" for s, v in m["cnn_accuracy"].items())
        bleu = "; ".join(f"{cell} test {'/'.join('-' if b is None else f'{b:.1f}' for b in per['test']['bleu'])}"
                         for cell, per in m["bleu"]["labelled"].items())
        print(f"  iteration {number}: {m['labels']} labels, CNN accuracy {acc}; BLEU-1..4 {bleu}")
    print(f"  checkpoint {out / 'cascade.pt'}; results {json_path}, {md_path}")
