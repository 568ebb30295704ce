"""Drawing the next token from a language model's logits: temperature and top-k.

:func:`sample_next_token` is what ``CausalLM.generate`` does at every step;
:func:`generate_text` wraps generation for a character tokenizer.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """``logits`` (..., V) with all but the ``k`` largest of each row set to -inf.

    Ties with the k-th largest value are kept, so a row may keep more than ``k`` entries.
    """
    kth = torch.topk(logits, min(k, logits.size(-1)), dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def sample_next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One token id per row of the (B, V) ``logits``, shape (B, 1).

    Samples from ``softmax(logits / temperature)``, restricted to the ``top_k`` most likely
    tokens when given. Temperature below 1 sharpens the distribution, above 1 flattens it.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = logits / temperature
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)


class Tokenizer(Protocol):
    """What :func:`generate_text` needs of a tokenizer (e.g. ``tfcourse.vocab.CharTokenizer``)."""

    def encode(self, text: str) -> Tensor: ...

    def decode(self, ids: Tensor) -> str: ...


def generate_text(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    prompt: str,
    length: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    seed: int = 0,
) -> str:
    """The ``prompt`` followed by ``length`` sampled characters (model in ``eval()`` mode)."""
    device = next(model.parameters()).device
    model.eval()
    idx = tokenizer.encode(prompt).unsqueeze(0).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    out = model.generate(idx, length, temperature, top_k, generator)  # type: ignore[operator]
    return tokenizer.decode(out[0].cpu())
