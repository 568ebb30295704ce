"""The language model the notebooks give students, built from PyTorch's own modules.

Notebook 3 trains a character-level model without relying on a student's notebook-2 answers:
:class:`CausalLM` is token and learned position embeddings, ``torch.nn.TransformerEncoder``
under a causal mask, and a head tied to the token embedding. :class:`EncoderConfig` holds
every hyper-parameter (the notebook-2 model takes the same one).

:func:`torch_encoder_layer` and :func:`torch_encoder` build PyTorch's encoder modules for a
configuration; the checks compare the notebook's own modules with them, weight for weight.
:class:`RandomPositions` stands in for a positional encoding in those checks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfcourse.optimizer import parameter_groups


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


class CausalLM(nn.Module):
    """A decoder-only language model on ``nn.TransformerEncoder``, with learned positions.

    ``forward(idx, targets=None)`` maps token ids (B, T), T <= block_size, to next-token
    logits (B, T, vocab_size), and to the mean cross-entropy against ``targets`` (B, T) when
    given (else None). The logits at position t depend on tokens 0..t only.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        if config.positional != "learned":
            raise ValueError(f"this model learns positions; got positional={config.positional!r}")
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.position_embedding = nn.Embedding(config.block_size, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = torch_encoder(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.token_embedding.weight
        self._init_weights(config.n_layer)

    def _init_weights(self, n_layer: int) -> None:
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases, and the projections that
        write into the residual stream scaled by 1/sqrt(2 n_layer), so that the stream's
        variance does not grow with depth."""
        for name, parameter in self.named_parameters():
            if parameter.dim() < 2:
                if name.endswith("bias"):
                    nn.init.zeros_(parameter)
                continue
            std = 0.02
            if name.endswith(("self_attn.out_proj.weight", "linear2.weight")):
                std /= math.sqrt(2 * n_layer)
            nn.init.normal_(parameter, std=std)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Logits (B, T, vocab_size) and the loss against ``targets`` (or None)."""
        length = idx.size(1)
        if length > self.config.block_size:
            raise ValueError(f"{length} tokens exceed block_size {self.config.block_size}")
        where = torch.arange(length, device=idx.device)
        hidden = self.drop(self.token_embedding(idx) + self.position_embedding(where))
        future = nn.Transformer.generate_square_subsequent_mask(length, device=idx.device)
        logits = self.lm_head(self.encoder(hidden, mask=future))
        if targets is None:
            return logits, None
        return logits, F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1))

    def count_parameters(self) -> int:
        """Number of parameters (a tied matrix counts once)."""
        return sum(parameter.numel() for parameter in self.parameters())

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, object]]:
        """Parameter groups for AdamW: decay the matrices, not the biases and LayerNorm gains."""
        return parameter_groups(self, weight_decay)
