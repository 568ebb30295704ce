"""Reference multi-head attention, a drop-in for ``torch.nn.MultiheadAttention(batch_first=True)``.

Masks follow ``nn.MultiheadAttention``: a boolean mask is True where attention is *blocked*;
a float mask is added to the attention scores (``-inf`` blocks).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Attend from ``query`` (..., T_q, d_k) to ``key`` (..., T_k, d_k), ``value`` (..., T_k, d_v).

    ``mask`` broadcasts to (..., T_q, T_k). A query whose keys are all blocked attends to
    nothing: its weights and output are zero rather than NaN.

    Returns:
        The output (..., T_q, d_v) and the attention weights (..., T_q, T_k).
    """
    # Scaling the (T_q, d_k) query is cheaper than scaling the (T_q, T_k) scores.
    scores = (query / math.sqrt(query.size(-1))) @ key.transpose(-2, -1)
    if mask is None:
        weights = torch.softmax(scores, dim=-1)
    else:
        scores = scores + as_additive_mask(mask, scores.dtype)
        blocked_rows = torch.isneginf(scores).all(dim=-1, keepdim=True)
        # Zeroing fully blocked rows before softmax keeps NaN out of outputs and gradients.
        weights = torch.softmax(scores.masked_fill(blocked_rows, 0.0), dim=-1)
        weights = weights.masked_fill(blocked_rows, 0.0)
    if dropout_p > 0.0:
        weights = F.dropout(weights, p=dropout_p)
    return weights @ value, weights


def as_additive_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn a boolean mask (True = blocked) into 0/-inf; pass a float mask through in ``dtype``."""
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf")
        )
    return mask.to(dtype)


def causal_mask(size: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean (size, size) mask that blocks every key after its query (True above the diagonal)."""
    return torch.ones(size, size, dtype=torch.bool, device=device).triu(diagonal=1)


def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Boolean (batch, max_len) mask, True at the padded positions of each sequence."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) >= lengths.unsqueeze(1)


def split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, T, E) -> (B, num_heads, T, E // num_heads)."""
    batch, length, embed_dim = x.shape
    return x.view(batch, length, num_heads, embed_dim // num_heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, H, T, D) -> (B, T, H * D); the inverse of :func:`split_heads`."""
    batch, num_heads, length, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, length, num_heads * head_dim)


class MultiHeadAttention(nn.Module):
    """Multi-head attention whose parameters and outputs match ``nn.MultiheadAttention``.

    Parameter names equal those of ``nn.MultiheadAttention`` so its ``state_dict`` loads as is.
    Inputs are batch first: query (B, T_q, E), key and value (B, T_k, E).
    """

    def __init__(
        self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True
    ) -> None:
        super().__init__()
        if embed_dim % num_heads != 0:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        # One stacked (3E, E) projection for query, key and value, as in nn.MultiheadAttention.
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if bias:
            nn.init.zeros_(self.out_proj.bias)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        need_weights: bool = True,
        average_attn_weights: bool = True,
    ) -> tuple[Tensor, Tensor | None]:
        """Return the output (B, T_q, E) and the weights: (B, T_q, T_k) averaged over heads,
        (B, H, T_q, T_k) per head, or None when ``need_weights`` is False."""
        q, k, v = (split_heads(x, self.num_heads) for x in self._project(query, key, value))

        mask = self._combined_mask(key_padding_mask, attn_mask, q)
        dropout_p = self.dropout if self.training else 0.0
        out, weights = scaled_dot_product_attention(q, k, v, mask, dropout_p)
        out = self.out_proj(merge_heads(out))
        if not need_weights:
            return out, None
        return out, weights.mean(dim=1) if average_attn_weights else weights

    def _project(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, ...]:
        """Input projections; one stacked matmul when query, key and value are one tensor."""
        if query is key is value:
            return tuple(F.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1))
        weights = self.in_proj_weight.chunk(3)
        biases = self.in_proj_bias.chunk(3) if self.in_proj_bias is not None else (None,) * 3
        return tuple(
            F.linear(x, w, b) for x, w, b in zip((query, key, value), weights, biases, strict=True)
        )

    def _combined_mask(
        self, key_padding_mask: Tensor | None, attn_mask: Tensor | None, q: Tensor
    ) -> Tensor | None:
        """One additive mask broadcastable to (B, H, T_q, T_k), or None."""
        mask = None
        if attn_mask is not None:
            mask = as_additive_mask(attn_mask, q.dtype)
            if mask.dim() == 3:  # (B * H, T_q, T_k) as nn.MultiheadAttention accepts
                mask = mask.view(q.size(0), self.num_heads, *mask.shape[1:])
        if key_padding_mask is not None:
            padding = as_additive_mask(key_padding_mask, q.dtype)[:, None, None, :]
            mask = padding if mask is None else mask + padding
        return mask
