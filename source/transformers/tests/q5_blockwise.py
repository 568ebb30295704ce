"""Tests for q5_blockwise: blockwise_attention(query, key, value, mask=None, block_size=64).

Expected outputs come from the plain formula (tfcourse.reference.backward.masked_attention,
zeros for a fully blocked query) on the tests' own copies of the inputs; float32 within 1e-5.
"""

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect_close
from tfcourse.reference.backward import masked_attention

OK_FORMAT = False
name = "q5_blockwise"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.functional.scaled_dot_product_attention",
    "torch._C._nn.scaled_dot_product_attention",
    "torch.nn.MultiheadAttention",
    "torch.nn.functional.multi_head_attention_forward",
    "tfcourse.reference",
]


def check(blockwise_attention, shapes, mask, block_size, seed, what, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(*shape, generator=generator, dtype=dtype) for shape in shapes)
    got = blockwise_attention(
        q.clone(), k.clone(), v.clone(), None if mask is None else mask.clone(), block_size
    )
    atol = 1e-12 if dtype == torch.float64 else 1e-5
    expect_close(got, masked_attention(q, k, v, mask), f"{what} (block_size={block_size})", atol)


@test_case(name="no mask, T_k a multiple of block_size: (2, 16, 8) with blocks of 4", points=1)
def test_no_mask(blockwise_attention):
    check(blockwise_attention, [(2, 16, 8)] * 3, None, 4, 1, "output without a mask")


@test_case(name="boolean causal mask, last block shorter: T = 10, blocks of 4", points=1)
def test_causal(blockwise_attention):
    causal = torch.ones(10, 10, dtype=torch.bool).triu(1)
    check(blockwise_attention, [(2, 10, 8), (2, 10, 8), (2, 10, 5)], causal, 4, 2, "causal")

hidden_points = 4
