"""Tests for q2_encoder_layer: EncoderLayer(config).forward(src, src_mask, src_key_padding_mask).

Each case builds torch.nn.TransformerEncoderLayer(batch_first=True) with random weights, loads
its state dict into the student's layer and compares outputs within 1e-5.
"""

import torch
from otter.test_files import test_case
from torch import nn

from tfcourse.assertions import expect, expect_close, expect_shape

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


@test_case(
    name="both norm placements × relu/gelu, with and without a causal mask", points=2, hidden=True
)
def test_all_combinations(EncoderLayer, EncoderConfig):
    for seed, (norm_first, activation) in enumerate(
        [(False, "relu"), (False, "gelu"), (True, "relu"), (True, "gelu")]
    ):
        student, reference = twin_layers(
            EncoderLayer, EncoderConfig, norm_first, activation, seed=seed + 10
        )
        x = torch.randn(2, 7, 16)
        compare(student, reference, x, label(norm_first, activation))
        compare(
            student, reference, x, label(norm_first, activation) + ", causal", src_mask=causal(7)
        )


@test_case(
    name="key padding masks (boolean and float), alone and with a causal mask",
    points=1,
    hidden=True,
)
def test_padding(EncoderLayer, EncoderConfig):
    padded = torch.arange(6)[None, :] >= torch.tensor([6, 3, 1])[:, None]
    additive = torch.zeros(3, 6).masked_fill(padded, float("-inf"))
    for norm_first in (False, True):
        student, reference = twin_layers(EncoderLayer, EncoderConfig, norm_first, "relu", seed=20)
        x = torch.randn(3, 6, 16)
        what = label(norm_first, "relu")
        compare(student, reference, x, what + ", boolean padding", src_key_padding_mask=padded)
        compare(student, reference, x, what + ", float padding", src_key_padding_mask=additive)
        compare(
            student,
            reference,
            x,
            what + ", padding and causal",
            src_mask=causal(6),
            src_key_padding_mask=padded,
        )


@test_case(
    name="float src_mask of shape (B·n_head, T, T) and of shape (T, T)", points=1, hidden=True
)
def test_float_masks(EncoderLayer, EncoderConfig):
    student, reference = twin_layers(EncoderLayer, EncoderConfig, True, "gelu", seed=30)
    x = torch.randn(2, 5, 16)
    compare(student, reference, x, "(T, T) float mask", src_mask=torch.randn(5, 5))
    compare(student, reference, x, "(B·H, T, T) float mask", src_mask=torch.randn(2 * 4, 5, 5))


@test_case(
    name="causality: with a causal mask, changing token s never changes outputs before s",
    points=1,
    hidden=True,
)
def test_causality(EncoderLayer, EncoderConfig):
    for norm_first in (False, True):
        student, _ = twin_layers(EncoderLayer, EncoderConfig, norm_first, "gelu", seed=40)
        x = torch.randn(1, 8, 16)
        base = student(x, src_mask=causal(8))
        for s in range(8):
            changed = x.clone()
            changed[0, s] = torch.randn(16)
            out = student(changed, src_mask=causal(8))
            what = (
                f"{label(norm_first, 'gelu')}: outputs at positions < {s} after changing token {s}"
            )
            expect_close(out[0, :s], base[0, :s], what, atol=1e-6)
            expect(
                not torch.allclose(out[0, s], base[0, s]),
                f"{label(norm_first, 'gelu')}: output at position {s} ignores its own token",
            )


@test_case(
    name="eval(): no dropout, matches PyTorch in eval mode; train(): dropout is active",
    points=1,
    hidden=True,
)
def test_train_eval(EncoderLayer, EncoderConfig):
    student, reference = twin_layers(
        EncoderLayer, EncoderConfig, True, "relu", dropout=0.3, seed=50
    )
    x = torch.randn(2, 6, 16)
    student.eval()
    reference.eval()
    compare(student, reference, x, "eval mode with dropout=0.3", src_mask=causal(6))
    expect_close(student(x), student(x), "two calls in eval mode", atol=0.0)
    student.train()
    first, second = student(x), student(x)
    expect(
        not torch.allclose(first, second),
        "train mode with dropout=0.3: two calls gave the same output (is dropout applied?)",
    )


@test_case(
    name="dropout only on the sub-layer outputs, never on the residual path (dropout=1)",
    points=1,
    hidden=True,
)
def test_dropout_placement(EncoderLayer, EncoderConfig):
    for norm_first in (False, True):
        student, reference = twin_layers(
            EncoderLayer, EncoderConfig, norm_first, "relu", dropout=1.0, seed=60
        )
        student.train()
        reference.train()
        x = torch.randn(2, 5, 16)
        compare(student, reference, x, label(norm_first, "relu") + ", train mode, dropout=1")


@test_case(name="parameter gradients match nn.TransformerEncoderLayer's", points=1, hidden=True)
def test_gradients(EncoderLayer, EncoderConfig):
    for norm_first in (False, True):
        student, reference = twin_layers(EncoderLayer, EncoderConfig, norm_first, "gelu", seed=70)
        x, target = torch.randn(2, 5, 16), torch.randn(2, 5, 16)
        for layer in (student, reference):
            ((layer(x, src_mask=causal(5)) - target) ** 2).sum().backward()
        ours = dict(student.named_parameters())
        for parameter_name, parameter in reference.named_parameters():
            expect_close(
                ours[parameter_name].grad,
                parameter.grad,
                f"{label(norm_first, 'gelu')}: gradient of {parameter_name}",
                atol=1e-4,
            )
