"""Word vocabulary of annotations with <pad>/<eos>/<unk>; saved inside every checkpoint."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from models.errors import VocabularyError

PAD, EOS, UNK = "<pad>", "<eos>", "<unk>"
SPECIALS = (PAD, EOS, UNK)


@dataclass(frozen=True)
class WordVocabulary:
    """An ordered word list; ids 0, 1, 2 are <pad>, <eos>, <unk>."""

    words: tuple[str, ...]

    def __post_init__(self) -> None:
        if tuple(self.words[:3]) != SPECIALS:
            raise VocabularyError(f"vocabulary must start with {SPECIALS}, got {tuple(self.words[:3])}")
        if len(set(self.words)) != len(self.words):
            raise VocabularyError("vocabulary has duplicate words")
        object.__setattr__(self, "_index", {w: i for i, w in enumerate(self.words)})

    pad_id = 0
    eos_id = 1
    unk_id = 2

    @classmethod
    def build(cls, annotations: Iterable[Sequence[str]], min_count: int = 1) -> WordVocabulary:
        """Vocabulary of every word seen at least `min_count` times, most frequent first."""
        counts = Counter(w for words in annotations for w in words)
        kept = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls(SPECIALS + tuple(kept))

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self._index  # type: ignore[attr-defined]

    def id(self, word: str) -> int:
        """Id of `word`, <unk> if unknown."""
        return self._index.get(word, self.unk_id)  # type: ignore[attr-defined]

    def encode(self, words: Sequence[str], max_words: int = 5) -> list[int]:
        """Ids of the first `max_words` words, then <eos> up to length max_words + 1.

        The result is the RNN's token sequence: inputs are [:-1], targets are [1:].
        """
        ids = [self.id(w) for w in list(words)[:max_words]]
        return ids + [self.eos_id] * (max_words + 1 - len(ids))

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Words up to (not including) the first <eos>; <pad> is skipped."""
        out: list[str] = []
        for i in ids:
            i = int(i)
            if i == self.eos_id:
                break
            if i == self.pad_id:
                continue
            out.append(self.words[i] if 0 <= i < len(self.words) else UNK)
        return out

    def to_dict(self) -> dict:
        return {"words": list(self.words)}

    @classmethod
    def from_dict(cls, data: dict) -> WordVocabulary:
        try:
            return cls(tuple(data["words"]))
        except (KeyError, TypeError) as e:
            raise VocabularyError(f"not a vocabulary dict: {e}") from e
