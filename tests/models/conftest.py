"""Fixtures for the models tests: seeded torch, small configs and a small vocabulary."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.config import RNNConfig
from models.vocab import WordVocabulary

ANNOTATIONS = [
    ("normal",),
    ("calcified granuloma", "lung", "upper lobe", "right"),
    ("cardiomegaly", "mild"),
    ("opacity", "lung", "base", "left"),
    ("lung", "hypoinflation"),
]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def vocab() -> WordVocabulary:
    return WordVocabulary.build(ANNOTATIONS)


@pytest.fixture
def small_rnn_config() -> RNNConfig:
    return RNNConfig(cell="gru", hidden_size=16, word_dim=8, epochs=2)
