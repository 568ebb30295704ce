"""Tests for q4_kernel: kernel_attention(q, k, v, sim) and linear_attention(q, k, v, feature_map).

Expected values come from PyTorch's F.scaled_dot_product_attention, in float64: for softmax
attention directly, for any positive kernel through softmax(log sim) = sim / its row sums.
"""

import math

import torch
import torch.nn.functional as F
from otter.test_files import test_case

from tfcourse.assertions import call_beside, expect, expect_close
from tfcourse.theory import largest_intermediate

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


@test_case(
    name="other kernels and feature maps; T_q ≠ T_k; float32 stays float32", points=1, hidden=True
)
def test_other_kernels(kernel_attention, linear_attention):
    q, k, v = inputs(3, 7, 5, 2, seed=3)

    def gaussian(a, b):
        return torch.exp(-torch.cdist(a, b).square())

    expected = kernel_by_softmax(q, k, v, gaussian)
    expect_close(kernel_attention(q, k, v, gaussian), expected, "Gaussian kernel", atol=1e-10)

    def squares(x):  # φ(x) = (x_1², ..., x_D², 1): a non-negative feature map of width D + 1
        return torch.cat([x.square(), torch.ones_like(x[:, :1])], dim=-1)

    expected = kernel_by_softmax(q, k, v, lambda a, b: squares(a) @ squares(b).T)
    expect_close(linear_attention(q, k, v, squares), expected, "φ(x) = (x², 1)", atol=1e-10)
    q32, k32, v32 = (t.float() for t in (q, k, v))
    expect_close(
        linear_attention(q32, k32, v32, elu_plus_one),
        kernel_by_softmax(q32, k32, v32, lambda a, b: elu_plus_one(a) @ elu_plus_one(b).T),
        "float32 inputs",
        atol=1e-5,
    )


@test_case(name="linear_attention never forms a T_q × T_k matrix", points=1, hidden=True)
def test_linear_cost(linear_attention):
    t_q, t_k = 300, 400
    q, k, v = inputs(t_q, t_k, 4, 3, seed=4)
    got, largest = call_beside(
        linear_attention, largest_intermediate, linear_attention, q, k, v, elu_plus_one
    )
    expected = kernel_by_softmax(q, k, v, lambda a, b: elu_plus_one(a) @ elu_plus_one(b).T)
    expect_close(got, expected, "linear_attention on T_q = 300, T_k = 400", atol=1e-9)
    expect(
        largest < t_q * t_k // 10,
        f"linear_attention created a tensor with {largest} entries for T_q = {t_q}, "
        f"T_k = {t_k}: it should only need tensors of size T·F or F·M",
    )
