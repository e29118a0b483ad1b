"""RNN (annotation decoder) training on fixed CNN embeddings, and greedy generation."""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from models.config import RNNConfig
from models.rnn import AnnotationDecoder, encode_annotations
from models.vocab import WordVocabulary


@dataclass
class RNNHistory:
    """Per-epoch mean NLL per word on train (and val), the rate, and the epoch kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    best_epoch: int = -1


def make_optimizer(decoder: AnnotationDecoder, cfg: RNNConfig) -> torch.optim.Optimizer:
    """char-rnn's RMSprop (lr, decay_rate as alpha) as in the paper, or Adam."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(decoder.parameters(), lr=cfg.lr)
    return torch.optim.RMSprop(decoder.parameters(), lr=cfg.lr, alpha=cfg.decay_rate, eps=1e-8)


@torch.no_grad()
def mean_loss(decoder: AnnotationDecoder, embeddings: torch.Tensor, tokens: torch.Tensor,
              batch_size: int = 500) -> float:
    """Mean NLL per predicted word of (N, E) embeddings and (N, T+1) tokens, eval mode."""
    decoder.eval()
    total = 0.0
    for start in range(0, len(tokens), batch_size):
        emb, tok = embeddings[start:start + batch_size], tokens[start:start + batch_size]
        total += float(decoder.loss(emb, tok)) * len(tok)
    return total / max(len(tokens), 1)


def train_decoder(decoder: AnnotationDecoder, vocab: WordVocabulary, embeddings: torch.Tensor,
                  annotations: Sequence[Sequence[str]], cfg: RNNConfig, *, seed: int, device: torch.device,
                  val: tuple[torch.Tensor, Sequence[Sequence[str]]] | None = None, desc: str = "rnn",
                  progress: bool = True) -> RNNHistory:
    """Train in place with teacher forcing (eq. 11); keep the weights of the best val epoch.

    Args:
        embeddings: (N, E) CNN embeddings of the training images (fixed, no gradient).
        annotations: their true annotation words.
        val: optional (embeddings, annotations) of validation images for model selection.
    """
    gen = torch.Generator().manual_seed(seed)
    tokens, _ = encode_annotations(vocab, annotations, cfg.max_words)                  # (N, T+1)
    embeddings, tokens = embeddings.to(device), tokens.to(device)
    val_data = None
    if val is not None and len(val[1]):
        val_tokens, _ = encode_annotations(vocab, val[1], cfg.max_words)
        val_data = (val[0].to(device), val_tokens.to(device))
    decoder.to(device)
    optimizer = make_optimizer(decoder, cfg)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.lr_decay)
    history, best, best_state = RNNHistory(), float("inf"), None
    bar = tqdm(range(cfg.epochs), desc=desc, unit="epoch", disable=not progress)
    for epoch in bar:
        decoder.train()
        order = torch.randperm(len(tokens), generator=gen).to(device)
        total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start:start + cfg.batch_size]
            loss = decoder.loss(embeddings[batch], tokens[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(decoder.parameters(), cfg.grad_clip)
            optimizer.step()
            total += float(loss.detach()) * len(batch)
        history.train_loss.append(total / max(len(order), 1))
        history.lr.append(optimizer.param_groups[0]["lr"])
        score = history.train_loss[-1]
        if val_data is not None:
            history.val_loss.append(mean_loss(decoder, *val_data))
            score = history.val_loss[-1]
        if score < best:
            best, best_state, history.best_epoch = score, copy.deepcopy(decoder.state_dict()), epoch
        bar.set_postfix(train=f"{history.train_loss[-1]:.3f}",
                        val=f"{history.val_loss[-1]:.3f}" if history.val_loss else "-")
        scheduler.step()
    if best_state is not None:
        decoder.load_state_dict(best_state)
    decoder.eval()
    return history


@torch.no_grad()
def generate(decoder: AnnotationDecoder, vocab: WordVocabulary, embeddings: torch.Tensor, first_ids: torch.Tensor,
             device: torch.device, batch_size: int = 500) -> list[list[str]]:
    """Greedy annotations for (N, E) embeddings starting from (N,) first-word ids."""
    decoder.to(device).eval()
    out: list[list[str]] = []
    for start in range(0, len(first_ids), batch_size):
        ids = decoder.greedy(embeddings[start:start + batch_size].to(device),
                             first_ids[start:start + batch_size].to(device))
        out.extend(vocab.decode(row) for row in ids.tolist())
    return out
