"""Copy a finished `cxrsearch train` run into models/checkpoints/<preset>/ as the committed demo checkpoint.

    python scripts/commit_checkpoint.py data/models/tiny

Writes cascade.pt with float16 weights (half the size; `cxrsearch evaluate` of the copy gives the
metrics of what is committed), results.json/.md of the run, and train_stamp.json (config fingerprint,
corpus key, command) that `cxrsearch train --preset NAME --reuse` compares before taking it.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path,
                   help="output folder of `cxrsearch train` (cascade.pt, results.*, train_stamp.json)")
    p.add_argument("--dest", type=Path, help="default models/checkpoints/<preset name>")
    args = p.parse_args(argv)
    from models.cascade import Cascade
    from models.config import load_config

    cascade = Cascade.load(args.run / "cascade.pt")
    stamp = json.loads((args.run / "train_stamp.json").read_text())
    results = json.loads((args.run / "results.json").read_text())
    preset = load_config(cascade.config.name)
    if preset.fingerprint() != cascade.config.fingerprint():
        raise SystemExit(f"{args.run}: trained with config {cascade.config.fingerprint()}, but the preset "
                         f"{cascade.config.name!r} is now {preset.fingerprint()}: `--reuse` would never take it")
    dest = args.dest or ROOT / "models" / "checkpoints" / cascade.config.name
    dest.mkdir(parents=True, exist_ok=True)
    cascade.save(dest / "cascade.pt", half=True)
    for name in ("results.json", "results.md"):
        shutil.copyfile(args.run / name, dest / name)
    (dest / "train_stamp.json").write_text(json.dumps({
        "config_fingerprint": cascade.config.fingerprint(), "corpus": stamp["corpus"],
        "command": results.get("command", f"cxrsearch train --preset {cascade.config.name}"),
        "weights": "float16 copy of the float32 run"}, indent=2) + "\n")
    size_mb = (dest / "cascade.pt").stat().st_size / 1e6
    print(f"{dest}: cascade.pt {size_mb:.1f} MB (float16), results, train_stamp.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
