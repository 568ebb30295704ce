"""Tests for q4_bptt: bptt_grad_W(W, B, C, xs, ys, v0, slope).

The recurrence v_τ = φ(W v_{τ-1} + B x_τ), ŷ_τ = C v_τ with a leaky ReLU φ (slope `slope`
for negative inputs) and the loss ℓ = Σ_τ ½‖ŷ_τ − y_τ‖²; the expected ∂ℓ/∂W comes from
PyTorch's autograd on the same recurrence, in float64.
"""

import torch
import torch.nn.functional as F
from otter.test_files import test_case

from tfcourse.assertions import expect_close

OK_FORMAT = False
name = "q4_bptt"


def problem(n, p, q, steps, seed, gain=1.0):
    """Random float64 W (n, n), B (n, p), C (q, n), xs (steps, p), ys (steps, q), v0 (n,)."""
    generator = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, dtype=torch.float64, generator=generator)

    W = gain * randn(n, n) / n**0.5
    return W, randn(n, p), randn(q, n), randn(steps, p), randn(steps, q), randn(n)


def autograd_grad_W(W, B, C, xs, ys, v0, slope):
    W = W.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        v, loss = v0, 0.0
        for x, y in zip(xs, ys, strict=True):
            v = F.leaky_relu(W @ v + B @ x, negative_slope=slope)
            loss = loss + 0.5 * (C @ v - y).square().sum()
        (grad,) = torch.autograd.grad(loss, W)
    return grad


def check(bptt_grad_W, args, slope, what, atol=1e-10, rtol=1e-8):
    expected = autograd_grad_W(*args, slope)
    got = bptt_grad_W(*args, slope)
    expect_close(got, expected, what, atol=atol, rtol=rtol)


@test_case(name="n = 4 units, 5 steps, slope 0.1: matches autograd", points=2)
def test_small(bptt_grad_W):
    check(bptt_grad_W, problem(4, 3, 2, 5, seed=1), 0.1, "∂ℓ/∂W (n=4, p=3, q=2, T=5, slope 0.1)")

hidden_points = 4
