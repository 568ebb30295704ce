"""Tests for q5_flops: measure_flops(query, key, value, mask=None) -> (forward, backward).

Expected counts are those of FlopCounterMode: the sizes of the matrix products in the public
cases, a measurement of the reference attention on the tests' own copies of the inputs in the
hidden ones (forward, and backward from an all-ones output gradient). They also
check the student's backward: one that calls autograd, recomputes the forward or builds the
softmax Jacobian costs more than the four matrix products of the formulas.
"""

import math

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_number

OK_FORMAT = False
name = "q5_flops"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def product_flops(query, key, value, mask):
    """FlopCounterMode counts 2·m·k·n for an (m, k) @ (k, n) product and nothing else here:
    the forward's two products (QKᵀ and PV) and the backward's four (dQ, dK, dP, dV), whose
    sizes pair up with the forward's, so the backward counts twice the forward."""
    batch = math.prod(query.shape[:-2])
    t_q, t_k, d, d_v = query.size(-2), key.size(-2), query.size(-1), value.size(-1)
    forward = 2 * batch * t_q * t_k * (d + d_v)
    return forward, 2 * forward


def check(measure_flops, shapes, mask, seed, which, expected_flops):
    generator = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(*shape, generator=generator) for shape in shapes)
    expected = expected_flops(q, k, v, mask)
    got = measure_flops(q.clone(), k.clone(), v.clone(), None if mask is None else mask.clone())
    expect(
        isinstance(got, tuple | list) and len(got) == 2,
        f"expected a pair (forward_flops, backward_flops), got {got!r}",
    )
    call = f"measure_flops on shapes {shapes}" + (" with a mask" if mask is not None else "")
    for index in which:
        label = ("forward", "backward")[index]
        expect_number(got[index], expected[index], f"{call}: {label} FLOPs")


@test_case(name="forward FLOPs of (2, 8, 16) inputs", points=1)
def test_forward(measure_flops):
    check(measure_flops, [(2, 8, 16)] * 3, None, 1, [0], product_flops)


@test_case(name="backward FLOPs of (2, 8, 16) inputs: twice the forward", points=1)
def test_backward(measure_flops):
    check(measure_flops, [(2, 8, 16)] * 3, None, 2, [1], product_flops)

hidden_points = 1
