"""The hyper-parameters of an encoder stack, and PyTorch's own encoder built from them.

:class:`EncoderConfig` holds every hyper-parameter of notebook 2's encoder and language model
(and of the model notebook 3 gives, ``language_model.CausalLM``, released with notebook 3).

:func:`torch_encoder_layer` and :func:`torch_encoder` build PyTorch's encoder modules for a
configuration; the checks compare the notebook's own modules with them, weight for weight.
:class:`RandomPositions` stands in for a positional encoding in those checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn


@dataclass
class EncoderConfig:
    """Hyper-parameters of an encoder stack and of the causal language model built on it."""

    vocab_size: int = 65
    block_size: int = 128
    """The longest sequence the model accepts (the number of positions it can encode)."""
    n_layer: int = 4
    n_head: int = 4
    d_model: int = 128
    d_ff: int = 512
    """Width of the hidden layer of the feed-forward sub-layer (usually 4 * d_model)."""
    dropout: float = 0.1
    activation: Literal["relu", "gelu"] = "gelu"
    norm_first: bool = True
    """True: pre-norm, x + f(LN(x)). False: post-norm, LN(x + f(x)) (the 2017 original)."""
    positional: Literal["learned", "sinusoidal"] = "learned"
    tie_weights: bool = True
    """Share one matrix between the token embedding and the language-model head."""
    layer_norm_eps: float = 1e-5


def torch_encoder_layer(config: EncoderConfig) -> nn.TransformerEncoderLayer:
    """PyTorch's own encoder layer with the hyper-parameters of ``config`` (batch first)."""
    return nn.TransformerEncoderLayer(
        config.d_model,
        config.n_head,
        config.d_ff,
        config.dropout,
        config.activation,
        config.layer_norm_eps,
        batch_first=True,
        norm_first=config.norm_first,
    )


def torch_encoder(config: EncoderConfig) -> nn.TransformerEncoder:
    """PyTorch's encoder stack of ``config.n_layer`` layers and a final LayerNorm."""
    return nn.TransformerEncoder(
        torch_encoder_layer(config),
        config.n_layer,
        norm=nn.LayerNorm(config.d_model, eps=config.layer_norm_eps),
        enable_nested_tensor=False,
    )


class RandomPositions(nn.Module):
    """Adds a fixed random vector per position to (B, T, d_model) inputs: a stand-in for a
    positional encoding where any table will do (the checks of notebook 2's model use it,
    so that its own encodings are not graded twice)."""

    def __init__(self, config: EncoderConfig, seed: int = 5) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        table = torch.randn(config.block_size, config.d_model, generator=generator)
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, d_model) -> (B, T, d_model)."""
        return x + self.table[: x.size(1)].to(x.dtype)
