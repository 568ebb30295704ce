"""Reference transformer encoder and causal language model, in the style of nanoGPT.

One :class:`~tfcourse.encoder_config.EncoderConfig` holds every hyper-parameter; each module
takes it. The pieces:

- :func:`sinusoidal_encoding`, :class:`SinusoidalPositionalEncoding` and
  :class:`LearnedPositionalEncoding`: add position information to (B, T, d_model) inputs;
- :class:`FeedForward`: the position-wise two-layer MLP;
- :class:`EncoderLayer`: self-attention and feed-forward sub-layers with residuals, dropout and
  LayerNorm, post-norm or pre-norm. Its parameter names are those of
  ``torch.nn.TransformerEncoderLayer``, whose ``state_dict`` therefore loads unchanged;
- :class:`Encoder`: a stack of layers and a final LayerNorm, named like
  ``torch.nn.TransformerEncoder(layer, n_layer, norm=nn.LayerNorm(d_model))``;
- :class:`CausalLM`: token and position embeddings, a causally masked encoder and a
  language-model head (optionally tied to the token embedding);
- :func:`parameter_count`: the number of parameters of a :class:`CausalLM`, in closed form.

Masks follow :mod:`tfcourse_instructor.reference.attention`: a boolean mask is True where attention
is blocked.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfcourse.encoder_config import EncoderConfig, torch_encoder
from tfcourse.optimizer import parameter_groups
from tfcourse_instructor.reference.attention import MultiHeadAttention, causal_mask
from tfcourse_instructor.reference.sampling import sample_next_token

ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


def torch_lm_logits(
    state: dict[str, Tensor], config: EncoderConfig, idx: Tensor, positions: Tensor | None = None
) -> Tensor:
    """The logits of a ``CausalLM`` with state dict ``state``, recomputed from PyTorch's
    modules: token embedding + positions -> ``nn.TransformerEncoder`` under a causal mask
    (in eval mode) -> head. The positions are ``positions`` (a (block_size, d_model) table)
    when given, else those of ``config.positional``."""
    length = idx.size(1)
    x = F.embedding(idx, state["token_embedding.weight"])
    if positions is not None:
        x = x + positions[:length]
    elif config.positional == "learned":
        x = x + state["position.embedding.weight"][:length]
    else:
        x = x + sinusoidal_encoding(config.block_size, config.d_model)[:length]
    encoder = torch_encoder(config).eval()
    prefix = "encoder."
    encoder.load_state_dict(
        {key[len(prefix) :]: value for key, value in state.items() if key.startswith(prefix)}
    )
    return F.linear(encoder(x, mask=causal_mask(length)), state["lm_head.weight"])


def sinusoidal_encoding(max_len: int, d_model: int) -> Tensor:
    """The (max_len, d_model) table of Vaswani et al. (2017):
    ``PE[p, 2i] = sin(p / 10000^(2i/d_model))`` and ``PE[p, 2i+1] = cos(p / 10000^(2i/d_model))``.
    """
    position = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)
    # Frequencies fall geometrically from 1 to 1/10000 across the feature pairs.
    frequency = torch.exp(
        torch.arange(0, d_model, 2, dtype=torch.float64) * (-math.log(10000.0) / d_model)
    )
    angle = position * frequency  # (max_len, ceil(d_model / 2)), in float64 for large p
    encoding = torch.zeros(max_len, d_model, dtype=torch.float64)
    encoding[:, 0::2] = torch.sin(angle)
    encoding[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return encoding.to(torch.get_default_dtype())


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table to (B, T, d_model) inputs; it has no parameters."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        # A buffer follows .to(device) but is not trained; it is cheap to rebuild, so it is
        # kept out of the state dict.
        self.register_buffer(
            "pe", sinusoidal_encoding(config.block_size, config.d_model), persistent=False
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, d_model) -> (B, T, d_model), adding the encodings of positions 0..T-1."""
        _check_length(x.size(1), self.pe.size(0))
        return x + self.pe[: x.size(1)].to(x.dtype)


class LearnedPositionalEncoding(nn.Module):
    """Adds a trained vector per position to (B, T, d_model) inputs (GPT-2's ``wpe``)."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.embedding = nn.Embedding(config.block_size, config.d_model)

    def forward(self, x: Tensor) -> Tensor:
        """(B, T, d_model) -> (B, T, d_model), adding the embeddings of positions 0..T-1."""
        _check_length(x.size(1), self.embedding.num_embeddings)
        return x + self.embedding.weight[: x.size(1)]


class FeedForward(nn.Module):
    """Position-wise MLP: ``linear2(dropout(activation(linear1(x))))`` on each position alone.

    (B, T, d_model) -> (B, T, d_model) through a hidden width of ``d_ff``.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.linear1 = nn.Linear(config.d_model, config.d_ff)
        self.activation = ACTIVATIONS[config.activation]
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.d_ff, config.d_model)

    def forward(self, x: Tensor) -> Tensor:
        """(..., d_model) -> (..., d_model)."""
        return self.linear2(self.dropout(self.activation(self.linear1(x))))


class EncoderLayer(nn.Module):
    """One encoder layer; a drop-in for ``nn.TransformerEncoderLayer(batch_first=True)``.

    Post-norm (``norm_first=False``)::

        x = norm1(x + dropout1(self_attn(x)))
        x = norm2(x + dropout2(ff(x)))

    Pre-norm (``norm_first=True``)::

        x = x + dropout1(self_attn(norm1(x)))
        x = x + dropout2(ff(norm2(x)))

    The feed-forward sub-layer is :class:`FeedForward`'s computation, but its modules sit on
    the layer itself (``linear1``, ``dropout``, ``linear2``) so that the parameter names are
    those of ``nn.TransformerEncoderLayer`` and its ``state_dict`` loads as is.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        d_model = config.d_model
        self.norm_first = config.norm_first
        self.self_attn = MultiHeadAttention(d_model, config.n_head, dropout=config.dropout)
        self.linear1 = nn.Linear(d_model, config.d_ff)
        self.dropout = nn.Dropout(config.dropout)
        self.linear2 = nn.Linear(config.d_ff, d_model)
        self.activation = ACTIVATIONS[config.activation]
        self.norm1 = nn.LayerNorm(d_model, eps=config.layer_norm_eps)
        self.norm2 = nn.LayerNorm(d_model, eps=config.layer_norm_eps)
        self.dropout1 = nn.Dropout(config.dropout)
        self.dropout2 = nn.Dropout(config.dropout)

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
    ) -> Tensor:
        """(B, T, d_model) -> (B, T, d_model). ``src_mask`` is (T, T) or (B * n_head, T, T),
        ``src_key_padding_mask`` is (B, T); boolean (True = blocked) or additive float."""
        x = src
        if self.norm_first:
            x = x + self._attention_block(self.norm1(x), src_mask, src_key_padding_mask)
            x = x + self._feed_forward_block(self.norm2(x))
        else:
            x = self.norm1(x + self._attention_block(x, src_mask, src_key_padding_mask))
            x = self.norm2(x + self._feed_forward_block(x))
        return x

    def _attention_block(
        self, x: Tensor, attn_mask: Tensor | None, key_padding_mask: Tensor | None
    ) -> Tensor:
        out, _ = self.self_attn(
            x, x, x, key_padding_mask=key_padding_mask, attn_mask=attn_mask, need_weights=False
        )
        return self.dropout1(out)

    def _feed_forward_block(self, x: Tensor) -> Tensor:
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class Encoder(nn.Module):
    """``n_layer`` encoder layers and a final LayerNorm.

    Named like ``nn.TransformerEncoder(layer, n_layer, norm=nn.LayerNorm(d_model))``. With
    pre-norm the final norm is essential: nothing else normalises the residual stream that
    leaves the last layer. With post-norm it is redundant but harmless.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps)

    def forward(
        self, x: Tensor, mask: Tensor | None = None, src_key_padding_mask: Tensor | None = None
    ) -> Tensor:
        """(B, T, d_model) -> (B, T, d_model); the masks are passed to every layer."""
        for layer in self.layers:
            x = layer(x, mask, src_key_padding_mask)
        return self.norm(x)


class CausalLM(nn.Module):
    """A decoder-only language model: embeddings, a causally masked :class:`Encoder`, a head.

    ``forward(idx)`` maps token ids (B, T) to next-token logits (B, T, vocab_size); the
    output at position t depends on tokens 0..t only.
    """

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        positional = {
            "learned": LearnedPositionalEncoding,
            "sinusoidal": SinusoidalPositionalEncoding,
        }
        self.position = positional[config.positional](config)
        self.drop = nn.Dropout(config.dropout)
        self.encoder = Encoder(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            # One (vocab, d_model) matrix both embeds tokens and scores them as outputs.
            self.lm_head.weight = self.token_embedding.weight
        self.apply(self._init_weights)
        # GPT-2: scale the projections that write into the residual stream by 1/sqrt(2 n_layer),
        # so the stream's variance does not grow with depth at initialisation.
        for name, parameter in self.named_parameters():
            if name.endswith(("self_attn.out_proj.weight", "linear2.weight")):
                nn.init.normal_(parameter, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        elif isinstance(module, MultiHeadAttention):
            nn.init.normal_(module.in_proj_weight, std=0.02)
            if module.in_proj_bias is not None:
                nn.init.zeros_(module.in_proj_bias)

    def forward(self, idx: Tensor, targets: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Token ids (B, T) -> logits (B, T, vocab_size), and the mean cross-entropy against
        ``targets`` (B, T) when given (target -1 is ignored), else None."""
        length = idx.size(1)
        x = self.drop(self.position(self.token_embedding(idx)))
        x = self.encoder(x, mask=causal_mask(length, device=idx.device))
        logits = self.lm_head(x)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-1)
        return logits, loss

    def count_parameters(self, non_embedding: bool = False) -> int:
        """Number of parameters (a tied matrix counts once). ``non_embedding`` leaves out the
        position embedding, as nanoGPT reports; the token embedding stays in when tied, as it
        is also the output layer."""
        total = sum(parameter.numel() for parameter in self.parameters())
        if non_embedding and isinstance(self.position, LearnedPositionalEncoding):
            total -= self.position.embedding.weight.numel()
        return total

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, object]]:
        """Parameter groups for AdamW: decay the matrices, not the biases and LayerNorm gains."""
        return parameter_groups(self, weight_decay)

    @torch.no_grad()
    def generate(
        self,
        idx: Tensor,
        max_new_tokens: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """Extend token ids (B, T) by ``max_new_tokens`` samples; returns (B, T + new).

        Each step feeds the last ``block_size`` tokens, divides the logits of the last position
        by ``temperature`` and samples, from the ``top_k`` most likely tokens when given.
        Call ``eval()`` first to switch dropout off.
        """
        for _ in range(max_new_tokens):
            logits, _ = self(idx[:, -self.config.block_size :])
            next_token = sample_next_token(logits[:, -1, :], temperature, top_k, generator)
            idx = torch.cat([idx, next_token], dim=1)
        return idx


def parameter_count(config: EncoderConfig) -> int:
    """Parameters of ``CausalLM(config)`` in closed form, without building the model."""
    d, f, v = config.d_model, config.d_ff, config.vocab_size
    attention = 4 * d * d + 4 * d  # stacked Q, K, V projections and the output projection
    feed_forward = d * f + f + f * d + d
    layer = attention + feed_forward + 2 * 2 * d  # and two LayerNorms (gain and bias)
    embeddings = v * d + (config.block_size * d if config.positional == "learned" else 0)
    head = 0 if config.tie_weights else v * d
    return embeddings + config.n_layer * layer + 2 * d + head


def _check_length(length: int, max_len: int) -> None:
    if length > max_len:
        raise ValueError(
            f"sequence length {length} exceeds the {max_len} positions the encoding covers "
            "(config.block_size)"
        )
