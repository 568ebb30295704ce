"""Small language models with the interface of notebook 5's ``TinyLM``, for checking decoding.

``model(idx, cache=None, use_cache=False)`` returns ``(logits, cache)`` for ids (B, T); with
``use_cache`` the cache is a list of ``(keys, values)`` pairs whose ``size(2)`` is the number
of positions seen, and ``model.config`` has ``vocab_size`` and ``block_size``.

- :class:`BigramLM`: next-token probabilities written out as a (V, V) table (no cache): models
  on which greedy decoding provably misses the likeliest sequence;
- :class:`RecomputingLM`: a random causal transformer on PyTorch's own modules whose cache
  holds the ids seen so far (keys) and their positions (values) and recomputes from them. Its
  logits with and without a cache are the same numbers, whatever attention code a notebook
  holds; a cache cropped to slide past ``block_size`` raises, as learned positions would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class DecodingConfig:
    """What decoding reads from a model's config."""

    vocab_size: int
    block_size: int = 8


class BigramLM(nn.Module):
    """Next-token log-probabilities from a (V, V) table of probabilities, in float64."""

    def __init__(self, probabilities: list[list[float]]) -> None:
        super().__init__()
        self.config = DecodingConfig(vocab_size=len(probabilities))
        table = torch.tensor(probabilities, dtype=torch.float64).log()
        self.log_probs = nn.Parameter(table, requires_grad=False)

    def forward(
        self, idx: Tensor, cache: None = None, use_cache: bool = False
    ) -> tuple[Tensor, None]:
        """Log-probabilities (B, T, V) of the token after each of ``idx`` (B, T)."""
        return self.log_probs[idx], None


class RecomputingLM(nn.Module):
    """A random one-layer causal transformer in float64, in ``eval()`` mode."""

    def __init__(self, config: DecodingConfig, d_model: int = 16, seed: int = 0) -> None:
        super().__init__()
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        self.config = config
        self.tok = nn.Embedding(config.vocab_size, d_model)
        self.pos = nn.Embedding(config.block_size, d_model)
        layer = nn.TransformerEncoderLayer(
            d_model, 2, 2 * d_model, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, config.vocab_size)
        torch.random.set_rng_state(generator_state)
        self.double().eval()

    def forward(
        self, idx: Tensor, cache: list[tuple[Tensor, Tensor]] | None = None, use_cache: bool = False
    ) -> tuple[Tensor, list[tuple[Tensor, Tensor]] | None]:
        """Logits (B, T_new, V) of the new ids ``idx``, after the ids in ``cache``."""
        new = torch.arange(idx.size(1), device=idx.device, dtype=torch.float64)
        if cache is None:
            seen, positions = idx, new
        else:
            ids, cached_positions = cache[0]
            seen = torch.cat([ids[:, 0, :, 0].long(), idx], 1)
            before = cached_positions[0, 0, :, 0]
            positions = torch.cat([before, before[-1] + 1 + new])
        if seen.size(1) > self.config.block_size or positions[-1] >= self.config.block_size:
            raise ValueError(
                f"position {int(positions[-1])} is past block_size {self.config.block_size}: "
                "a cache cannot be cropped, recompute from the last block_size ids"
            )
        length = seen.size(1)
        x = self.tok(seen) + self.pos(positions.long())
        future = nn.Transformer.generate_square_subsequent_mask(length, dtype=x.dtype)
        logits = self.head(self.encoder(x, mask=future))[:, -idx.size(1) :]
        if not use_cache:
            return logits, None
        # (B, 1, T, 1): size(2) counts the positions; the values hold each one's position
        ids = seen[:, None, :, None].double()
        return logits, [(ids, positions[None, None, :, None].expand_as(ids).clone())]
