"""Tests for q4_init: init_residual_branch(linear, layer, depth).

The residual stack u_{l+1} = u_l + W_l ReLU(u_l) + b_l is built at initialisation with
tfcourse.theory.residual_stream_variances, fed standard-normal inputs, and the
per-coordinate variance of the stream is measured at every depth. The measurements are
noisy (one draw of the weights), so the bounds below are a little wider than the 1 to 3
the question asks for.
"""

import math

import torch
from otter.test_files import test_case
from torch import nn

from tfcourse.assertions import call_each, expect
from tfcourse.theory import residual_stream_variances

OK_FORMAT = False
name = "q4_init"

LOW, HIGH, TOP = 0.85, 3.4, 1.35


def check_variances(init_residual_branch, depth, width, seed):
    variances = residual_stream_variances(init_residual_branch, depth, width=width, seed=seed)
    shown = ", ".join(f"{v:.3g}" for v in variances[:: max(1, depth // 8)])
    where = f"depth L = {depth}, width {width}"
    for layer, variance in enumerate(variances):
        expect(
            LOW <= variance <= HIGH,
            f"{where}: Var(u_{layer}) = {variance:.3g}, outside [1, 3] (measured with a "
            f"margin: [{LOW}, {HIGH}]). Variances along the depth: {shown}",
        )
    expect(
        variances[-1] >= TOP,
        f"{where}: Var(u_L) = {variances[-1]:.3g}: the blocks barely add to the stream "
        f"(it should be at least 1.5; measured with a margin: {TOP})",
    )


@test_case(name="E[F(u) | u] = 0 over the random initialisation", points=1)
def test_zero_mean_branch(init_residual_branch):
    width, draws = 32, 400
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(width, generator=generator)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(1)
        linears = [nn.Linear(width, width) for _ in range(draws)]
        call_each(init_residual_branch, [(linear, 0, 4) for linear in linears])
        outputs = torch.stack([linear(torch.relu(u)).double() for linear in linears])
    mean, spread = outputs.mean(0), outputs.std(0) / draws**0.5
    # A coordinate that never varies (e.g. zero weights) must be exactly zero.
    z = torch.where(spread > 0, mean / spread.clamp_min(1e-300), mean * math.inf).abs()
    z = z.nan_to_num(nan=0.0).max().item()
    expect(
        z < 5,
        f"the average of F_0(u) over {draws} initialisations is {z:.1f} standard errors "
        "away from 0 in some coordinate: E[F(u) | u] is not zero",
    )


@test_case(name="Var(u_l) stays within [1, 3] for depth 8, width 256", points=1)
def test_depth_8(init_residual_branch):
    check_variances(init_residual_branch, depth=8, width=256, seed=8)


@test_case(name="Var(u_l) stays within [1, 3] for depth 64, width 128", points=1, hidden=True)
def test_depth_64(init_residual_branch):
    check_variances(init_residual_branch, depth=64, width=128, seed=64)


@test_case(name="Var(u_l) stays within [1, 3] for depths 1 and 150", points=1, hidden=True)
def test_depths_1_and_150(init_residual_branch):
    check_variances(init_residual_branch, depth=1, width=512, seed=1)
    check_variances(init_residual_branch, depth=150, width=96, seed=150)
