"""The cascade for uploaded images: annotation, label probabilities, CNN embedding and joint context vector.

The checkpoint must be the one whose vectors are live: neighbours computed with another model's
vectors would be meaningless. CHECKPOINT='auto' finds it among the data directory's trained models
and the committed ones by the vectors' model version ('it<iteration>-<first 12 hex of sha256>',
as the reindex job names it).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.checkpoints import made_by, model_version
from indexer.settings import PROJECT_ROOT
from search_web.errors import Conflict, ServiceUnavailable

TOP_LABELS = 8


@dataclass
class Encoded:
    """What the cascade says about one uploaded image."""

    words: list[str]
    label: str
    probabilities: list[tuple[str, float]]   # top labels, most probable first
    embedding: np.ndarray                     # (E,)
    context_vector: np.ndarray                # (H,)
    findings: np.ndarray                      # (L + 1,) models.findings.vector
    model_version: str
    seconds: float

    @property
    def annotation(self) -> str:
        return " ".join(self.words)


def candidate_checkpoints(data_dir: Path) -> list[Path]:
    """Trained cascades in the data directory, then the committed ones."""
    found = sorted((data_dir / "models").glob("*/cascade.pt")) + sorted(
        (PROJECT_ROOT / "models" / "checkpoints").glob("*/cascade.pt"))
    return [p for p in found if p.is_file()]


def find_checkpoint(setting: str, data_dir: Path, want_version: str) -> Path | None:
    """The checkpoint that made `want_version`'s vectors: CHECKPOINT when a path, else the matching candidate."""
    if setting.lower() == "none":
        return None
    if setting.lower() != "auto":
        return Path(setting)
    for path in candidate_checkpoints(data_dir):
        try:
            if made_by(path, want_version):
                return path
        except OSError:
            continue
    return None


class UploadEncoder:
    """Loads the cascade once per process; `encode(grey, want_version)` is thread-safe."""

    def __init__(self, setting: str, data_dir: Path, torch_threads: int = 1):
        self.setting = str(setting or "auto")
        self.data_dir = data_dir
        self.torch_threads = torch_threads
        self._lock = threading.Lock()
        self._loaded: dict[str, tuple[object, str]] = {}   # model version -> (cascade, path)
        self._versions: dict[tuple, str] = {}              # (path, mtime, size) -> model version

    def _version(self, path: Path) -> str:
        import torch

        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        if key not in self._versions:
            data = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            self._versions[key] = model_version(path, int(data.get("iteration", 0)))
        return self._versions[key]

    def cascade_for(self, want_version: str):
        """The loaded cascade whose model version is `want_version`; Conflict when none is available."""
        with self._lock:
            if want_version in self._loaded:
                return self._loaded[want_version][0]
            if self.setting.lower() == "none":
                raise ServiceUnavailable("search by image is switched off (CHECKPOINT=none)")
            paths = [Path(self.setting)] if self.setting.lower() != "auto" else candidate_checkpoints(self.data_dir)
            if not paths:
                raise Conflict("no cascade checkpoint found: train one with `cxrsearch train --preset tiny` "
                               "or set CXRSEARCH_CHECKPOINT")
            seen = []
            for path in paths:
                if not path.is_file():
                    raise Conflict(f"CHECKPOINT={str(path)!r} is not a file")
                try:
                    version = self._version(path)
                except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
                    seen.append(f"{path} (unreadable: {type(e).__name__})")
                    continue
                if version == want_version:
                    return self._load(path, version)
                seen.append(f"{path} ({version})")
            raise Conflict(f"no checkpoint matches the live vectors' model {want_version!r}; found "
                           f"{'; '.join(seen)}. Reindex with the checkpoint to use, or set CXRSEARCH_CHECKPOINT")

    def _load(self, path: Path, version: str):
        import torch

        from models.cascade import Cascade

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)
        cascade = Cascade.load(path, "cpu").eval()
        self._loaded[version] = (cascade, str(path))
        return cascade

    def encode(self, grey: np.ndarray, want_version: str) -> Encoded:
        """Annotate one grey (H, W) uint8 image with the cascade of `want_version`."""
        from models.preprocess import prepare

        cascade = self.cascade_for(want_version)
        start = time.perf_counter()
        stored = prepare(grey, cascade.config.cnn)                      # (S, S) uint8
        result = cascade.annotate(stored[None])[0]                      # batch of one
        order = np.argsort(-result.probabilities)[:TOP_LABELS]
        probabilities = [(cascade.label_names[i], float(result.probabilities[i])) for i in order]
        words = [w for w in result.words if w and not w.startswith("<")]
        return Encoded(words=words, label=result.label, probabilities=probabilities, embedding=result.embedding,
                       context_vector=result.context_vector, findings=result.findings, model_version=want_version,
                       seconds=time.perf_counter() - start)
