"""Tools for the theory notebook: a standard transformer language model built from
``torch.nn`` modules, parameter counting, and measurements of what a computation does.

Nothing here computes an answer in closed form: the notebook asks students for the
formulas, and its tests check them against what these objects actually do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from tfcourse.assertions import call_each


@dataclass(frozen=True)
class LMConfig:
    """Hyper-parameters of :class:`StandardLM`."""

    vocab_size: int
    context: int
    """Number of learned positions (the longest sequence the model accepts)."""
    d_model: int
    n_layers: int
    n_heads: int
    tied: bool = True
    """Share one matrix between the token embedding and the output head."""


class MLP(nn.Module):
    """Position-wise feed-forward network: d_model -> 4 d_model -> d_model, with biases."""

    def __init__(self, d_model: int, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.up = nn.Linear(d_model, 4 * d_model, device=device)
        self.down = nn.Linear(4 * d_model, d_model, device=device)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(torch.nn.functional.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm transformer layer: each sub-layer reads a normalised copy of the stream."""

    def __init__(self, config: LMConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(config.d_model, device=device)
        self.attn = nn.MultiheadAttention(
            config.d_model, config.n_heads, batch_first=True, device=device
        )
        self.ln_mlp = nn.LayerNorm(config.d_model, device=device)
        self.mlp = MLP(config.d_model, device=device)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self.ln_attn(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln_mlp(x))


class StandardLM(nn.Module):
    """Decoder-only language model: token + learned position embeddings, ``n_layers``
    pre-norm blocks, a final LayerNorm and a bias-free output head (tied or not)."""

    def __init__(self, config: LMConfig, device: torch.device | str | None = None) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model, device=device)
        self.pos_emb = nn.Embedding(config.context, config.d_model, device=device)
        self.blocks = nn.ModuleList(Block(config, device) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model, device=device)
        self.head = nn.Linear(config.d_model, config.vocab_size, bias=False, device=device)
        if config.tied:
            # One parameter seen twice: Module.parameters() yields it once.
            self.head.weight = self.tok_emb.weight

    def forward(self, tokens: Tensor) -> Tensor:
        """Logits (B, T, vocab_size) for token ids (B, T)."""
        length = tokens.size(1)
        positions = torch.arange(length, device=tokens.device)
        x = self.tok_emb(tokens) + self.pos_emb(positions)
        mask = torch.ones(length, length, dtype=torch.bool, device=tokens.device).triu(1)
        for block in self.blocks:
            x = block(x, mask)
        return self.head(self.ln_f(x))


def count_parameters(module: nn.Module) -> int:
    """Number of distinct trainable scalars of ``module`` (a shared tensor counts once).

    Build the module on ``device="meta"`` to count a model too large to allocate.
    """
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


class _LargestTensor(TorchFunctionMode):
    """Records the largest tensor any torch function returns while the mode is active."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        result = func(*args, **(kwargs or {}))
        for item in result if isinstance(result, (tuple, list)) else (result,):
            if isinstance(item, Tensor):
                self.largest = max(self.largest, item.numel())
        return result


def largest_intermediate(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, int]:
    """Call ``fn(*args, **kwargs)``; return its result and the number of entries of the
    largest tensor created by a torch function or tensor operation during the call.

    This shows, for example, whether an attention function ever forms a T x T matrix.
    """
    with _LargestTensor() as mode:
        result = fn(*args, **kwargs)
    return result, mode.largest


def residual_stream_variances(
    init_branch: Callable[[nn.Linear, int, int], None],
    depth: int,
    width: int = 256,
    samples: int = 1024,
    seed: int = 0,
) -> list[float]:
    """Per-coordinate variance of u_0, ..., u_depth in the residual stack
    u_{l+1} = u_l + W_l ReLU(u_l) + b_l at initialisation.

    ``init_branch(linear, layer, depth)`` initialises the ``nn.Linear`` holding W_l and b_l
    in place (layer = l counts from 0). u_0 has ``samples`` rows of independent standard
    normal coordinates. The variance is estimated by the mean of u_l[i]^2 over samples and
    coordinates: over the random initialisation every coordinate has mean zero, while for
    one fixed draw of the weights each coordinate is offset by its own random mean, which
    belongs to the variance. The global random state is left as it was.
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        branches = [nn.Linear(width, width) for _ in range(depth)]
        call_each(init_branch, [(linear, layer, depth) for layer, linear in enumerate(branches)])
        u = torch.randn(samples, width, dtype=torch.float64)
        variances = [u.square().mean().item()]
        for linear in branches:
            u = u + linear.double()(torch.relu(u))
            variances.append(u.square().mean().item())
    return variances
