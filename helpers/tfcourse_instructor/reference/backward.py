"""Attention whose backward pass is written by hand, and the FLOPs each pass costs."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode


def masked_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None
) -> Tensor:
    """softmax(QKᵀ/√d + M)V with plain autograd; a boolean mask is True where blocked, a float
    mask is added. A query whose keys are all blocked gets zeros (where PyTorch's own
    attention gives NaN): the expected values of the tests."""
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if mask is not None:
        blocked = mask if mask.dtype == torch.bool else None
        scores = scores + mask if blocked is None else scores.masked_fill(blocked, float("-inf"))
    blocked = torch.isneginf(scores).all(dim=-1, keepdim=True)
    weights = torch.softmax(scores.masked_fill(blocked, 0.0), dim=-1).masked_fill(blocked, 0.0)
    return weights @ value


class AttentionFunction(torch.autograd.Function):
    """softmax(QKᵀ/√d)V, boolean mask True where blocked; backward by the chain rule."""

    @staticmethod
    def forward(ctx: Any, query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None) -> Tensor:
        scale = 1.0 / math.sqrt(query.size(-1))
        scores = query @ key.transpose(-2, -1) * scale
        if mask is not None:
            scores = scores.masked_fill(mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        ctx.save_for_backward(query, key, value, weights)
        ctx.scale = scale
        return weights @ value

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, Tensor, Tensor, None]:
        query, key, value, weights = ctx.saved_tensors
        grad_value = weights.transpose(-2, -1) @ grad_output
        grad_weights = grad_output @ value.transpose(-2, -1)
        # The softmax Jacobian diag(p) - ppᵀ applied to each row without forming it:
        # (diag(p) - ppᵀ)g = p ⊙ (g - ⟨p, g⟩).
        inner = (grad_weights * weights).sum(dim=-1, keepdim=True)
        grad_scores = weights * (grad_weights - inner) * ctx.scale
        return grad_scores @ key, grad_scores.transpose(-2, -1) @ query, grad_value, None


def attention_manual(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None
) -> Tensor:
    """Attention through :class:`AttentionFunction`: output (..., T_q, d_v)."""
    return AttentionFunction.apply(query, key, value, mask)


def measure_flops(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None
) -> tuple[int, int]:
    """FLOPs counted by FlopCounterMode in the forward of :func:`attention_manual` and in its
    backward from an all-ones output gradient: ``(forward, backward)``."""
    inputs = [tensor.detach().requires_grad_() for tensor in (query, key, value)]
    with FlopCounterMode(display=False) as forward:
        output = attention_manual(*inputs, mask)
    with FlopCounterMode(display=False) as backward:
        output.backward(torch.ones_like(output))
    return forward.get_total_flops(), backward.get_total_flops()
