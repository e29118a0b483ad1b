"""The findings head: which one mined finding an image shows, or that it shows several (beyond the paper).

The CNN's softmax is trained on the images whose report has exactly one mined label (17 of them, 'normal'
among them), so it has no answer for the other half of the corpus: reports with several findings. Asked
for images like one with a calcified granuloma, it ranks those multi-finding images high (they carry the
granuloma too) although they do not share its one finding. This head is a multinomial logistic regression
over the mined labels plus one class, `OTHER`, for every image without a mined label; it reads the CNN's
search embedding (unit length) and the concept head's probabilities (standardised, scaled by
`concept_weight`). It is fitted after the cascade trains (pipelines.train.findings).

Its vector (`vector`, what the 'findings' vector kind stores) is ``[p_1 .. p_L, sqrt(1 - |p|^2)]``: the
probabilities of the L mined labels, OTHER left out, and the remainder that makes it unit length. A query
asks with the same vector, last coordinate set to 0 (indexer.vectors.base.findings_query): the cosine is
then proportional to ``p_query . p_neighbour``, the probability that both images show the same single
finding, so images with several findings or an uncertain reading fall behind the confident ones.
Measured on the synthetic corpus: scripts/probe_reader.py vectors, models/checkpoints/tiny/eval/similar.md.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

OTHER = "<other>"    # the class of images without a mined label (several findings, or none mined)


@dataclass
class FindingsHead:
    """Weights of the head; `classes` are the mined labels then OTHER, the order of the vector's coordinates."""

    classes: list[str]              # L mined labels, then OTHER
    weight: torch.Tensor            # (L + 1, E + K)
    bias: torch.Tensor              # (L + 1,)
    concept_mean: torch.Tensor      # (K,) training images' mean concept probability
    concept_scale: torch.Tensor     # (K,) their standard deviation (floored)
    concept_weight: float           # scale of the standardised concept features beside the unit embedding

    def __post_init__(self) -> None:
        if not self.classes or self.classes[-1] != OTHER or len(set(self.classes)) != len(self.classes):
            raise ValueError(f"findings head classes must be distinct mined labels then {OTHER!r}")
        n = len(self.classes)
        if self.weight.dim() != 2 or self.weight.shape[0] != n or tuple(self.bias.shape) != (n,):
            raise ValueError(f"findings head weight {tuple(self.weight.shape)} / bias {tuple(self.bias.shape)} do "
                             f"not match {len(self.classes)} classes")
        if self.concept_mean.shape != self.concept_scale.shape:
            raise ValueError("findings head concept mean and scale differ in size")

    @property
    def labels(self) -> list[str]:
        """The mined labels, in the order of the vector's first coordinates."""
        return self.classes[:-1]

    def features(self, embedding: torch.Tensor, concepts: torch.Tensor | None) -> torch.Tensor:
        """(B, E) search embeddings and (B, K) concept probabilities -> (B, E + K) head inputs."""
        unit = embedding / embedding.norm(dim=1, keepdim=True).clamp_min(1e-9)
        if self.concept_mean.numel() == 0:
            return unit
        if concepts is None or concepts.shape[1] != self.concept_mean.numel():
            raise ValueError(f"the findings head needs {self.concept_mean.numel()} concept probabilities, got "
                             f"{None if concepts is None else concepts.shape[1]}")
        mean = self.concept_mean.to(concepts.device, concepts.dtype)
        scale = self.concept_scale.to(concepts.device, concepts.dtype)
        return torch.cat([unit, (concepts - mean) / scale * self.concept_weight], dim=1)

    def probabilities(self, embedding: torch.Tensor, concepts: torch.Tensor | None) -> torch.Tensor:
        """(B, L + 1) softmax over the mined labels and OTHER."""
        x = self.features(embedding, concepts)
        logits = x @ self.weight.to(x.device, x.dtype).T + self.bias.to(x.device, x.dtype)
        return torch.softmax(logits, dim=1)

    def state(self) -> dict:
        return {"classes": [str(c) for c in self.classes],
                "weight": self.weight.detach().cpu().float(),
                "bias": self.bias.detach().cpu().float(), "concept_mean": self.concept_mean.detach().cpu().float(),
                "concept_scale": self.concept_scale.detach().cpu().float(),
                "concept_weight": float(self.concept_weight)}

    @classmethod
    def from_state(cls, data: dict) -> FindingsHead:
        return cls(classes=list(data["classes"]), weight=data["weight"].float(), bias=data["bias"].float(),
                   concept_mean=data["concept_mean"].float(), concept_scale=data["concept_scale"].float(),
                   concept_weight=float(data["concept_weight"]))


def vector(probabilities: np.ndarray) -> np.ndarray:
    """(B, L) probabilities of single findings (each row sums to <= 1) -> (B, L + 1) unit rows
    ``[p, sqrt(1 - |p|^2)]``, what the 'findings' vector kind stores."""
    p = np.clip(np.asarray(probabilities, dtype=np.float32), 0.0, 1.0)          # (B, L)
    rest = np.sqrt(np.clip(1.0 - (p * p).sum(axis=1, keepdims=True), 0.0, None))  # (B, 1)
    out = np.hstack([p, rest])
    return out / np.linalg.norm(out, axis=1, keepdims=True)

