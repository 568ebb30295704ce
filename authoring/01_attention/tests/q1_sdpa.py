"""Tests for q1_sdpa: scaled_dot_product_attention(query, key, value, mask=None).

Expected values come from PyTorch's F.scaled_dot_product_attention, whose boolean masks mean
"may attend", the opposite of ours.
"""

import torch
import torch.nn.functional as F
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_close, expect_shape

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


@test_case(name="additive float mask, 4-d inputs (batch, heads, T, d)", points=1, hidden=True)
def test_float_mask_4d(scaled_dot_product_attention):
    torch.manual_seed(4)
    q, k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 6)
    additive = torch.randn(5, 7)
    out, weights = scaled_dot_product_attention(q, k, v, additive)
    expect_close(weights, expected_weights(q, k, additive), "weights with a float mask")
    expect_close(out, F.scaled_dot_product_attention(q, k, v, attn_mask=additive), "output")


@test_case(name="float64 inputs stay float64 and exact", points=1, hidden=True)
def test_float64(scaled_dot_product_attention):
    torch.manual_seed(5)
    q, k, v = (torch.randn(3, 6, 16, dtype=torch.float64) for _ in range(3))
    out, weights = scaled_dot_product_attention(q, k, v)
    expect_close(weights, expected_weights(q, k), "float64 weights", atol=1e-12)
    expect_close(out, expected_weights(q, k) @ v, "float64 output", atol=1e-12)


@test_case(
    name="fully masked rows give zeros, no NaN, in outputs and gradients", points=1, hidden=True
)
def test_fully_masked_rows(scaled_dot_product_attention):
    torch.manual_seed(6)
    q, k, v = (torch.randn(1, 3, 4, requires_grad=True) for _ in range(3))
    blocked = torch.tensor([[False, True, True], [True, True, True], [False, False, True]])
    out, weights = scaled_dot_product_attention(q, k, v, blocked)
    expect(not torch.isnan(out).any(), "output contains NaN for a fully masked row")
    expect_close(weights[0, 1], torch.zeros(3), "weights of the fully masked row")
    expect_close(out[0, 1], torch.zeros(4), "output of the fully masked row")
    expect_close(weights[0, 0], torch.tensor([1.0, 0.0, 0.0]), "row that sees only key 0")
    out.sum().backward()
    for tensor, label in ((q, "query"), (k, "key"), (v, "value")):
        expect(not torch.isnan(tensor.grad).any(), f"the gradient of {label} contains NaN")


@test_case(name="gradients pass torch.autograd.gradcheck", points=1, hidden=True)
def test_gradcheck(scaled_dot_product_attention):
    torch.manual_seed(7)
    inputs = tuple(torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    # Fast mode compares a random projection vᵀJu of the Jacobian with finite differences:
    # 8 calls of the function instead of 2 per input entry, each a request to the notebook
    # when graded. A wrong gradient still fails, but for an error orthogonal to both vectors.
    mask = torch.tensor([[False, True, False]] * 3)
    expect(
        torch.autograd.gradcheck(
            lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0],
            inputs,
            raise_exception=False,
            fast_mode=True,
        ),
        "gradcheck failed: the gradients of your output disagree with finite differences",
    )


@test_case(name="each batch element is attended independently", points=1, hidden=True)
def test_batch_independence(scaled_dot_product_attention):
    torch.manual_seed(8)
    q, k, v = torch.randn(4, 5, 8), torch.randn(4, 6, 8), torch.randn(4, 6, 3)
    out, _ = scaled_dot_product_attention(q, k, v)
    alone, _ = scaled_dot_product_attention(q[2:3], k[2:3], v[2:3])
    expect_close(alone[0], out[2], "batch element 2 alone vs in the batch")
