"""Tests for q1_sdpa: scaled_dot_product_attention(query, key, value, mask=None).

Expected values come from PyTorch's F.scaled_dot_product_attention, whose boolean masks mean
"may attend", the opposite of ours.
"""

import torch
import torch.nn.functional as F
from otter.test_files import test_case

from tfcourse.assertions import expect_close, expect_shape

OK_FORMAT = False
name = "q1_sdpa"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.functional.scaled_dot_product_attention",
    "torch._C._nn.scaled_dot_product_attention",
    "torch.nn.MultiheadAttention",
    "torch.nn.functional.multi_head_attention_forward",
    "tfcourse.encoder_config",
    "tfcourse_instructor.reference",
]


def expected_weights(query, key, mask=None):
    """PyTorch's attention applied to identity values returns the attention weights."""
    identity = torch.eye(key.size(-2), dtype=key.dtype).expand(*key.shape[:-1], key.size(-2))
    if mask is not None and mask.dtype == torch.bool:
        mask = ~mask  # F.scaled_dot_product_attention: True = may attend
    return F.scaled_dot_product_attention(query, key, identity, attn_mask=mask)


@test_case(name="shapes of output (2, 3, 5) and weights (2, 3, 4)", points=1)
def test_shapes(scaled_dot_product_attention):
    torch.manual_seed(1)
    out, weights = scaled_dot_product_attention(
        torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 5)
    )
    expect_shape(out, (2, 3, 5), "output")
    expect_shape(weights, (2, 3, 4), "weights")


@test_case(name="values match softmax(QKᵀ/√d_k)V without a mask", points=1)
def test_values(scaled_dot_product_attention):
    torch.manual_seed(2)
    q, k, v = torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 5)
    out, weights = scaled_dot_product_attention(q, k, v)
    expect_close(weights, expected_weights(q, k), "weights")
    expect_close(out, F.scaled_dot_product_attention(q, k, v), "output")


@test_case(name="a boolean causal mask (True = blocked)", points=1)
def test_bool_mask(scaled_dot_product_attention):
    torch.manual_seed(3)
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 4, 8), torch.randn(2, 4, 6)
    blocked = torch.ones(4, 4, dtype=torch.bool).triu(1)
    out, weights = scaled_dot_product_attention(q, k, v, blocked)
    expect_close(weights, expected_weights(q, k, blocked), "weights with a causal mask")
    expect_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=~blocked), "output")

hidden_points = 5
