"""CNN training with data dropout and a step-down learning rate; accuracy and embeddings."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from models.cnn import CascadeCNN
from models.config import CNNConfig, TrainConfig
from models.preprocess import to_input
from models.sampler import data_dropout_epoch


@dataclass
class CNNHistory:
    """Per-epoch training loss/accuracy (on the balanced, augmented batches) and learning rate."""

    loss: list[float] = field(default_factory=list)
    concept_loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    samples_per_epoch: list[int] = field(default_factory=list)


def make_optimizer(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (the paper), Adam or AdamW over parameter groups that carry their own lr."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, epochs: int,
                   steps_per_epoch: int) -> tuple[torch.optim.lr_scheduler.LRScheduler, bool]:
    """The rate schedule and whether it steps per batch (True) or per epoch (False).

    'step': x lr_gamma every epochs / lr_steps epochs (the paper). 'onecycle': linear warm-up over
    the first 10% of the batches, then a cosine down to 1% of the rate.
    """
    if cfg.schedule == "onecycle":
        total = max(1, epochs * steps_per_epoch)
        warm = max(1, total // 10)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            t = min(1.0, (step - warm) / max(1, total - warm))
            return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t))
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor), True
    step = max(1, math.ceil(epochs / cfg.lr_steps))
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=cfg.lr_gamma), False


def train_cnn(cnn: CascadeCNN, images: np.ndarray, labels: Sequence[str], label_names: Sequence[str],
              cnn_cfg: CNNConfig, cfg: TrainConfig, *, epochs: int, seed: int, device: torch.device,
              body_lr_scale: float = 1.0, normal_label: str = "normal", desc: str = "cnn",
              progress: bool = True, max_per_label: int | None = None,
              concept_targets: torch.Tensor | None = None, extra_images: np.ndarray | None = None,
              extra_concepts: torch.Tensor | None = None) -> CNNHistory:
    """Train `cnn` in place on stored images (N, S, S) with their string labels.

    Every epoch is a fresh data-dropout draw (models.sampler): disease labels balanced,
    diseased images repeated/augmented, normals subsampled. The rate follows `cfg.schedule`.
    `body_lr_scale` < 1 gives every layer but the heads a lower rate (cascade iteration 1
    fine-tuning). With `concept_targets` (N, K) in {0, 1} and a concept head on `cnn`, the
    multi-label concept loss (binary cross-entropy, weight cfg.concept_weight) is added.
    `extra_images` (M, S, S) with `extra_concepts` (M, K): images without a label of this round;
    cfg.concept_extra x batch_size of them join every batch for the concept loss alone.
    """
    index = {name: i for i, name in enumerate(label_names)}
    targets = torch.tensor([index[label] for label in labels], dtype=torch.long)
    use_concepts = concept_targets is not None and cnn.concept_head is not None and cfg.concept_weight > 0
    n_extra = int(round(cfg.concept_extra * cfg.batch_size)) if use_concepts and extra_images is not None else 0
    n_extra = n_extra if extra_images is not None and len(extra_images) else 0
    extra_order: list[int] = []
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    groups = [{"params": cnn.body_parameters(), "lr": cfg.lr * body_lr_scale},
              {"params": cnn.head_parameters(), "lr": cfg.lr}]
    optimizer = make_optimizer(groups, cfg)
    cap = cfg.max_per_label if max_per_label is None else max_per_label

    def draw():
        return data_dropout_epoch(labels, rng, normal_label=normal_label, augment=cfg.augment,
                                  normal_ratio=cfg.normal_ratio, max_per_label=cap, normal_share=cfg.normal_share)

    plan = draw()
    scheduler, per_batch = make_scheduler(optimizer, cfg, epochs, math.ceil(len(plan.indices) / cfg.batch_size))
    history = CNNHistory()
    cnn.to(device).use_channels_last(cfg.channels_last).train()
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress)
    for epoch in bar:
        plan = plan if epoch == 0 else draw()
        total_loss, total_concept, correct, seen = 0.0, 0.0, 0, 0
        for start in range(0, len(plan.indices), cfg.batch_size):
            batch = plan.indices[start:start + cfg.batch_size]
            if len(batch) < 2:          # batch norm needs two samples
                continue
            stored = images[batch]                                                        # (B, S, S)
            if n_extra:
                if len(extra_order) < n_extra:  # every extra image once per pass
                    extra_order += rng.permutation(len(extra_images)).tolist()
                extra, extra_order = extra_order[:n_extra], extra_order[n_extra:]
                stored = np.concatenate([stored, extra_images[extra]])                    # (B + X, S, S)
            x = to_input(stored, cnn_cfg, train=True, generator=gen, shift=cfg.shift,
                         intensity=cfg.intensity).to(device)                              # (B [+ X], C, s, s)
            y = targets[batch].to(device)                                                 # (B,)
            logits, embedding = cnn(x)                                                    # (B [+ X], L), (B [+ X], E)
            logits = logits[:len(batch)]                                                  # labels: the first B only
            loss = F.cross_entropy(logits, y)
            if use_concepts:
                wanted = concept_targets[batch]                                           # (B, K)
                if n_extra:
                    wanted = torch.cat([wanted, extra_concepts[extra]])                   # (B + X, K)
                concept_loss = F.binary_cross_entropy_with_logits(cnn.concept_logits(embedding), wanted.to(device))
                total_concept += float(concept_loss.detach()) * len(batch)
                loss = loss + cfg.concept_weight * concept_loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if per_batch:
                scheduler.step()
            total_loss += float(loss.detach()) * len(batch)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(batch)
        history.loss.append(total_loss / max(seen, 1))
        history.concept_loss.append(total_concept / max(seen, 1))
        history.accuracy.append(correct / max(seen, 1))
        history.lr.append(optimizer.param_groups[-1]["lr"])
        history.samples_per_epoch.append(seen)
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}", acc=f"{history.accuracy[-1]:.2f}", n=seen)
        if not per_batch:
            scheduler.step()
    cnn.eval()
    return history


@torch.no_grad()
def predict(cnn: CascadeCNN, images: np.ndarray, cnn_cfg: CNNConfig, device: torch.device,
            batch_size: int = 200, progress: bool = False, desc: str = "embed") -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode pass over stored images (N, S, S): -> (N, L) probabilities, (N, E) embeddings (CPU)."""
    cnn.to(device).eval()
    probs, embeddings = [], []
    for start in tqdm(range(0, len(images), batch_size), desc=desc, disable=not progress, unit="batch"):
        x = to_input(images[start:start + batch_size], cnn_cfg).to(device)
        logits, embedding = cnn(x)
        probs.append(torch.softmax(logits, -1).cpu())
        embeddings.append(embedding.cpu())
    return torch.cat(probs), torch.cat(embeddings)


@torch.no_grad()
def concept_probabilities(cnn: CascadeCNN, embeddings: torch.Tensor, batch_size: int = 2000) -> torch.Tensor:
    """(N, E) embeddings -> (N, K) sigmoid concept probabilities ((N, 0) without a concept head)."""
    if cnn.concept_head is None:
        return torch.zeros(len(embeddings), 0)
    cnn.eval()
    device = next(cnn.parameters()).device
    return torch.cat([torch.sigmoid(cnn.concept_logits(embeddings[s:s + batch_size].to(device))).cpu()
                      for s in range(0, len(embeddings), batch_size)]) if len(embeddings) else torch.zeros(0, 0)


def accuracy(probs: torch.Tensor, labels: Sequence[str], label_names: Sequence[str]) -> float | None:
    """Top-1 accuracy of (N, L) probabilities against string labels (None for no images)."""
    if len(labels) == 0:
        return None
    index = {name: i for i, name in enumerate(label_names)}
    truth = torch.tensor([index.get(label, -1) for label in labels])
    return float((probs.argmax(1) == truth).float().mean())
