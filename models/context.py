"""Joint image/text context vectors (paper section 7, eq. 12)."""
from __future__ import annotations

import torch

from models.rnn import AnnotationDecoder


def context_vectors(decoder: AnnotationDecoder, embedding: torch.Tensor, tokens: torch.Tensor,
                    lengths: torch.Tensor) -> torch.Tensor:
    """h_im:text = mean over the annotation's N words of the top-layer RNN state, h0 = CNN(I).

    Args:
        decoder: a trained decoder (its parameters are shared with annotation generation).
        embedding: (B, E) CNN embeddings.
        tokens: (B, T) annotation word ids (T >= max(lengths); positions past a length ignored).
        lengths: (B,) number of words N of each annotation, >= 1.
    Returns:
        (B, H) context vectors.
    """
    T = int(lengths.max())
    states = decoder.top_states(embedding, tokens[:, :T])                        # (B, T, H)
    mask = (torch.arange(T, device=tokens.device)[None, :] < lengths[:, None])   # (B, T)
    summed = (states * mask.unsqueeze(-1).to(states.dtype)).sum(dim=1)           # (B, H)
    return summed / lengths.to(states.dtype).unsqueeze(-1)                       # (B, H)
