"""Tests for q3_metrics: lm_loss(logits, targets), perplexity(loss), bits_per_char(loss)."""

import math

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_close

OK_FORMAT = False
name = "q3_metrics"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def expected_loss(logits, targets):
    """The mean over all positions of minus the log-probability given to the target."""
    log_probs = torch.log_softmax(logits.double(), dim=-1)
    return -log_probs.gather(-1, targets.unsqueeze(-1)).mean().float()


@test_case(name="lm_loss equals F.cross_entropy over all B·T positions, a scalar", points=1)
def test_loss(lm_loss):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=generator)
    targets = torch.randint(0, 7, (2, 5), generator=generator)
    expect_close(lm_loss(logits, targets), expected_loss(logits, targets), "lm_loss", atol=1e-6)


@test_case(name="perplexity(ln 8) = 8 and bits_per_char(ln 8) = 3", points=1)
def test_units(perplexity, bits_per_char):
    for what, got, expected in [
        ("perplexity(ln 8)", perplexity(math.log(8)), 8.0),
        ("bits_per_char(ln 8)", bits_per_char(math.log(8)), 3.0),
        ("perplexity(0)", perplexity(0.0), 1.0),
        ("bits_per_char(1.0)", bits_per_char(1.0), 1 / math.log(2)),
    ]:
        expect(
            isinstance(got, float) and abs(got - expected) < 1e-9,
            f"{what}: expected {expected:.6g}, got {got!r}",
        )

hidden_points = 1
