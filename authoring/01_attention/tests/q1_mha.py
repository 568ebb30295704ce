"""Tests for q1_mha: MultiHeadAttention against torch.nn.MultiheadAttention(batch_first=True).

Each case builds a torch module, copies its state dict into the student's module and compares
outputs and attention weights within 1e-5 (1e-10 in float64).
"""

import torch
from otter.test_files import test_case
from torch import nn

from tfcourse.assertions import expect, expect_close, expect_shape

OK_FORMAT = False
name = "q1_mha"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.MultiheadAttention",
    "torch.nn.functional.multi_head_attention_forward",
    "torch.nn.functional.scaled_dot_product_attention",
    "torch._C._nn.scaled_dot_product_attention",
    "tfcourse.encoder_config",
    "tfcourse_instructor.reference",
]


def twin_modules(MultiHeadAttention, embed_dim, num_heads, bias=True, dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    reference = nn.MultiheadAttention(
        embed_dim, num_heads, bias=bias, batch_first=True, dtype=dtype
    )
    if bias:  # torch initialises biases to zero; random ones make the comparison meaningful
        with torch.no_grad():
            reference.in_proj_bias.normal_()
            reference.out_proj.bias.normal_()
    student = MultiHeadAttention(embed_dim, num_heads, bias=bias).to(dtype)
    student.load_state_dict(reference.state_dict())
    return student, reference


def compare(student, reference, args, kwargs, what, atol=1e-5):
    ours, ours_w = student(*args, **kwargs)
    theirs, theirs_w = reference(*args, **kwargs)
    expect_close(ours, theirs, f"{what}: output", atol=atol)
    if theirs_w is None:
        expect(ours_w is None, f"{what}: expected weights None when need_weights=False")
    else:
        expect_close(ours_w, theirs_w, f"{what}: attention weights", atol=atol)


@test_case(name="self-attention, E=32, H=4: output and head-averaged weights", points=2)
def test_self_attention(MultiHeadAttention):
    student, reference = twin_modules(MultiHeadAttention, 32, 4)
    x = torch.randn(2, 6, 32)
    ours, ours_w = student(x, x, x)
    expect_shape(ours, (2, 6, 32), "output")
    expect_shape(ours_w, (2, 6, 6), "head-averaged weights")
    compare(student, reference, (x, x, x), {}, "self-attention")


@test_case(name="causal attn_mask and per-head weights (average_attn_weights=False)", points=1)
def test_causal_per_head(MultiHeadAttention):
    student, reference = twin_modules(MultiHeadAttention, 16, 2, seed=1)
    x = torch.randn(3, 5, 16)
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    kwargs = dict(attn_mask=causal, average_attn_weights=False)
    ours_w = student(x, x, x, **kwargs)[1]
    expect_shape(ours_w, (3, 2, 5, 5), "per-head weights")
    compare(student, reference, (x, x, x), kwargs, "causal, per head")


@test_case(name="cross-attention with T_q=4, T_k=7", points=1, hidden=True)
def test_cross_attention(MultiHeadAttention):
    student, reference = twin_modules(MultiHeadAttention, 24, 3, seed=2)
    query, memory = torch.randn(2, 4, 24), torch.randn(2, 7, 24)
    compare(student, reference, (query, memory, memory), {}, "cross-attention")
    compare(
        student,
        reference,
        (query, memory, memory),
        dict(average_attn_weights=False),
        "cross-attention, per head",
    )


@test_case(name="key_padding_mask, boolean and float, with a causal mask", points=1, hidden=True)
def test_padding(MultiHeadAttention):
    student, reference = twin_modules(MultiHeadAttention, 16, 4, seed=3)
    x = torch.randn(3, 6, 16)
    padded = torch.arange(6)[None, :] >= torch.tensor([6, 4, 2])[:, None]
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)
    compare(student, reference, (x, x, x), dict(key_padding_mask=padded), "boolean padding")
    compare(
        student,
        reference,
        (x, x, x),
        dict(key_padding_mask=padded, attn_mask=causal),
        "padding and causal",
    )
    additive = torch.zeros(3, 6).masked_fill(padded, float("-inf"))
    compare(student, reference, (x, x, x), dict(key_padding_mask=additive), "float padding")


@test_case(name="float attn_mask of shape (B·H, T_q, T_k)", points=1, hidden=True)
def test_3d_float_mask(MultiHeadAttention):
    student, reference = twin_modules(MultiHeadAttention, 16, 4, seed=4)
    x = torch.randn(2, 5, 16)
    mask = torch.randn(2 * 4, 5, 5)
    compare(student, reference, (x, x, x), dict(attn_mask=mask), "3-d float mask")


@test_case(name="need_weights=False, bias=False, float64", points=1, hidden=True)
def test_options(MultiHeadAttention):
    student, reference = twin_modules(MultiHeadAttention, 12, 3, bias=False, seed=5)
    x = torch.randn(2, 4, 12)
    compare(student, reference, (x, x, x), dict(need_weights=False), "need_weights=False")
    student, reference = twin_modules(MultiHeadAttention, 12, 3, dtype=torch.float64, seed=6)
    x = torch.randn(2, 4, 12, dtype=torch.float64)
    compare(student, reference, (x, x, x), {}, "float64", atol=1e-10)


@test_case(name="parameter gradients match nn.MultiheadAttention's", points=1, hidden=True)
def test_gradients(MultiHeadAttention):
    student, reference = twin_modules(MultiHeadAttention, 16, 4, seed=7)
    x = torch.randn(2, 5, 16)
    target = torch.randn(2, 5, 16)
    for module in (student, reference):
        out, _ = module(x, x, x, attn_mask=torch.ones(5, 5, dtype=torch.bool).triu(1))
        ((out - target) ** 2).sum().backward()
    ours = dict(student.named_parameters())
    for param_name, param in reference.named_parameters():
        expect_close(ours[param_name].grad, param.grad, f"gradient of {param_name}", atol=1e-4)


@test_case(name="batch elements do not interact", points=1, hidden=True)
def test_batch_independence(MultiHeadAttention):
    student, _ = twin_modules(MultiHeadAttention, 16, 2, seed=8)
    x = torch.randn(4, 5, 16)
    together, _ = student(x, x, x)
    alone, _ = student(x[1:2], x[1:2], x[1:2])
    expect_close(alone[0], together[1], "element 1 alone vs in a batch")
