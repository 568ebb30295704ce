"""Tests for q6_rope: apply_rotary(x, positions, base=10000.0) -> x rotated, same shape.

Public cases use sizes whose rotation is written out by the task: with D = 2 one pair turns
by the position itself (θ_0 = 1); with D = 4 the second pair turns by base^(-1/2) per
position, and pairs are (x_0, x_2), (x_1, x_3). They also check that scores depend only on
the offset of positions and that position 0 changes nothing. Hidden cases compare with the
instructor's reference: 4-d inputs, float64, positions in the thousands, another base.
"""

import math

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_close
from tfcourse_instructor.reference.rotary import apply_rotary as reference_rotary

OK_FORMAT = False
name = "q6_rope"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


@test_case(name="D = 2: the pair (x_0, x_1) turns by the angle m at position m", points=1)
def test_one_pair(apply_rotary):
    positions = torch.arange(5)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [1.0, 1.0], [-1.0, 3.0]])
    angles = positions.double()
    cos, sin = angles.cos().float(), angles.sin().float()
    expected = torch.stack([x[:, 0] * cos - x[:, 1] * sin, x[:, 0] * sin + x[:, 1] * cos], -1)
    expect_close(apply_rotary(x.clone(), positions.clone()), expected,
                 "apply_rotary(x (5, 2), positions 0..4)")


@test_case(name="D = 4: pairs (x_0, x_2) and (x_1, x_3), angles m and m / 100", points=1)
def test_pairs(apply_rotary):
    m = 3
    slow = m * 10000.0 ** (-2 * 1 / 4)
    x = torch.eye(4)  # row j is the unit vector e_j, all at position m
    expected = torch.tensor([
        [math.cos(m), 0.0, math.sin(m), 0.0],
        [0.0, math.cos(slow), 0.0, math.sin(slow)],
        [-math.sin(m), 0.0, math.cos(m), 0.0],
        [0.0, -math.sin(slow), 0.0, math.cos(slow)],
    ])
    got = torch.stack([apply_rotary(x[j : j + 1].clone(), torch.tensor([m]))[0] for j in range(4)])
    expect_close(got, expected, "apply_rotary(e_j (1, 4), position 3) for j = 0..3")


@test_case(name="(2, 3, 6, 8): shape and dtype kept, position 0 unchanged, norms kept", points=1)
def test_shape_identity(apply_rotary):
    x = torch.randn(2, 3, 6, 8, generator=torch.Generator().manual_seed(1))
    expect_close(apply_rotary(x.clone(), torch.zeros(6, dtype=torch.long)), x,
                 "apply_rotary(x, all positions 0)")
    got = apply_rotary(x.clone(), torch.arange(6))
    expect_close(got.norm(dim=-1), x.norm(dim=-1), "norms of the rotated rows")


@test_case(name="scores depend only on the offset: q at m, k at n vs at m + 7, n + 7", points=1)
def test_relative(apply_rotary):
    generator = torch.Generator().manual_seed(2)
    q, k = torch.randn(10, 16, generator=generator), torch.randn(10, 16, generator=generator)
    m, n = torch.arange(10), torch.arange(10).flip(0)
    base = apply_rotary(q.clone(), m) @ apply_rotary(k.clone(), n).T
    shifted = apply_rotary(q.clone(), m + 7) @ apply_rotary(k.clone(), n + 7).T
    expect_close(shifted, base, "scores after shifting every position by 7", atol=1e-4)
    plain = q @ k.T
    expect(not torch.allclose(base, plain, atol=1e-3), "the scores must change with the positions")


def check(apply_rotary, expected_rotary, shape, positions, dtype, base, seed):
    x = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    expected = expected_rotary(x.clone(), positions.clone(), base)
    kwargs = {} if base == 10000.0 else {"base": base}
    got = apply_rotary(x.clone(), positions.clone(), **kwargs)
    expect_close(got, expected, f"apply_rotary(x {tuple(shape)} {dtype}, positions "
                                f"{positions[0].item()}..{positions[-1].item()}, base {base})")


@test_case(name="(2, 4, 9, 32) float32 at positions 5..13, base 10000", points=1, hidden=True)
def test_reference(apply_rotary):
    check(apply_rotary, reference_rotary, (2, 4, 9, 32), torch.arange(5, 14), torch.float32, 10000.0, 3)


@test_case(name="float64 at positions 3000..3015, and base 500", points=1, hidden=True)
def test_long_float64(apply_rotary):
    check(apply_rotary, reference_rotary, (3, 16, 64), torch.arange(3000, 3016), torch.float64, 10000.0, 4)
    check(apply_rotary, reference_rotary, (5, 6), torch.tensor([0, 9, 2, 40, 7]), torch.float64, 500.0, 5)
