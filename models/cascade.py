"""A trained cascade bundle (CNN + decoders + vocabulary + labels) and its checkpoint format."""
from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from models.cnn import CascadeCNN, build_cnn
from models.config import CascadeConfig
from models.context import context_vectors
from models.errors import CheckpointError, ModelError
from models.findings import FindingsHead
from models.findings import vector as findings_vector
from models.preprocess import to_input
from models.rnn import AnnotationDecoder, build_decoder, encode_annotations
from models.vocab import WordVocabulary

FORMAT, FORMAT_VERSION = "cxrsearch-cascade", 2
READABLE_VERSIONS = (1, 2)   # version 1 (before the concept head and the first-word means) still loads


@dataclass
class Annotation:
    """What the cascade says about one image."""

    label: str                                 # the CNN's top label
    words: list[str]                           # generated annotation (the context RNN's)
    words_by_rnn: dict[str, list[str]]         # {'lstm': [...], 'gru': [...]}
    probabilities: np.ndarray                  # (num_labels,) softmax over label_names
    embedding: np.ndarray                      # (E,) CNN embedding centred on the training mean (search_embedding)
    context_vector: np.ndarray                 # (H,) joint image/text context vector
    concept_probabilities: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    #                                            (K,) sigmoid per key of Cascade.concept_names ((0,) without a head)
    findings: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    #                                            (L + 1,) the 'findings' vector (Cascade.findings_vectors)


@dataclass
class Cascade:
    """Everything inference needs; `save`/`load` round-trip it exactly."""

    config: CascadeConfig
    cnn: CascadeCNN
    decoders: dict[str, AnnotationDecoder]
    vocab: WordVocabulary
    label_names: list[str]
    label_first_words: dict[str, str]
    iteration: int = 0
    metrics: dict = field(default_factory=dict)
    concept_names: list[str] = field(default_factory=list)   # keys of the concept head's outputs, in order
    # text_context's image-free initial state: mean CNN embedding of the training images whose
    # annotation starts with each first word, and over all training images (fallback)
    first_word_mean_embeddings: dict[str, torch.Tensor] = field(default_factory=dict)   # word -> (E,)
    mean_embedding: torch.Tensor | None = None                                         # (E,)
    findings_head: FindingsHead | None = None   # fitted after training (models.findings); None in older files

    @classmethod
    def build(cls, config: CascadeConfig, vocab: WordVocabulary, label_names: Sequence[str],
              label_first_words: dict[str, str], iteration: int = 0,
              concept_names: Sequence[str] = ()) -> Cascade:
        """Fresh (untrained) networks shaped by `config` for this vocabulary, label set and concept keys."""
        cnn = build_cnn(config.cnn, len(label_names))
        if concept_names:
            cnn.add_concept_head(len(concept_names))
        decoders = {cell: build_decoder(config.rnn(cell), len(vocab), cnn.embedding_dim)
                    for cell in ("lstm", "gru")}
        return cls(config, cnn, decoders, vocab, list(label_names), dict(label_first_words), iteration,
                   concept_names=list(concept_names))

    @property
    def device(self) -> torch.device:
        return next(self.cnn.parameters()).device

    def to(self, device: torch.device | str) -> Cascade:
        self.cnn.to(device)
        for decoder in self.decoders.values():
            decoder.to(device)
        return self

    def eval(self) -> Cascade:
        self.cnn.eval()
        for decoder in self.decoders.values():
            decoder.eval()
        return self

    def first_word_ids(self, label_ids: torch.Tensor) -> torch.Tensor:
        """(B,) label indices -> (B,) ids of each label's first annotation word."""
        ids = [self.vocab.id(self.label_first_words.get(self.label_names[i], "")) for i in label_ids.tolist()]
        return torch.tensor(ids, dtype=torch.long, device=label_ids.device)

    @torch.no_grad()
    def annotate(self, stored: np.ndarray, known: Sequence[Sequence[str]] | None = None) -> list[Annotation]:
        """Annotate a batch of stored-size images (B, S, S) uint8 (models.preprocess.prepare).

        The context vector uses the known annotation when given, else the generated one.
        """
        self.eval()
        x = to_input(stored, self.config.cnn).to(self.device)            # (B, C, s, s)
        logits, embedding = self.cnn(x)                                   # (B, L), (B, E)
        probs = torch.softmax(logits, dim=-1)
        concepts = (torch.sigmoid(self.cnn.concept_logits(embedding)).cpu().numpy()    # (B, K)
                    if self.cnn.concept_head is not None else np.zeros((len(x), 0), dtype=np.float32))
        top = probs.argmax(dim=-1)
        first = self.first_word_ids(top)
        generated = {cell: [self.vocab.decode(row) for row in dec.greedy(embedding, first).tolist()]
                     for cell, dec in self.decoders.items()}
        words = generated[self.config.context_rnn]
        basis = [list(w) for w in known] if known is not None else [w or ["<unk>"] for w in words]
        context = self.context(embedding, basis)
        search = self.search_embedding(embedding)
        findings = self.findings_vectors(search, torch.from_numpy(concepts).to(search.device), probs)
        search = search.cpu().numpy()
        return [Annotation(label=self.label_names[int(top[i])], words=words[i],
                           words_by_rnn={cell: generated[cell][i] for cell in generated},
                           probabilities=probs[i].cpu().numpy(), embedding=search[i],
                           context_vector=context[i].cpu().numpy(), concept_probabilities=concepts[i],
                           findings=findings[i])
                for i in range(len(top))]

    @torch.no_grad()
    def findings_vectors(self, search: torch.Tensor, concepts: torch.Tensor | None,
                         probs: torch.Tensor) -> np.ndarray:
        """(B, E) search embeddings, (B, K) concept probabilities, (B, L) label softmax -> (B, M + 1) 'findings'
        vectors (models.findings.vector): from the findings head over its M mined labels; a checkpoint without
        the head gives its L label probabilities in their place (those sum to 1: no share for 'several')."""
        if self.findings_head is None:
            return findings_vector(probs.cpu().numpy())
        return findings_vector(self.findings_head.probabilities(search, concepts)[:, :-1].cpu().numpy())

    def search_embedding(self, embedding: torch.Tensor) -> torch.Tensor:
        """(B, E) CNN embeddings -> the vectors similar-image search stores: minus the training images' mean.

        The embedding is post-ReLU, so every image shares one large positive direction (body shape,
        exposure) and raw cosine mostly measures that; centring lets the dimensions that differ between
        images count. Abnormal test images, P@10 of 'same mined label' over the whole index: the previous
        tiny checkpoint 0.097 -> 0.128; the current one 0.218 -> 0.216 (0.445 -> 0.459 among labelled
        images), so it helps a weak reader and is neutral for a better one. A checkpoint without the
        mean (format 1) gives the raw embedding.
        """
        if self.mean_embedding is None:
            return embedding
        return embedding - self.mean_embedding.to(embedding.device, embedding.dtype)

    @torch.no_grad()
    def context(self, embedding: torch.Tensor, annotations: Sequence[Sequence[str]]) -> torch.Tensor:
        """(B, E) embeddings and B annotations -> (B, H) joint image/text context vectors."""
        decoder = self.decoders[self.config.context_rnn].eval()
        max_words = self.config.rnn(self.config.context_rnn).max_words
        tokens, lengths = encode_annotations(self.vocab, annotations, max_words)
        return context_vectors(decoder, embedding, tokens.to(embedding.device), lengths.to(embedding.device))

    @torch.no_grad()
    def text_context(self, annotations: Sequence[Sequence[str]]) -> np.ndarray:
        """Joint context vectors (eq. 12) of annotation words alone: (B annotations) -> (B, H).

        No image: the initial state is the mean CNN embedding of the training images whose
        annotation starts with the same first word (the mean over all training images for a
        first word never seen first), so text lands where images annotated alike land.
        """
        if self.mean_embedding is None:
            raise CheckpointError("this checkpoint has no mean training embeddings (written before text_context "
                                  "existed); retrain with `cxrsearch train` to use text_context")
        if not annotations:
            return np.zeros((0, self.decoders[self.config.context_rnn].hidden_size), dtype=np.float32)
        rows = [self.first_word_mean_embeddings.get(words[0], self.mean_embedding) if words else self.mean_embedding
                for words in annotations]
        h0 = torch.stack(rows).to(self.device)                            # (B, E)
        return self.context(h0, [list(w) for w in annotations]).cpu().numpy()

    def set_text_means(self, embeddings: torch.Tensor, annotations: Sequence[Sequence[str]]) -> None:
        """Store text_context's initial states from (N, E) training embeddings and their annotations."""
        if len(embeddings) != len(annotations) or len(embeddings) == 0:
            raise ModelError(f"need one annotation per embedding, got {len(annotations)} and {len(embeddings)}")
        embeddings = embeddings.detach().float().cpu()
        groups: dict[str, list[int]] = {}
        for i, words in enumerate(annotations):
            if words:
                groups.setdefault(words[0], []).append(i)
        self.first_word_mean_embeddings = {w: embeddings[rows].mean(0) for w, rows in sorted(groups.items())}
        self.mean_embedding = embeddings.mean(0)

    def state(self, half: bool = False) -> dict:
        """The checkpoint dict (plain types and tensors; loadable with weights_only=True).

        half: store floating-point weights as float16 (half the file; loading casts them back to
        float32, so outputs differ from the float32 model only by that rounding).
        """
        def plain(t: torch.Tensor) -> torch.Tensor:
            t = t.detach().cpu()
            return t.half() if half and t.is_floating_point() else t

        return {
            "format": FORMAT, "format_version": FORMAT_VERSION,
            "config": self.config.to_dict(), "config_fingerprint": self.config.fingerprint(),
            "iteration": self.iteration, "vocab": self.vocab.to_dict(),
            "label_names": list(self.label_names), "label_first_words": dict(self.label_first_words),
            "concept_names": list(self.concept_names),
            "first_word_mean_embeddings": {w: v.cpu() for w, v in self.first_word_mean_embeddings.items()},
            "mean_embedding": None if self.mean_embedding is None else self.mean_embedding.cpu(),
            "findings_head": None if self.findings_head is None else self.findings_head.state(),
            "metrics": self.metrics, "embedding_dim": self.cnn.embedding_dim,
            "weights_dtype": "float16" if half else "float32",
            "cnn": {k: plain(v) for k, v in self.cnn.state_dict().items()},
            "decoders": {cell: {k: plain(v) for k, v in d.state_dict().items()} for cell, d in self.decoders.items()},
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "torch_version": str(torch.__version__),
        }

    def save(self, path: str | Path, half: bool = False) -> Path:
        """Write the checkpoint atomically (float16 weights when `half`, see `state`)."""
        # the same three steps as indexer.files.atomic_path (models imports no other package of the project)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(self.state(half), tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path, device: torch.device | str = "cpu") -> Cascade:
        """Rebuild the exact networks from a checkpoint written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"no checkpoint at {path}")
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - torch raises many types for a bad file
            raise CheckpointError(f"{path} is not a readable checkpoint: {type(e).__name__}: {e}") from e
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CheckpointError(f"{path} is not a {FORMAT} checkpoint")
        if data.get("format_version") not in READABLE_VERSIONS:
            raise CheckpointError(f"{path} has format version {data.get('format_version')}, "
                                  f"this code reads {list(READABLE_VERSIONS)}; retrain with `cxrsearch train`")
        try:
            config = CascadeConfig.from_dict(data["config"])
            model = cls.build(config, WordVocabulary.from_dict(data["vocab"]), data["label_names"],
                              data["label_first_words"], int(data["iteration"]),
                              concept_names=data.get("concept_names") or ())
            model.cnn.load_state_dict(data["cnn"])
            for cell, state in data["decoders"].items():
                model.decoders[cell].load_state_dict(state)
        except (KeyError, RuntimeError, ModelError) as e:
            raise CheckpointError(f"{path} does not match the current model code: {e}") from e
        model.metrics = data.get("metrics", {})
        model.first_word_mean_embeddings = dict(data.get("first_word_mean_embeddings") or {})
        model.mean_embedding = data.get("mean_embedding")
        try:
            model.findings_head = FindingsHead.from_state(data["findings_head"]) if data.get("findings_head") else None
            head = model.findings_head
            if head is not None:
                concepts = head.concept_mean.numel()
                if concepts not in (0, len(model.concept_names)) or \
                        head.weight.shape[1] != model.cnn.embedding_dim + concepts:
                    raise ValueError(f"its weight reads {head.weight.shape[1]} features and {concepts} concepts; "
                                     f"this CNN gives {model.cnn.embedding_dim} + {len(model.concept_names)}")
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(f"{path}: its findings head is damaged ({e}); refit it with "
                                  f"`python -m pipelines.train.findings --checkpoint {path}`") from e
        model.cnn.use_channels_last(config.cnn_train.channels_last)
        return model.to(device).eval()
