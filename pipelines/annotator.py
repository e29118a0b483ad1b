"""The cascade's annotate API as the reindex job sees it: one AnnotatedImage (annotation + vectors) per image."""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from indexer.checkpoints import model_version
from indexer.documents import GeneratedAnnotation
from pipelines.errors import PipelineError


class AnnotatorError(PipelineError):
    """A cascade checkpoint cannot be loaded; the message names the file and why."""


@dataclass(frozen=True)
class AnnotatedImage:
    """What an annotator returns for one image: an annotation (and vectors), or why it skipped it."""

    image_id: str
    annotation: GeneratedAnnotation | None = None
    skip_reason: str | None = None
    embedding: object | None = None  # (E,) CNN embedding, for the vector store
    context_vector: object | None = None  # (H,) joint image/text context vector
    findings: object | None = None  # (L + 1,) 'findings' vector (models.findings.vector)


class Annotator(Protocol):
    """The cascade's batch annotate API as the job uses it.

    An annotator whose `produces_vectors` attribute is true fills `embedding`, `context_vector` and `findings`;
    the reindex job then writes FAISS stores next to the text index (see pipelines.reindex.vectors).
    """

    model_version: str

    def __call__(self, images: Sequence[tuple[str, Path]]) -> Sequence[AnnotatedImage]:
        """Annotate (image id, path) pairs; one AnnotatedImage per input, in any order."""


class CascadeAnnotator:
    """The trained cascade (models.cascade) behind the Annotator protocol.

    `model_version` is 'it<iteration>-<first 12 hex of the checkpoint's sha256>', so a retrained
    or fine-tuned checkpoint re-annotates every image and an identical one re-annotates none.
    """

    produces_vectors = True

    def __init__(self, cascade, model_version: str, batch_size: int = 64, top_labels: int = 5):
        self.cascade = cascade
        self.model_version = model_version
        self.batch_size = batch_size
        self.top_labels = top_labels

    def __call__(self, images: Sequence[tuple[str, Path]]) -> list[AnnotatedImage]:
        import numpy as np

        from models.errors import UnusableImageError
        from models.preprocess import prepare

        out: list[AnnotatedImage] = []
        ready: list[tuple[str, object]] = []
        for image_id, path in images:
            try:
                ready.append((image_id, prepare(path, self.cascade.config.cnn)))  # (S, S) uint8
            except UnusableImageError as e:
                out.append(AnnotatedImage(image_id, skip_reason=f"model cannot read it ({e.reason})"))
        names = self.cascade.label_names
        concept_names = self.cascade.concept_names
        for start in range(0, len(ready), self.batch_size):
            chunk = ready[start:start + self.batch_size]
            results = self.cascade.annotate(np.stack([array for _, array in chunk]))  # (B, S, S) -> B annotations
            for (image_id, _), result in zip(chunk, results):
                order = np.argsort(-result.probabilities)[:self.top_labels]
                words = tuple(w for w in result.words if w and not w.startswith("<"))
                annotation = GeneratedAnnotation(
                    words=words, model_version=self.model_version, label=result.label,
                    probabilities={names[i]: round(float(result.probabilities[i]), 6) for i in order},
                    concept_probabilities={key: round(float(p), 4)   # every kept concept ({} without a head)
                                           for key, p in zip(concept_names, result.concept_probabilities)})
                out.append(AnnotatedImage(image_id, annotation, embedding=result.embedding,  # (E,)
                                          context_vector=result.context_vector,  # (H,)
                                          findings=result.findings))  # (L + 1,)
        return out


def load_annotator(checkpoint: str | os.PathLike, device: str | None = None) -> CascadeAnnotator:
    """The cascade annotator of a checkpoint written by `cxrsearch train`.

    Raises:
        AnnotatorError: the checkpoint is missing or unreadable (the message says which and why).
    """
    from models.cascade import Cascade
    from models.errors import CheckpointError
    from pipelines.train.runtime import pick_device

    path = Path(checkpoint)
    try:
        cascade = Cascade.load(path, pick_device(device))
    except CheckpointError as e:
        raise AnnotatorError(f"--checkpoint: {e} (train one with `cxrsearch train --preset tiny`)") from e
    return CascadeAnnotator(cascade, model_version(path, cascade.iteration))
