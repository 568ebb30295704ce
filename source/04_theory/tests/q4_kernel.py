"""Tests for q4_kernel: kernel_attention(q, k, v, sim) and linear_attention(q, k, v, feature_map).

Expected values come from PyTorch's F.scaled_dot_product_attention, in float64: for softmax
attention directly, for any positive kernel through softmax(log sim) = sim / its row sums.
"""

import math

import torch
import torch.nn.functional as F
from otter.test_files import test_case

from tfcourse.assertions import expect_close

OK_FORMAT = False
name = "q4_kernel"


def exp_similarity(q, k):
    return torch.exp(q @ k.T / math.sqrt(q.size(-1)))


def elu_plus_one(x):
    return F.elu(x) + 1


def kernel_by_softmax(q, k, v, sim):
    """The kernel formula by PyTorch's attention: zero queries and log sim(q, k) added."""
    return F.scaled_dot_product_attention(torch.zeros_like(q), k, v, torch.log(sim(q, k)))


def inputs(t_q, t_k, d, m, seed):
    generator = torch.Generator().manual_seed(seed)
    return tuple(
        torch.randn(rows, cols, dtype=torch.float64, generator=generator)
        for rows, cols in ((t_q, d), (t_k, d), (t_k, m))
    )


@test_case(name="kernel_attention with sim = exp(q·k/√D) equals softmax attention", points=1)
def test_kernel_is_softmax(kernel_attention):
    q, k, v = inputs(5, 5, 4, 3, seed=1)
    expected = F.scaled_dot_product_attention(q, k, v)
    got = kernel_attention(q, k, v, exp_similarity)
    expect_close(got, expected, "kernel_attention(q, k, v, exp_similarity)", atol=1e-10)


@test_case(name="linear_attention with φ = elu + 1 equals the kernel formula", points=1)
def test_linear_matches_kernel(linear_attention):
    q, k, v = inputs(6, 6, 4, 3, seed=2)
    expected = kernel_by_softmax(q, k, v, lambda a, b: elu_plus_one(a) @ elu_plus_one(b).T)
    got = linear_attention(q, k, v, elu_plus_one)
    expect_close(got, expected, "linear_attention(q, k, v, elu_plus_one)", atol=1e-10)

hidden_points = 2
