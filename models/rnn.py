"""Annotation decoders (paper section 6): 2-layer LSTM or GRU whose initial state is CNN(I)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from models.config import RNNConfig
from models.errors import ConfigError, ModelError
from models.vocab import WordVocabulary

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class AnnotationDecoder(nn.Module):
    """Generates an annotation word by word from an image embedding.

    The state of every layer starts at CNN(I) (through a linear projection when the
    embedding size differs from the state size); for the LSTM both the output and the
    memory start there (the paper's h and m). The first input is the first annotation word
    (at sampling time the CNN's predicted label word); the RNN then predicts the following
    words, at most `max_words` in all, padded with <eos>.
    """

    def __init__(self, cell: str, vocab_size: int, embedding_dim: int, hidden_size: int = 0,
                 num_layers: int = 2, word_dim: int = 0, dropout: float = 0.0, max_words: int = 5):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ConfigError(f"cell must be 'lstm' or 'gru', got {cell!r}")
        self.cell = cell
        self.hidden_size = hidden_size or embedding_dim
        self.num_layers = num_layers
        self.max_words = max_words
        self.embedding_dim = embedding_dim
        word_dim = word_dim or self.hidden_size
        self.words = nn.Embedding(vocab_size, word_dim, padding_idx=WordVocabulary.pad_id)
        self.init_proj: nn.Module = (nn.Identity() if embedding_dim == self.hidden_size
                                     else nn.Linear(embedding_dim, self.hidden_size))
        rnn_cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn_cls(word_dim, self.hidden_size, num_layers=num_layers, batch_first=True,
                           dropout=dropout if num_layers > 1 else 0.0)
        self.out = nn.Linear(self.hidden_size, vocab_size)

    @property
    def vocab_size(self) -> int:
        return self.out.out_features

    def init_state(self, embedding: torch.Tensor) -> State:
        """(B, E) CNN embeddings -> initial state, (L, B, H) (a pair (h, c) for the LSTM)."""
        h0 = self.init_proj(embedding)                                        # (B, H)
        h0 = h0.unsqueeze(0).expand(self.num_layers, -1, -1).contiguous()     # (L, B, H)
        return (h0, h0.clone()) if self.cell == "lstm" else h0

    def forward(self, embedding: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """(B, E) embeddings and (B, T) input word ids -> (B, T, V) next-word logits."""
        x = self.words(inputs)                                        # (B, T, D)
        outputs, _ = self.rnn(x, self.init_state(embedding))          # (B, T, H)
        return self.out(outputs)                                      # (B, T, V)

    def loss(self, embedding: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Negative log likelihood of the words after the first (paper eq. 11), per word.

        `tokens` is (B, max_words + 1): the annotation padded with <eos> (WordVocabulary.encode).
        """
        logits = self(embedding, tokens[:, :-1])                       # (B, T, V)
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1))

    def step(self, word_ids: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step: (B,) word ids and the state -> (B, V) logits and the new state."""
        x = self.words(word_ids).unsqueeze(1)                          # (B, 1, D)
        output, state = self.rnn(x, state)                             # (B, 1, H)
        return self.out(output[:, 0]), state

    def top_states(self, embedding: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Top-layer state after each input word: (B, E), (B, T) -> (B, T, H).

        GRU: its state h. LSTM: its memory (the paper's h_t, PyTorch's c_t), eq. 5.
        """
        state = self.init_state(embedding)
        states = []
        for t in range(inputs.size(1)):
            _, state = self.rnn(self.words(inputs[:, t:t + 1]), state)
            top = state[1][-1] if self.cell == "lstm" else state[-1]  # (B, H)
            states.append(top)
        return torch.stack(states, dim=1)                              # (B, T, H)

    @torch.no_grad()
    def greedy(self, embedding: torch.Tensor, first_ids: torch.Tensor, max_words: int | None = None) -> torch.Tensor:
        """Greedy annotation: (B, E), (B,) first-word ids -> (B, max_words) ids (<eos>-padded)."""
        max_words = max_words or self.max_words
        banned = torch.tensor([WordVocabulary.pad_id, WordVocabulary.unk_id], device=embedding.device)
        state = self.init_state(embedding)
        word = first_ids
        out = [first_ids]
        finished = first_ids == WordVocabulary.eos_id
        for _ in range(max_words - 1):
            logits, state = self.step(word, state)                     # (B, V)
            logits[:, banned] = float("-inf")
            word = logits.argmax(dim=-1)                               # (B,)
            word = torch.where(finished, torch.full_like(word, WordVocabulary.eos_id), word)
            finished = finished | (word == WordVocabulary.eos_id)
            out.append(word)
        return torch.stack(out, dim=1)                                 # (B, max_words)


def build_decoder(cfg: RNNConfig, vocab_size: int, embedding_dim: int) -> AnnotationDecoder:
    """The decoder described by `cfg` for a vocabulary and a CNN embedding size."""
    return AnnotationDecoder(cfg.cell, vocab_size, embedding_dim, hidden_size=cfg.hidden_size,
                             num_layers=cfg.num_layers, word_dim=cfg.word_dim, dropout=cfg.dropout,
                             max_words=cfg.max_words)


def encode_annotations(vocab: WordVocabulary, annotations: Sequence[Sequence[str]],
                       max_words: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids (B, max_words + 1) and word counts (B,) (at most max_words) of annotations."""
    if any(len(words) == 0 for words in annotations):
        raise ModelError("every annotation needs at least one word")
    tokens = torch.tensor([vocab.encode(words, max_words) for words in annotations], dtype=torch.long)
    lengths = torch.tensor([min(len(words), max_words) for words in annotations], dtype=torch.long)
    return tokens, lengths
