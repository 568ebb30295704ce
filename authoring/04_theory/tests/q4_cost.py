"""Tests for q4_cost: attention_multiplications(T, D, M) and attention_memory(T, D, M).

Expected values are measured, not written down: PyTorch's FlopCounterMode counts the
floating-point operations of softmax(QKᵀ/√D)V run on real tensors (a matrix product of
sizes (m, k) and (k, n) counts 2·m·k·n operations, one multiplication and one addition per
term), and the memory is read off the tensors that computation creates.
"""

import math

import torch
from otter.test_files import test_case
from torch.utils.flop_counter import FlopCounterMode

from tfcourse.assertions import expect_number

OK_FORMAT = False
name = "q4_cost"


def measured(T, D, M):
    """(multiplications in the two matrix products, floats of weights + output)."""
    q, k, v = torch.randn(T, D), torch.randn(T, D), torch.randn(T, M)
    with FlopCounterMode(display=False) as counter:
        weights = torch.softmax(q @ k.T / math.sqrt(D), dim=-1)
        out = weights @ v
    return counter.get_total_flops() // 2, weights.numel() + out.numel()


def check(function, label, index, sizes):
    for T, D, M in sizes:
        got = function(T, D, M)
        expected = measured(T, D, M)[index]
        expect_number(got, expected, f"{label}(T={T}, D={D}, M={M})")


@test_case(name="attention_multiplications(T=4, D=3, M=2)", points=1)
def test_multiplications_small(attention_multiplications):
    check(attention_multiplications, "attention_multiplications", 0, [(4, 3, 2)])


@test_case(name="attention_memory(T=4, D=3, M=2)", points=1)
def test_memory_small(attention_memory):
    check(attention_memory, "attention_memory", 1, [(4, 3, 2)])


@test_case(
    name="attention_multiplications on five other sizes, T from 1 to 512", points=2, hidden=True
)
def test_multiplications_grid(attention_multiplications):
    sizes = [(1, 1, 1), (7, 5, 3), (16, 64, 8), (100, 8, 64), (512, 32, 48)]
    check(attention_multiplications, "attention_multiplications", 0, sizes)


@test_case(name="attention_memory on five other sizes, T from 1 to 512", points=1, hidden=True)
def test_memory_grid(attention_memory):
    sizes = [(1, 1, 1), (7, 5, 3), (16, 64, 8), (100, 8, 64), (512, 32, 48)]
    check(attention_memory, "attention_memory", 1, sizes)
