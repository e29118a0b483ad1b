"""CNN training with data dropout and a step-down learning rate; accuracy and embeddings."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

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
    accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    samples_per_epoch: list[int] = field(default_factory=list)


def make_optimizer(groups: list[dict], cfg: TrainConfig) -> torch.optim.Optimizer:
    """SGD with momentum (the paper) or Adam over parameter groups that carry their own lr."""
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)


def train_cnn(cnn: CascadeCNN, images: np.ndarray, labels: Sequence[str], label_names: Sequence[str],
              cnn_cfg: CNNConfig, cfg: TrainConfig, *, epochs: int, seed: int, device: torch.device,
              body_lr_scale: float = 1.0, normal_label: str = "normal", desc: str = "cnn",
              progress: bool = True) -> CNNHistory:
    """Train `cnn` in place on stored images (N, S, S) with their string labels.

    Every epoch is a fresh data-dropout draw (models.sampler): disease labels balanced,
    diseased images repeated/augmented, normals subsampled. The rate steps down by
    `cfg.lr_gamma` every epochs / lr_steps epochs. `body_lr_scale` < 1 gives every layer but
    the classifier a lower rate (cascade iteration 1 fine-tuning).
    """
    index = {name: i for i, name in enumerate(label_names)}
    targets = torch.tensor([index[label] for label in labels], dtype=torch.long)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    groups = [{"params": cnn.body_parameters(), "lr": cfg.lr * body_lr_scale},
              {"params": cnn.head_parameters(), "lr": cfg.lr}]
    optimizer = make_optimizer(groups, cfg)
    step = max(1, math.ceil(epochs / cfg.lr_steps))
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=step, gamma=cfg.lr_gamma)
    history = CNNHistory()
    cnn.to(device).train()
    bar = tqdm(range(epochs), desc=desc, unit="epoch", disable=not progress)
    for _ in bar:
        plan = data_dropout_epoch(labels, rng, normal_label=normal_label, augment=cfg.augment,
                                  normal_ratio=cfg.normal_ratio, max_per_label=cfg.max_per_label,
                                  normal_share=cfg.normal_share)
        total_loss, correct, seen = 0.0, 0, 0
        for start in range(0, len(plan.indices), cfg.batch_size):
            batch = plan.indices[start:start + cfg.batch_size]
            if len(batch) < 2:          # batch norm needs two samples
                continue
            x = to_input(images[batch], cnn_cfg, train=True, generator=gen).to(device)   # (B, C, s, s)
            y = targets[batch].to(device)                                                 # (B,)
            logits, _ = cnn(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(batch)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(batch)
        history.loss.append(total_loss / max(seen, 1))
        history.accuracy.append(correct / max(seen, 1))
        history.lr.append(optimizer.param_groups[-1]["lr"])
        history.samples_per_epoch.append(seen)
        bar.set_postfix(loss=f"{history.loss[-1]:.3f}", acc=f"{history.accuracy[-1]:.2f}", n=seen)
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


def accuracy(probs: torch.Tensor, labels: Sequence[str], label_names: Sequence[str]) -> float | None:
    """Top-1 accuracy of (N, L) probabilities against string labels (None for no images)."""
    if len(labels) == 0:
        return None
    index = {name: i for i, name in enumerate(label_names)}
    truth = torch.tensor([index.get(label, -1) for label in labels])
    return float((probs.argmax(1) == truth).float().mean())
