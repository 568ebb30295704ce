"""Tests for q2_positional: sinusoidal_encoding(max_len, d_model), SinusoidalPositionalEncoding
and LearnedPositionalEncoding (both take an EncoderConfig and map (B, T, d_model) inputs to
(B, T, d_model)).

Expected tables are computed entry by entry from the formula with Python's math in float64.
The modules are given the test's own tables (the formula's, random learned positions) before
they run, so that what they hold, which the notebook reports, decides nothing.
"""

import math

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_close, expect_shape

OK_FORMAT = False
name = "q2_positional"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def formula(max_len, d_model):
    """Entry (p, i) is sin(p / 10000^(i/d)) for even i; odd i = j + 1 has the cos of that angle."""
    rows = []
    for p in range(max_len):
        row = []
        for i in range(0, d_model, 2):
            angle = p / 10000 ** (i / d_model)
            row += [math.sin(angle), math.cos(angle)]
        rows.append(row)
    return torch.tensor(rows, dtype=torch.float64)


@test_case(
    name="sinusoidal_encoding(50, 16): shape (50, 16), float32, the sin/cos formula", points=1
)
def test_sinusoidal_small(sinusoidal_encoding):
    table = sinusoidal_encoding(50, 16)
    expect_shape(table, (50, 16), "sinusoidal_encoding(50, 16)")
    expect(
        table.dtype == torch.float32,
        f"sinusoidal_encoding(50, 16): expected dtype torch.float32, got {table.dtype}",
    )
    expect_close(table, formula(50, 16).float(), "sinusoidal_encoding(50, 16)")


@test_case(
    name="both positional modules add the encodings of positions 0..T-1 to a (2, 10, 16) input",
    points=1,
)
def test_modules_add(EncoderConfig, SinusoidalPositionalEncoding, LearnedPositionalEncoding):
    torch.manual_seed(0)
    config = EncoderConfig(d_model=16, block_size=32)
    x = torch.randn(2, 10, 16)
    table, positions = formula(32, 16).float(), torch.randn(32, 16)
    sinusoidal = SinusoidalPositionalEncoding(config)
    sinusoidal.pe = table
    out = sinusoidal(x)
    expect_shape(out, (2, 10, 16), "SinusoidalPositionalEncoding output")
    expect_close(out, x + table[:10], "SinusoidalPositionalEncoding(x)")
    learned = LearnedPositionalEncoding(config)
    learned.embedding.load_state_dict({"weight": positions})
    out = learned(x)
    expect_shape(out, (2, 10, 16), "LearnedPositionalEncoding output")
    expect_close(out, x + positions[:10], "LearnedPositionalEncoding(x)")

hidden_points = 2
