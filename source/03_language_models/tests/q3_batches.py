"""Tests for q3_batches: split_data(data, train_fraction) and
get_batch(data, block_size, batch_size, generator) -> (x, y)."""

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_shape

OK_FORMAT = False
name = "q3_batches"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def windows_of(data, x):
    """The starts and (block_size + 1)-long windows of data that the rows of x begin, found by
    value: data holds distinct values, so a row's first value gives its start."""
    position = {int(value): index for index, value in enumerate(data)}
    starts = torch.tensor([position[int(first)] for first in x[:, 0]])
    return starts, data[starts[:, None] + torch.arange(x.size(1) + 1)]


@test_case(name="split_data: the first 90% trains, the rest validates, in order", points=1)
def test_split(split_data):
    data = torch.arange(105) * 2
    train, val = split_data(data, 0.9)
    expect(
        len(train) == 94,
        f"split_data of 105 ids at 0.9: expected 94 training ids, got {len(train)}",
    )
    expect(
        torch.equal(torch.cat([train, val]), data),
        "training then validation ids should give back the data, in order",
    )


@test_case(
    name="get_batch: x and y (batch_size, block_size), long; y is x shifted by one in the data",
    points=2,
)
def test_shift(get_batch):
    data = torch.arange(200) * 3
    x, y = get_batch(data, 8, 5, torch.Generator().manual_seed(0))
    expect_shape(x, (5, 8), "x")
    expect_shape(y, (5, 8), "y")
    expect(x.dtype == torch.long and y.dtype == torch.long, f"dtypes: got {x.dtype}, {y.dtype}")
    _, windows = windows_of(data, x)
    expect(
        torch.equal(x, windows[:, :-1]),
        f"each row of x should be 8 consecutive ids of data; got x[0] = {x[0].tolist()}",
    )
    expect(
        torch.equal(y, windows[:, 1:]),
        f"y should be x shifted by one position: for x[0] = {x[0].tolist()} expected "
        f"y[0] = {windows[0, 1:].tolist()}, got {y[0].tolist()}",
    )

hidden_points = 2
