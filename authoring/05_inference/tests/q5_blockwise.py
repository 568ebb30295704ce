"""Tests for q5_blockwise: blockwise_attention(query, key, value, mask=None, block_size=64).

Expected outputs come, on the tests' own copies of the inputs, from PyTorch's own attention in
the public cases and from the plain formula in the hidden ones
(the instructor's reference, zeros for a fully blocked query); float32
within 1e-5.
"""

import torch
import torch.nn.functional as F
from otter.test_files import test_case

from tfcourse.assertions import expect_close
from tfcourse_instructor.reference.backward import masked_attention

OK_FORMAT = False
name = "q5_blockwise"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.functional.scaled_dot_product_attention",
    "torch._C._nn.scaled_dot_product_attention",
    "torch.nn.MultiheadAttention",
    "torch.nn.functional.multi_head_attention_forward",
    "tfcourse_instructor.reference",
]


def pytorch_attention(query, key, value, mask):
    """PyTorch's attention; its boolean masks are True where attention is allowed."""
    return F.scaled_dot_product_attention(query, key, value, None if mask is None else ~mask)


def check(blockwise_attention, shapes, mask, block_size, seed, what, expected, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(*shape, generator=generator, dtype=dtype) for shape in shapes)
    got = blockwise_attention(
        q.clone(), k.clone(), v.clone(), None if mask is None else mask.clone(), block_size
    )
    atol = 1e-12 if dtype == torch.float64 else 1e-5
    expect_close(got, expected(q, k, v, mask), f"{what} (block_size={block_size})", atol)


@test_case(name="no mask, T_k a multiple of block_size: (2, 16, 8) with blocks of 4", points=1)
def test_no_mask(blockwise_attention):
    check(blockwise_attention, [(2, 16, 8)] * 3, None, 4, 1, "no mask", pytorch_attention)


@test_case(name="boolean causal mask, last block shorter: T = 10, blocks of 4", points=1)
def test_causal(blockwise_attention):
    causal = torch.ones(10, 10, dtype=torch.bool).triu(1)
    shapes = [(2, 10, 8), (2, 10, 8), (2, 10, 5)]
    check(blockwise_attention, shapes, causal, 4, 2, "causal", pytorch_attention)


@test_case(name="additive float mask, 4-d inputs, T_q ≠ T_k", points=1, hidden=True)
def test_additive(blockwise_attention):
    additive = torch.randn(5, 11, generator=torch.Generator().manual_seed(30))
    additive[:, 3] = float("-inf")
    shapes = [(2, 3, 5, 8), (2, 3, 11, 8), (2, 3, 11, 6)]
    check(blockwise_attention, shapes, additive, 3, 3, "additive mask", masked_attention)


@test_case(name="key padding mask (B, 1, 1, T), padding on the left: whole blocks blocked",
           points=1, hidden=True)
def test_left_padding(blockwise_attention):
    lengths = torch.tensor([9, 3])
    padding = torch.arange(9)[None, :] < (9 - lengths)[:, None]  # True = padding, on the left
    padding = padding[:, None, None, :]
    check(blockwise_attention, [(2, 2, 9, 4)] * 3, padding, 2, 4, "padding", masked_attention)


@test_case(name="fully blocked rows give zeros, not NaN", points=1, hidden=True)
def test_fully_blocked_rows(blockwise_attention):
    mask = torch.ones(6, 6, dtype=torch.bool).triu(1)
    mask[2] = True
    mask[5] = True
    check(blockwise_attention, [(1, 6, 4)] * 3, mask, 2, 5, "blocked rows", masked_attention)


@test_case(name="block sizes 1 and larger than T; float64 within 1e-12", points=1, hidden=True)
def test_block_sizes(blockwise_attention):
    causal = torch.ones(7, 7, dtype=torch.bool).triu(1)
    for block_size in (1, 7, 64):
        check(blockwise_attention, [(3, 7, 4)] * 3, causal, block_size, 6, "causal", masked_attention)
    shapes = [(2, 20, 8)] * 3
    check(blockwise_attention, shapes, None, 6, 7, "float64", masked_attention, torch.float64)
    # Every score of row 3 lies near -1000, where exp underflows to 0 unless the running
    # maximum starts at -inf: the row's weights are those of the unshifted scores.
    shifted = torch.zeros(20, 20, dtype=torch.float64)
    shifted[3] = -1000.0
    check(blockwise_attention, shapes, shifted, 6, 8, "a row near -1000", masked_attention,
          torch.float64)
