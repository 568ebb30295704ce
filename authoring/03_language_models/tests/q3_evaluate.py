"""Tests for q3_evaluate: evaluate(model, data, batch_size=32) -> mean loss over the
non-overlapping windows that tile data, in eval mode, without gradients. The public case
computes the expected loss from the model itself; the hidden ones use the
instructor's reference evaluate."""

import torch
from otter.test_files import test_case

from tfcourse.assertions import call_beside, expect, forward_graph_flags
from tfcourse.encoder_config import EncoderConfig
from tfcourse_instructor.reference import training

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


@test_case(
    name="batches of 3 windows give the same mean (each batch weighted by its size)",
    points=1,
    hidden=True,
)
def test_batching(evaluate):
    model = tiny_model(2).eval()
    data = torch.randint(0, 11, (6 * 7 + 1,), generator=torch.Generator().manual_seed(3))
    expected = training.evaluate(model, data).loss
    check_close(
        evaluate(model, data, batch_size=3), expected, "evaluate(model, data, batch_size=3)"
    )


@test_case(
    name="a model in train() mode: dropout off while evaluating, train mode restored, no gradients",
    points=1,
    hidden=True,
)
def test_modes(evaluate):
    model = tiny_model(4, dropout=0.5).train()
    # 7 windows of 6 exactly: the last window's targets end at the last id.
    data = torch.randint(0, 11, (42,), generator=torch.Generator().manual_seed(5))
    expected = training.evaluate(model, data).loss
    got, flags = call_beside(evaluate, forward_graph_flags, evaluate, model, data)
    check_close(got, expected, "evaluate of a model with dropout 0.5 (in train mode)")
    expect(model.training, "the model was in train() mode before evaluate and should be after it")
    model.eval()
    evaluate(model, data)
    expect(
        not model.training, "the model was in eval() mode before evaluate and should be after it"
    )
    expect(
        flags and not any(flags),
        f"{sum(flags)} of {len(flags)} forward passes built a graph for gradients: "
        "evaluate under torch.no_grad()",
    )
