"""Show where the cascade looked: a class activation map of one image's predicted finding (or a given label or concept) as an overlay PNG."""  # noqa: E501  # one line: `cxrsearch` help shows it as the command summary
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipelines.errors import PipelineError
from pipelines.settings import data_dir


class ExplainError(PipelineError):
    """The map cannot be made (no checkpoint, no such image, unknown target)."""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cxrsearch explain", description=__doc__)
    p.add_argument("image", help="an image id of the image folder (CXR1_1_IM-0001-3001) or a path to a PNG/JPEG")
    p.add_argument("--out", required=True, help="overlay PNG to write")
    p.add_argument("--target", help="label ('opacity', 'opacity#2') or concept key ('findings:opacity'); "
                                    "default: the CNN's predicted label")
    p.add_argument("--checkpoint", help="cascade checkpoint (default <data>/models/tiny/cascade.pt)")
    p.add_argument("--data-dir", help="data directory (default $CXRSEARCH_DATA or ./data)")
    p.add_argument("--images", help="folder of <image_id>.png (default <data>/images/synthetic/NLMCXR_png)")
    p.add_argument("--device", help="torch device (default: cuda if available, else cpu)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from models.cam import class_activation_map, overlay_png, peak
    from models.cascade import Cascade
    from models.errors import CheckpointError, ModelError, UnusableImageError
    from models.preprocess import load_radiograph, prepare
    from pipelines.train.data import default_image_dir, image_path
    from pipelines.train.runtime import pick_device

    root = data_dir(args.data_dir)
    checkpoint = Path(args.checkpoint) if args.checkpoint else root / "models" / "tiny" / "cascade.pt"
    try:
        cascade = Cascade.load(checkpoint, pick_device(args.device))
    except CheckpointError as e:
        raise ExplainError(f"{e} (train one with `cxrsearch train --preset tiny`)") from e
    source = Path(args.image)
    if not source.is_file():
        folder = Path(args.images) if args.images else default_image_dir(root)
        found = image_path(folder, args.image)
        if found is None:
            raise ExplainError(f"{args.image!r} is neither a file nor an image id in {folder}")
        source = found
    try:
        grey = load_radiograph(source)
    except UnusableImageError as e:
        raise ExplainError(f"{source}: cannot read it as a radiograph ({e})") from e
    stored = prepare(grey, cascade.config.cnn)                      # (S, S) uint8
    try:
        cam = class_activation_map(cascade, stored, args.target)
    except ModelError as e:
        raise ExplainError(str(e)) from e
    (annotation,) = cascade.annotate(stored[None])
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(overlay_png(stored, cam))
    y, x = peak(cam)
    size = stored.shape[0]
    print(f"{source.stem}: predicted {annotation.label} ({float(annotation.probabilities.max()):.2f}), "
          f"annotation '{' '.join(annotation.words)}'")
    print(f"map of {args.target or annotation.label}: peak at x={x / size:.2f}, y={y / size:.2f} of the image "
          f"(0,0 = top left; the patient's right is on the image's left in a frontal view) -> {out}")
    if annotation.concept_probabilities.size:
        top = sorted(zip(cascade.concept_names, annotation.concept_probabilities.tolist()), key=lambda t: -t[1])[:5]
        print("concepts: " + ", ".join(f"{k} {p:.2f}" for k, p in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
