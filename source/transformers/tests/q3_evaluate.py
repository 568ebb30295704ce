"""Tests for q3_evaluate: evaluate(model, data, batch_size=32) -> mean loss over the
non-overlapping windows that tile data, in eval mode, without gradients. Expected values come
from the reference tfcourse.training.evaluate."""

import torch
from otter.test_files import test_case

from tfcourse import training
from tfcourse.assertions import expect
from tfcourse.encoder import CausalLM, EncoderConfig

OK_FORMAT = False
name = "q3_evaluate"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse.training.evaluate",
    "tfcourse.reference",
]


def tiny_model(seed, dropout=0.0):
    torch.manual_seed(seed)
    config = EncoderConfig(
        vocab_size=11, block_size=6, n_layer=1, n_head=2, d_model=16, d_ff=32, dropout=dropout
    )
    return CausalLM(config)


def check_close(got, expected, what):
    expect(
        isinstance(got, float) and abs(got - expected) < 1e-5,
        f"{what}: expected {expected:.6f} (tolerance 1e-5), got {got!r}",
    )


@test_case(
    name="mean loss over the windows that tile data (7 windows of 6, 2 ids left over)", points=2
)
def test_value(evaluate):
    model = tiny_model(0).eval()
    data = torch.randint(0, 11, (6 * 7 + 2,), generator=torch.Generator().manual_seed(1))
    expected = training.evaluate(model, data, batch_size=32).loss
    check_close(evaluate(model, data), expected, "evaluate(model, data)")

hidden_points = 2
