"""Tests for q2_encoder_layer: EncoderLayer(config).forward(src, src_mask, src_key_padding_mask).

Each case builds torch.nn.TransformerEncoderLayer(batch_first=True) with random weights, loads
its state dict into the student's layer and compares outputs within 1e-5.
"""

import torch
from otter.test_files import test_case
from torch import nn

from tfcourse.assertions import expect_close, expect_shape

OK_FORMAT = False
name = "q2_encoder_layer"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.TransformerEncoderLayer",
    "torch.nn.TransformerEncoder",
    "torch.nn.Transformer",
    "tfcourse.encoder_config",
    "tfcourse_instructor.reference",
]


def twin_layers(EncoderLayer, EncoderConfig, norm_first, activation, dropout=0.0, seed=0):
    """The student's layer and an nn.TransformerEncoderLayer holding the same random weights."""
    torch.manual_seed(seed)
    config = EncoderConfig(
        d_model=16, n_head=4, d_ff=40, dropout=dropout, activation=activation, norm_first=norm_first
    )
    reference = nn.TransformerEncoderLayer(
        16, 4, 40, dropout, activation, batch_first=True, norm_first=norm_first
    )
    with torch.no_grad():  # biases and LayerNorm parameters away from their 0/1 defaults
        for parameter in reference.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    student = EncoderLayer(config)
    student.load_state_dict(reference.state_dict())
    return student, reference


def label(norm_first, activation):
    return f"{'pre' if norm_first else 'post'}-norm, {activation}"


def causal(size):
    return torch.ones(size, size, dtype=torch.bool).triu(1)


def compare(student, reference, x, what, **masks):
    out = student(x, **masks)
    expect_shape(out, tuple(x.shape), f"{what}: output")
    expect_close(out, reference(x, **masks), what)


@test_case(name="post-norm, relu, no mask: matches nn.TransformerEncoderLayer", points=2)
def test_post_norm(EncoderLayer, EncoderConfig):
    student, reference = twin_layers(EncoderLayer, EncoderConfig, False, "relu")
    compare(student, reference, torch.randn(2, 6, 16), "post-norm, relu, no mask")


@test_case(name="pre-norm, gelu, causal src_mask: matches nn.TransformerEncoderLayer", points=2)
def test_pre_norm(EncoderLayer, EncoderConfig):
    student, reference = twin_layers(EncoderLayer, EncoderConfig, True, "gelu", seed=1)
    compare(student, reference, torch.randn(3, 5, 16), "pre-norm, gelu, causal", src_mask=causal(5))

hidden_points = 8
