"""Tests for q2_encoder: Encoder(config).forward(src, mask, src_key_padding_mask).

The student's Encoder is built with PyTorch's nn.TransformerEncoderLayer in place of the
notebook's EncoderLayer, so a bug in the layer (graded in q2_encoder_layer) is not counted
again here. Expected values come from nn.TransformerEncoder(..., norm=nn.LayerNorm(d_model)).
"""

import contextlib

import torch
from otter.test_files import test_case
from torch import nn

from tfcourse import encoder_config
from tfcourse.assertions import expect, expect_close, expect_shape, is_instance
from tfcourse.encoder_config import torch_encoder_layer

OK_FORMAT = False
name = "q2_encoder"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.TransformerEncoder",
    "torch.nn.Transformer",
    "tfcourse.encoder_config.torch_encoder",
    "tfcourse_instructor.reference",
]


@contextlib.contextmanager
def torch_encoder_layers_in(env):
    """Let the notebook's name EncoderLayer build PyTorch layers while the block runs."""
    saved = env.get("EncoderLayer")
    env["EncoderLayer"] = torch_encoder_layer
    try:
        yield
    finally:
        env["EncoderLayer"] = saved


def twin_stacks(env, n_layer, norm_first, seed=0):
    torch.manual_seed(seed)
    settings = dict(
        d_model=16, n_head=4, d_ff=32, n_layer=n_layer, dropout=0.0, norm_first=norm_first
    )
    config = env["EncoderConfig"](**settings)
    with torch_encoder_layers_in(env):
        student = env["Encoder"](config)
    # The reference's layers follow the test's own copy of the settings: the notebook's config
    # answers from the notebook, which must not shape what is expected.
    reference = nn.TransformerEncoder(
        torch_encoder_layer(encoder_config.EncoderConfig(**settings)),
        n_layer,
        norm=nn.LayerNorm(16),
        enable_nested_tensor=False,
    )
    with torch.no_grad():  # distinct random weights in every layer
        for parameter in reference.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    student.load_state_dict(reference.state_dict())
    return student, reference


def causal(size):
    return torch.ones(size, size, dtype=torch.bool).triu(1)


@test_case(
    name="(2, 6, 16) -> (2, 6, 16); layers: an nn.ModuleList of n_layer layers; norm: a LayerNorm",
    points=1,
)
def test_structure(env, Encoder, EncoderConfig):
    student, _ = twin_stacks(env, 3, True)
    layers = getattr(student, "layers", None)
    expect(
        is_instance(layers, nn.ModuleList),
        f"Encoder.layers: expected an nn.ModuleList, got {type(layers).__name__}",
    )
    expect(len(layers) == 3, f"Encoder.layers with n_layer=3: expected 3 layers, got {len(layers)}")
    norm = getattr(student, "norm", None)
    expect(
        is_instance(norm, nn.LayerNorm),
        f"Encoder.norm: expected an nn.LayerNorm, got {type(norm).__name__}",
    )
    expect_shape(student(torch.randn(2, 6, 16)), (2, 6, 16), "Encoder output")


@test_case(
    name="pre-norm stack of 3 layers, causal mask: matches nn.TransformerEncoder with a final norm",
    points=2,
)
def test_pre_norm_stack(env, Encoder, EncoderConfig):
    student, reference = twin_stacks(env, 3, True)
    x = torch.randn(2, 6, 16)
    out = student(x, causal(6))
    expect_shape(out, (2, 6, 16), "Encoder output")
    expect_close(out, reference(x, causal(6)), "pre-norm stack of 3 layers, causal mask")


@test_case(
    name="post-norm stack of 2 layers with a key padding mask, with and without a causal mask",
    points=1,
    hidden=True,
)
def test_post_norm_padding(env, Encoder, EncoderConfig):
    student, reference = twin_stacks(env, 2, False, seed=1)
    x = torch.randn(3, 5, 16)
    padded = torch.arange(5)[None, :] >= torch.tensor([5, 3, 2])[:, None]
    expect_close(
        student(x, src_key_padding_mask=padded),
        reference(x, src_key_padding_mask=padded),
        "post-norm stack, key padding mask",
    )
    expect_close(
        student(x, causal(5), padded),
        reference(x, causal(5), padded),
        "post-norm stack, causal and key padding masks",
    )


@test_case(
    name="n_layer distinct layers in an nn.ModuleList (1 and 5 layers), each with its own weights",
    points=1,
    hidden=True,
)
def test_distinct_layers(env, Encoder, EncoderConfig):
    for n_layer in (1, 5):
        student, reference = twin_stacks(env, n_layer, True, seed=2 + n_layer)
        expected = sum(p.numel() for p in reference.parameters())
        count = sum(p.numel() for p in student.parameters())
        expect(
            count == expected,
            f"Encoder with n_layer={n_layer}: expected {expected} parameters "
            f"(n_layer layers and a final LayerNorm), got {count}",
        )
        x = torch.randn(1, 4, 16)
        expect_close(student(x), reference(x), f"stack of {n_layer} layers")
