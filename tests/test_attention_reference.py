"""The reference attention in tfcourse_instructor.reference.attention matches
torch.nn.MultiheadAttention."""

import pytest
import torch
from torch import nn

from tfcourse_instructor.reference.attention import (
    MultiHeadAttention,
    causal_mask,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)


def twins(embed_dim, num_heads, bias=True, dtype=torch.float32):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(
        embed_dim, num_heads, bias=bias, batch_first=True, dtype=dtype
    )
    if bias:
        with torch.no_grad():
            reference.in_proj_bias.normal_()
            reference.out_proj.bias.normal_()
    ours = MultiHeadAttention(embed_dim, num_heads, bias=bias).to(dtype)
    ours.load_state_dict(reference.state_dict())
    return ours, reference


MASKS = {
    "none": {},
    "causal": {"attn_mask": causal_mask(6)},
    "float": {"attn_mask": torch.randn(6, 6)},
    "padding": {"key_padding_mask": padding_mask(torch.tensor([6, 3]), 6)},
    "causal and padding": {
        "attn_mask": causal_mask(6),
        "key_padding_mask": padding_mask(torch.tensor([6, 3]), 6),
    },
    "per-head 3-d float": {"attn_mask": torch.randn(2 * 4, 6, 6)},
}


@pytest.mark.parametrize("masks", MASKS.values(), ids=MASKS.keys())
@pytest.mark.parametrize("average", [True, False])
def test_self_attention_matches_torch_within_1e5(masks, average):
    ours, reference = twins(16, 4)
    x = torch.randn(2, 6, 16)
    out, weights = ours(x, x, x, **masks, average_attn_weights=average)
    expected, expected_weights = reference(x, x, x, **masks, average_attn_weights=average)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=0)


def test_cross_attention_matches_torch_within_1e5():
    ours, reference = twins(24, 3)
    query, memory = torch.randn(2, 4, 24), torch.randn(2, 7, 24)
    padded = padding_mask(torch.tensor([7, 2]), 7)
    out, weights = ours(query, memory, memory, key_padding_mask=padded)
    expected, expected_weights = reference(query, memory, memory, key_padding_mask=padded)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights, expected_weights, atol=1e-5, rtol=0)


def test_float64_no_bias_and_no_weights():
    ours, reference = twins(12, 3, bias=False, dtype=torch.float64)
    x = torch.randn(2, 4, 12, dtype=torch.float64)
    out, weights = ours(x, x, x, need_weights=False)
    assert weights is None
    torch.testing.assert_close(out, reference(x, x, x)[0], atol=1e-12, rtol=0)


def test_fully_masked_row_is_zero_and_gradients_are_finite():
    q, k, v = (torch.randn(1, 3, 4, requires_grad=True) for _ in range(3))
    blocked = torch.tensor([[False, True, True], [True, True, True], [False, False, True]])
    out, weights = scaled_dot_product_attention(q, k, v, blocked)
    assert torch.equal(weights[0, 1], torch.zeros(3))
    assert torch.equal(out[0, 1], torch.zeros(4))
    out.sum().backward()
    assert all(torch.isfinite(t.grad).all() for t in (q, k, v))


def test_gradcheck():
    inputs = tuple(torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(
        lambda q, k, v: scaled_dot_product_attention(q, k, v)[0], inputs
    )


def test_masks_and_heads():
    assert torch.equal(causal_mask(3), torch.tensor([[0, 1, 1], [0, 0, 1], [0, 0, 0]]).bool())
    assert torch.equal(
        padding_mask(torch.tensor([2, 0]), 3), torch.tensor([[0, 0, 1], [1, 1, 1]]).bool()
    )
    x = torch.randn(2, 5, 12)
    assert split_heads(x, 3).shape == (2, 3, 5, 4)
    assert torch.equal(split_heads(x, 3)[:, 1], x[:, :, 4:8])
    assert torch.equal(merge_heads(split_heads(x, 3)), x)


def test_rejects_indivisible_width():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(10, 3)
