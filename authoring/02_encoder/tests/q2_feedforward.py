"""Tests for q2_feedforward: FeedForward(config), (..., d_model) -> (..., d_model).

Expected values come from torch's nn.Sequential(nn.Linear, nn.ReLU() or nn.GELU(), nn.Linear)
with random weights, which the student's linear1 and linear2 are given.
"""

import torch
from otter.test_files import test_case
from torch import nn

from tfcourse.assertions import expect_close, expect_shape

OK_FORMAT = False
name = "q2_feedforward"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.TransformerEncoderLayer",
    "tfcourse.encoder_config",
    "tfcourse_instructor.reference",
]


def twin(FeedForward, EncoderConfig, activation, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    config = EncoderConfig(d_model=16, d_ff=48, dropout=dropout, activation=activation)
    student = FeedForward(config)
    reference = nn.Sequential(
        nn.Linear(16, 48), nn.ReLU() if activation == "relu" else nn.GELU(), nn.Linear(48, 16)
    )
    with torch.no_grad():  # random biases, so that a forgotten bias shows
        reference[0].bias.normal_()
        reference[2].bias.normal_()
    # The weights go from the test's layers into the student's, never back: what the notebook
    # says its weights are must not decide what is expected.
    student.linear1.load_state_dict(reference[0].state_dict())
    student.linear2.load_state_dict(reference[2].state_dict())
    return student, reference


@test_case(name="relu: (2, 5, 16) -> (2, 5, 16), equals Linear -> ReLU -> Linear", points=1)
def test_relu(FeedForward, EncoderConfig):
    student, reference = twin(FeedForward, EncoderConfig, "relu")
    x = torch.randn(2, 5, 16)
    out = student(x)
    expect_shape(out, (2, 5, 16), "FeedForward output")
    expect_close(out, reference(x), "FeedForward with relu")


@test_case(name="gelu: equals Linear -> GELU -> Linear", points=1)
def test_gelu(FeedForward, EncoderConfig):
    student, reference = twin(FeedForward, EncoderConfig, "gelu", seed=1)
    x = torch.randn(2, 5, 16)
    expect_close(student(x), reference(x), "FeedForward with gelu")


@test_case(
    name="position-wise: permuting positions permutes outputs; any leading shape",
    points=1,
    hidden=True,
)
def test_position_wise(FeedForward, EncoderConfig):
    student, reference = twin(FeedForward, EncoderConfig, "gelu", seed=2)
    x = torch.randn(3, 7, 16)
    permutation = torch.randperm(7)
    expect_close(student(x[:, permutation]), student(x)[:, permutation], "permuted positions")
    flat = torch.randn(4, 16)
    expect_close(student(flat), reference(flat), "FeedForward on a (4, 16) input")


@test_case(
    name="dropout on the hidden layer in train mode (dropout=1 leaves linear2's bias), off in eval",
    points=1,
    hidden=True,
)
def test_dropout(FeedForward, EncoderConfig):
    student, reference = twin(FeedForward, EncoderConfig, "relu", dropout=1.0, seed=3)
    x = torch.randn(2, 4, 16)
    student.train()
    expect_close(
        student(x), reference[2].bias.detach().expand(2, 4, 16), "train mode with dropout=1"
    )
    student.eval()
    expect_close(student(x), reference(x), "eval mode with dropout=1 (dropout must be off)")
