"""Attention over blocks of keys with an online softmax (FlashAttention's recurrence)."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def blockwise_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None, block_size: int = 64
) -> Tensor:
    """softmax(QKᵀ/√d + M)V computed one block of ``block_size`` keys at a time, holding
    (..., T_q, block_size) scores at most. Masks as in notebook 1 (boolean True = blocked,
    float added); a query whose keys are all blocked gets zeros."""
    scale = 1.0 / math.sqrt(query.size(-1))
    rows = (*query.shape[:-1], 1)
    running_max = query.new_full(rows, float("-inf"))
    running_sum = query.new_zeros(rows)
    accumulator = query.new_zeros((*query.shape[:-1], value.size(-1)))
    if mask is not None:  # a view: broadcasting allocates nothing
        mask = mask.broadcast_to((*query.shape[:-1], key.size(-2)))
    for start in range(0, key.size(-2), block_size):
        stop = start + block_size
        scores = query @ key[..., start:stop, :].transpose(-2, -1) * scale
        if mask is not None:
            block = mask[..., start:stop]
            if block.dtype == torch.bool:
                scores = scores.masked_fill(block, float("-inf"))
            else:
                scores = scores + block
        new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))
        # Rows that have seen only blocked keys keep a max of -inf: shift them by 0 so that
        # exp gives 0 rather than exp(-inf + inf) = NaN.
        shift = new_max.masked_fill(torch.isneginf(new_max), 0.0)
        probs = torch.exp(scores - shift)
        correction = torch.exp(running_max - shift)
        running_sum = running_sum * correction + probs.sum(dim=-1, keepdim=True)
        accumulator = accumulator * correction + probs @ value[..., start:stop, :]
        running_max = new_max
    return accumulator / running_sum.masked_fill(running_sum == 0, 1.0)
