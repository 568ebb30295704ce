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

hidden_points = 4
