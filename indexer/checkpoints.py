"""Which cascade checkpoint made an index's annotations and vectors: model versions from checkpoint files.

A document's and a vector store's `model_version` is 'it<iteration>-<first 12 hex of the checkpoint
file's sha256>' (pipelines.annotator writes it), so a retrained checkpoint re-annotates every image
and an identical one none, and readers (the web app's upload encoder, the query encoder) can find
the checkpoint file that made the live vectors without loading torch.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def checkpoint_digest(path: str | os.PathLike) -> str:
    """The first 12 hex digits of a checkpoint file's sha256 (what a model version ends with)."""
    h = hashlib.sha256()
    with open(Path(path), "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def model_version(path: str | os.PathLike, iteration: int) -> str:
    """'it<iteration>-<digest>': the model version of a checkpoint of that cascade iteration."""
    return f"it{int(iteration)}-{checkpoint_digest(path)}"


def made_by(path: str | os.PathLike, version: str) -> bool:
    """Whether the checkpoint file at `path` is the one a model version names."""
    return bool(version) and version.rsplit("-", 1)[-1] == checkpoint_digest(path)
