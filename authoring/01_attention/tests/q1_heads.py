"""Tests for q1_heads: split_heads(x, num_heads) and merge_heads(x)."""

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect_close, expect_shape

OK_FORMAT = False
name = "q1_heads"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


@test_case(
    name="split_heads: (2, 3, 8) with 4 heads -> (2, 4, 3, 2), head h has features 2h, 2h+1",
    points=1,
)
def test_split(split_heads):
    x = torch.arange(2 * 3 * 8.0).view(2, 3, 8)
    heads = split_heads(x, 4)
    expect_shape(heads, (2, 4, 3, 2), "split_heads(x, 4)")
    for h in range(4):
        expect_close(heads[:, h], x[:, :, 2 * h : 2 * h + 2], f"head {h} of split_heads(x, 4)")


@test_case(name="merge_heads inverts split_heads", points=1)
def test_round_trip(split_heads, merge_heads):
    x = torch.randn(3, 5, 12)
    merged = merge_heads(split_heads(x, 3))
    expect_shape(merged, (3, 5, 12), "merge_heads(split_heads(x, 3))")
    expect_close(merged, x, "merge_heads(split_heads(x, 3))", atol=0.0)


@test_case(
    name="merge_heads keeps head-major feature order, also for non-contiguous inputs",
    points=1,
    hidden=True,
)
def test_merge_layout(merge_heads):
    x = torch.randn(2, 6, 4, 1)
    merged = merge_heads(x)
    expect_close(merged, x.squeeze(-1).transpose(1, 2), "merge_heads with head size 1", atol=0.0)
    y = torch.randn(2, 5, 3, 4).transpose(1, 2)  # (2, 3, 5, 4), non-contiguous
    expected = torch.cat([y[:, h] for h in range(3)], dim=-1)
    expect_close(merge_heads(y), expected, "merge_heads of a transposed tensor", atol=0.0)
