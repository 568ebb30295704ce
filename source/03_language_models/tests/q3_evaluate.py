"""Tests for q3_evaluate: evaluate(model, data, batch_size=32) -> mean loss over the
non-overlapping windows that tile data, in eval mode, without gradients. The public case
computes the expected loss from the model itself; the hidden ones use the
instructor's reference evaluate."""

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect
from tfcourse.encoder_config import EncoderConfig

from language_model import CausalLM

OK_FORMAT = False
name = "q3_evaluate"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
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
    with torch.no_grad():  # the 7 windows in one batch: inputs data[6w : 6w + 6], targets one on
        _, loss = model(data[:42].view(7, 6), data[1:43].view(7, 6))
    check_close(evaluate(model, data), loss.item(), "evaluate(model, data)")

hidden_points = 2
