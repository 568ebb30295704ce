"""Attention and a small causal language model that take and return a key/value cache, and
generation with or without it.

:class:`TinyLM` is the model notebook 5 gives its students (there it calls the student's
``cached_attention``); the tests hand this copy, built on the reference, to a student's
``generate``, so that a mistake in the attention never costs points in generation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LayerCache = tuple[Tensor, Tensor]
"""Keys and values of one layer, each (B, H, T_past, D)."""


def cached_attention(
    attn: nn.MultiheadAttention, x: Tensor, cache: LayerCache | None = None
) -> tuple[Tensor, LayerCache]:
    """Causal self-attention of the new positions x (B, T_new, E), with ``attn``'s weights
    (``batch_first=True``), over the cached positions and themselves. Returns the output
    (B, T_new, E) and the cache extended by the new keys and values."""
    batch, new, embed_dim = x.shape
    heads = attn.num_heads

    def split(t: Tensor) -> Tensor:
        return t.view(batch, new, heads, embed_dim // heads).transpose(1, 2)

    q, k, v = (split(t) for t in F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1))
    if cache is not None:
        k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
    past = k.size(2) - new
    # Query i sits at position past + i and may see keys 0..past + i (PyTorch: True = may attend).
    allowed = torch.ones(new, k.size(2), dtype=torch.bool, device=x.device).tril(diagonal=past)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
    return attn.out_proj(out.transpose(1, 2).reshape(batch, new, embed_dim)), (k, v)


@dataclass(frozen=True)
class LMConfig:
    """Sizes of :class:`TinyLM`."""

    vocab_size: int
    block_size: int = 64
    n_layer: int = 2
    n_head: int = 4
    d_model: int = 64


class Block(nn.Module):
    """Pre-norm transformer block; attention through PyTorch, or cached through the reference."""

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        d = config.d_model
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, config.n_head, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(
        self, x: Tensor, cache: LayerCache | None = None, use_cache: bool = False
    ) -> tuple[Tensor, LayerCache | None]:
        h = self.ln1(x)
        if use_cache:
            a, cache = cached_attention(self.attn, h, cache)
        else:
            blocked = torch.ones(x.size(1), x.size(1), dtype=torch.bool, device=x.device).triu(1)
            a = self.attn(h, h, h, attn_mask=blocked, need_weights=False)[0]
        x = x + a
        return x + self.mlp(self.ln2(x)), cache


class TinyLM(nn.Module):
    """Causal character model: ``model(idx, cache, use_cache) -> (logits, cache)``.

    ``idx`` (B, T_new) holds the new ids, at positions after the cached ones. Without
    ``use_cache`` the cache is None in and out; with it, the cache is a list of one
    :data:`LayerCache` per layer, returned extended by the new positions.
    """

    def __init__(self, config: LMConfig) -> None:
        super().__init__()
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, config.d_model)
        self.pos = nn.Embedding(config.block_size, config.d_model)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False)

    def forward(
        self, idx: Tensor, cache: list[LayerCache] | None = None, use_cache: bool = False
    ) -> tuple[Tensor, list[LayerCache] | None]:
        past = 0 if cache is None else cache[0][0].size(2)
        x = self.tok(idx) + self.pos(torch.arange(past, past + idx.size(1), device=idx.device))
        new_cache = []
        for index, block in enumerate(self.blocks):
            x, layer_cache = block(x, None if cache is None else cache[index], use_cache)
            new_cache.append(layer_cache)
        return self.head(self.ln(x)), new_cache if use_cache else None


def next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One id per row of logits (B, V): the argmax when temperature is 0, else a draw with
    temperature and top-k. Shape (B, 1)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1)), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=generator)


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: Tensor,
    max_new_tokens: int,
    use_cache: bool = True,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Extend ids (B, T) by ``max_new_tokens``: (B, T + max_new_tokens). With a cache, each
    step feeds only the newest id while the sequence fits in ``block_size``; past it the
    window slides, every position shifts, and the window is recomputed from scratch."""
    model.eval()
    block_size = model.config.block_size
    cache = None
    for _ in range(max_new_tokens):
        if use_cache and cache is not None and idx.size(1) <= block_size:
            logits, cache = model(idx[:, -1:], cache, use_cache=True)
        else:
            logits, cache = model(idx[:, -block_size:], use_cache=use_cache)
        idx = torch.cat([idx, next_token(logits[:, -1], temperature, top_k, generator)], dim=1)
    return idx
