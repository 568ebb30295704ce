"""Tests for q1_masks: causal_mask(size, device=None) and padding_mask(lengths, max_len)."""

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_shape

OK_FORMAT = False
name = "q1_masks"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.Transformer.generate_square_subsequent_mask",
    "tfcourse_instructor.reference",
]


def describe(mask):
    return "\n" + str(mask.int()) if isinstance(mask, torch.Tensor) else repr(mask)


@test_case(name="causal_mask(4): boolean, True exactly above the diagonal", points=1)
def test_causal_small(causal_mask):
    mask = causal_mask(4)
    expect_shape(mask, (4, 4), "causal_mask(4)")
    expect(mask.dtype == torch.bool, f"causal_mask(4): expected dtype torch.bool, got {mask.dtype}")
    expected = torch.tensor([[j > i for j in range(4)] for i in range(4)])
    expect(
        torch.equal(mask, expected),
        f"causal_mask(4): expected{describe(expected)}\ngot{describe(mask)}",
    )


@test_case(name="padding_mask([3, 1], 4): True at padded positions", points=1)
def test_padding_small(padding_mask):
    mask = padding_mask(torch.tensor([3, 1]), 4)
    expected = torch.tensor([[False, False, False, True], [False, True, True, True]])
    expect_shape(mask, (2, 4), "padding_mask")
    expect(mask.dtype == torch.bool, f"padding_mask: expected dtype torch.bool, got {mask.dtype}")
    expect(
        torch.equal(mask, expected),
        f"padding_mask: expected{describe(expected)}\ngot{describe(mask)}",
    )


@test_case(name="causal_mask for sizes 1 and 33", points=1, hidden=True)
def test_causal_sizes(causal_mask):
    for size in (1, 33):
        mask = causal_mask(size)
        rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
        expect(torch.equal(mask, cols > rows), f"causal_mask({size}) is wrong")


@test_case(name="padding_mask: full-length and zero-length sequences", points=1, hidden=True)
def test_padding_edges(padding_mask):
    mask = padding_mask(torch.tensor([5, 0, 2]), 5)
    expected = torch.arange(5)[None, :] >= torch.tensor([5, 0, 2])[:, None]
    expect(torch.equal(mask, expected), f"padding_mask([5, 0, 2], 5): got{describe(mask)}")
