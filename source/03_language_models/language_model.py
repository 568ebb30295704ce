"""The language model notebook 3 gives, built from PyTorch's own modules.

Notebook 3 trains a character-level model without relying on a student's notebook-2 answers:
:class:`CausalLM` is token and learned position embeddings, ``torch.nn.TransformerEncoder``
under a causal mask, and a head tied to the token embedding. It is a complete answer to
notebook 2's language model, so it is released beside notebook 3 (not in the ``tfcourse``
package students install on day one); the notebook and its checks import it from here.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfcourse.encoder_config import EncoderConfig, torch_encoder
from tfcourse.optimizer import parameter_groups


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
