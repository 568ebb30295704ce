"""Rotary position embeddings (RoPE, notebook 6, section 2) and causal self-attention with
them and a key/value cache.

A vector of even size D is read as D/2 pairs ``(x[i], x[i + D/2])`` (the "rotate half"
layout); at position m, pair i turns by the angle ``m·θ_i`` with ``θ_i = base^(-2i/D)``.
Queries and keys are both turned, so their dot product depends on the positions only
through their difference: ``R(m)q · R(n)k = q · R(n - m)k``. Angles are computed in float64
(positions of long contexts times θ_0 = 1 lose digits in float32) and cast to the input's
dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LayerCache = tuple[Tensor, Tensor]
"""Rotated keys and values of one layer, each (B, H, T_past, D)."""


def apply_rotary(x: Tensor, positions: Tensor, base: float = 10000.0) -> Tensor:
    """``x`` (..., T, D) with each position's pairs turned by its angles; positions (T,)."""
    half = x.size(-1) // 2
    inverse_frequencies = base ** (
        -2.0 * torch.arange(half, dtype=torch.float64, device=x.device) / x.size(-1)
    )
    angles = positions.to(device=x.device, dtype=torch.float64)[:, None] * inverse_frequencies
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    first, second = x[..., :half], x[..., half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos], dim=-1)


def rotary_self_attention(
    attn: nn.MultiheadAttention, x: Tensor, cache: LayerCache | None = None, base: float = 10000.0
) -> tuple[Tensor, LayerCache]:
    """Causal self-attention of the new positions x (B, T_new, E) with ``attn``'s weights
    (``batch_first=True``), queries and keys rotated by their absolute positions, over the
    cached positions and themselves. Returns the output (B, T_new, E) and the cache extended
    by the new (rotated) keys and values."""
    batch, new, embed_dim = x.shape
    heads = attn.num_heads

    def split(t: Tensor) -> Tensor:
        return t.view(batch, new, heads, embed_dim // heads).transpose(1, 2)

    q, k, v = (split(t) for t in F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1))
    past = 0 if cache is None else cache[0].size(2)
    positions = torch.arange(past, past + new, device=x.device)
    q, k = apply_rotary(q, positions, base), apply_rotary(k, positions, base)
    if cache is not None:
        k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
    # Query i sits at position past + i and may see keys 0..past + i (PyTorch: True = may attend).
    allowed = torch.ones(new, k.size(2), dtype=torch.bool, device=x.device).tril(diagonal=past)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return attn.out_proj(out.transpose(1, 2).reshape(batch, new, embed_dim)), (k, v)
