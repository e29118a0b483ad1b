#!/usr/bin/env bash
# Prove that `cxrsearch train --preset paper` runs on a GPU: one short epoch of each stage on a subset.
#
#   bash scripts/gpu_check.sh                 # on a CUDA machine: paper preset (GoogLeNet-BN 224, 2x1024 RNNs, batch 50)
#   GPU_CHECK_CPU=1 bash scripts/gpu_check.sh # here, on a CPU: the same stages with a narrow network on a tiny subset
#
# Self-contained in a fresh copy of the repository:
#  - Python: ./.venv when it exists; else a python3 that already has torch (a GPU image), with the
#    repository on PYTHONPATH and any wheels in ./.whl installed to /tmp/site; else `make venv`.
#  - Data: reuses ./data (or $CXRSEARCH_DATA) when it has a manifest and synthetic images; else runs
#    `data fetch` (from data/raw, ../shared/data/iu-xray or $GPU_CHECK_REPORTS when present, else the
#    registry), `data prepare` and `data synth` (all 7,470 images; about 10 s on 16 cores; the CPU
#    rehearsal renders 600, $GPU_CHECK_SYNTH_LIMIT overrides). Training skips images not rendered.
#  - The GPU image has torch but not nltk (BLEU): carry its wheel in .whl/, made here with
#    `python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl nltk==3.10.4`.
# Prints the device, images/s of the CNN and losses of every stage; exits non-zero on any failure.
# Time on one H200: well under the 8 minutes it is sized for (see the README's GPU section).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
started=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - started ))s] $*"; }

# ---- Python
if [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif python3 -c 'import torch' 2>/dev/null; then
  PY=python3
  if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
  fi
  export PYTHONPATH="$PWD:${PYTHONPATH:-}"
else
  make venv
  PY=.venv/bin/python
fi
cx() { "$PY" -c 'import sys; from pipelines.cli import main; sys.exit(main(sys.argv[1:]))' "$@"; }
"$PY" - <<'EOF'
import importlib, sys
missing = [m for m in ("torch", "numpy", "PIL", "tqdm", "sklearn", "nltk", "matplotlib") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"gpu_check: missing Python packages {missing}: run `make venv`, or carry their wheels in .whl/")
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, cuda available: {torch.cuda.is_available()}"
      + (f", device {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
EOF

CPU_MODE=${GPU_CHECK_CPU:-0}
if [ "$CPU_MODE" != 1 ] && ! "$PY" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then
  echo "gpu_check: no CUDA device visible to torch (set GPU_CHECK_CPU=1 to run the CPU rehearsal)" >&2
  exit 1
fi

# ---- Data
DATA=${CXRSEARCH_DATA:-data}
export CXRSEARCH_DATA="$DATA"
IMAGES="$DATA/images/synthetic/NLMCXR_png"
RENDERED_SOME=0
if [ ! -f "$DATA/manifest.jsonl" ] || [ ! -f "$IMAGES/SYNTHETIC.json" ]; then
  REPORTS=${GPU_CHECK_REPORTS:-}
  for d in "$DATA/raw" ../shared/data/iu-xray shared/data/iu-xray; do
    if [ -z "$REPORTS" ] && [ -f "$d/NLMCXR_reports.tgz" ] && [ -f "$d/nlmcxr_dicom_metadata.csv.gz" ]; then REPORTS=$d; fi
  done
  say "no prepared corpus in $DATA: fetch${REPORTS:+ (from $REPORTS)}, prepare, synth"
  if [ -n "$REPORTS" ]; then
    cx data fetch --from "$REPORTS/NLMCXR_reports.tgz" --metadata "$REPORTS/nlmcxr_dicom_metadata.csv.gz"
  else
    cx data fetch
  fi
  cx data prepare
  LIMIT=${GPU_CHECK_SYNTH_LIMIT:-0}
  if [ "$LIMIT" = 0 ] && [ "${GPU_CHECK_CPU:-0}" = 1 ]; then LIMIT=600; fi   # a CPU rehearsal renders a few
  cx data synth --workers "$(nproc)" --no-progress $( [ "$LIMIT" != 0 ] && echo --limit "$LIMIT" )
  [ "$LIMIT" != 0 ] && RENDERED_SOME=1
fi

# ---- One short epoch of every stage: CNN, LSTM, GRU (iteration 0), relabel, CNN fine-tune, LSTM, GRU (iteration 1)
OUT=${GPU_CHECK_OUT:-/tmp/cxrsearch-gpu-check}
rm -rf "$OUT"
if [ "$CPU_MODE" = 1 ]; then
  SUBSET=${GPU_CHECK_IMAGES:-400}
  rendered=$(find "$IMAGES" -name '*.png' | wc -l)
  if [ "$RENDERED_SOME" = 1 ] || [ "$rendered" -lt "$(wc -l < "$DATA/manifest.jsonl")" ]; then
    SUBSET=0                                     # a partly rendered corpus: train on every image it has
  fi
  SHAPE=(--set cnn.width=0.125 --set cnn.input_size=64 --set cnn.resize=64 --set lstm.hidden_size=64
         --set gru.hidden_size=64 --set cnn_train.max_per_label=40 --set concept_min_positives=5
         --set num_threads=1 --device cpu)
else
  SUBSET=${GPU_CHECK_IMAGES:-3000}
  SHAPE=(--device cuda)
fi
say "train --preset paper on $SUBSET images, 1 epoch per stage -> $OUT"
cx train --preset paper --max-images "$SUBSET" --out "$OUT" --no-progress \
  --set cnn_train.epochs=1 --set cnn_train.finetune_epochs=1 --set lstm.epochs=1 --set gru.epochs=1 \
  --set plot_method=pca "${SHAPE[@]}"

"$PY" - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
r = json.loads((Path(sys.argv[1]) / "results.json").read_text())
print(f"device: {r['device']} ({r['machine'].get('cuda_device', 'no GPU')}), torch {r['machine']['torch']}")
t = r["timings_s"]
for number, hist in r["history"].items():
    cnn = hist["cnn"]
    n = sum(cnn["samples_per_epoch"])
    key = f"{number.replace('iteration', 'iteration')}: cnn"
    secs = t.get(key)
    rate = f", {n / secs:.0f} images/s (training, incl. embedding every image once)" if secs else ""
    print(f"{number}: CNN loss {[round(x, 3) for x in cnn['loss']]} concept loss {[round(x, 3) for x in cnn.get('concept_loss', [])]} "
          f"on {n} samples{rate}")
    for cell, h in hist["rnn"].items():
        print(f"{number}: {cell.upper()} train NLL {[round(x, 3) for x in h['train_loss']]} val NLL {[round(x, 3) for x in h['val_loss']]}")
print("timings (s): " + ", ".join(f"{k} {v}" for k, v in t.items()))
bad = [k for k, h in r["history"].items() for x in h["cnn"]["loss"] if not x == x or x > 1e3]
if bad:
    sys.exit(f"gpu_check: non-finite or exploding CNN loss in {bad}")
EOF
test -f "$OUT/cascade.pt"
"$PY" - "$OUT/cascade.pt" <<'EOF'
import sys
import numpy as np
from models.cascade import Cascade
c = Cascade.load(sys.argv[1], "cuda" if __import__("torch").cuda.is_available() else "cpu")
(a,) = c.annotate(np.full((1, c.config.cnn.input_size, c.config.cnn.input_size), 120, np.uint8))
print(f"reloaded checkpoint on {c.device}: {len(c.label_names)} labels, {len(c.concept_names)} concepts, "
      f"annotation '{' '.join(a.words)}', text_context {c.text_context([['opacity', 'lung']]).shape}")
EOF
say "OK"
