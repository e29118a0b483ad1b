"""Query words -> the cascade's joint image/text context space, for the vector retriever (loads torch lazily).

The cascade (models.cascade.Cascade.text_context) embeds annotation words with an image-free initial
state (the mean CNN embedding of training images whose annotation starts with the same word). The
encoder refuses a checkpoint other than the one the index's vectors were made with: vectors of two
models do not share a space.
"""
from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from indexer.checkpoints import made_by
from indexer.errors import IndexerError


class EncoderUnavailable(IndexerError):
    """The vector retriever cannot run: no checkpoint, another model than the index's, or no text encoder in it.

    `reason` is a short, path-free explanation fit for an API answer; str(e) has the details.
    """

    def __init__(self, message: str, reason: str = "no usable query encoder"):
        super().__init__(message)
        self.reason = reason


class QueryEncoder:
    """Encodes annotation words with one cascade checkpoint, loaded on first use."""

    def __init__(self, checkpoint: str | Path, expect_model_version: str | None = None):
        self.checkpoint = Path(checkpoint)
        self.expect = expect_model_version
        self._cascade = None
        self._failure: EncoderUnavailable | None = None  # remembered: a broken checkpoint is not reloaded per query
        self._lock = threading.Lock()

    def _load(self):
        with self._lock:
            if self._cascade is not None:
                return self._cascade
            if self._failure is not None:
                raise self._failure
            try:
                self._cascade = self._open()
            except EncoderUnavailable as e:
                self._failure = e
                raise
            return self._cascade

    def _open(self):
        if not self.checkpoint.is_file():
            raise EncoderUnavailable(f"no cascade checkpoint at {self.checkpoint}", "no cascade checkpoint found")
        if self.expect and not made_by(self.checkpoint, self.expect):
            raise EncoderUnavailable(f"{self.checkpoint} is not the model the index's vectors were made with "
                                     f"({self.expect}); reindex with it or pass that checkpoint",
                                     "the checkpoint is not the model that made the index's vectors")
        from models.cascade import Cascade
        from models.errors import ModelError

        try:
            cascade = Cascade.load(self.checkpoint)
        except ModelError as e:
            raise EncoderUnavailable(f"cannot load {self.checkpoint}: {e}", "the checkpoint cannot be loaded") from e
        if not hasattr(cascade, "text_context") or getattr(cascade, "mean_embedding", True) is None:
            raise EncoderUnavailable(f"{self.checkpoint}: this cascade has no text encoder (text_context)",
                                     "the cascade has no text encoder")
        return cascade

    def encode(self, annotations: list[list[str]]) -> np.ndarray:
        """(B, H) context vectors of B annotations (lists of annotation words)."""
        cascade = self._load()
        from models.errors import ModelError

        try:
            return np.asarray(cascade.text_context(annotations), dtype=np.float32)
        except (ModelError, ValueError, RuntimeError, KeyError) as e:
            raise EncoderUnavailable(f"the cascade could not encode {annotations!r}: {e}",
                                     "the cascade could not encode the query") from e
