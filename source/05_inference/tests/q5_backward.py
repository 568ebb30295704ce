"""Tests for q5_backward: attention_manual(query, key, value, mask=None) through
AttentionFunction, whose backward is written by hand.

Expected outputs and gradients come from autograd through PyTorch's own attention in the
public cases and through the plain formula (the instructor's reference) in the hidden
ones, run on the tests' own copies of the inputs.
"""

import torch
import torch.nn.functional as F
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_close

OK_FORMAT = False
name = "q5_backward"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.autograd.grad",
    "torch.autograd.functional",
    "torch.func",
    "torch.nn.functional.scaled_dot_product_attention",
    "torch._C._nn.scaled_dot_product_attention",
    "tfcourse_instructor.reference",
]


def inputs(shapes, seed, dtype=torch.float32):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator, dtype=dtype) for shape in shapes]


def pytorch_attention(query, key, value, mask):
    """PyTorch's attention; its boolean masks are True where attention is allowed."""
    return F.scaled_dot_product_attention(query, key, value, None if mask is None else ~mask)


def check_gradients(attention_manual, shapes, mask, seed, atol, expected_attention):
    """Outputs and dQ, dK, dV of attention_manual against autograd, for a random dO."""
    q, k, v = inputs(shapes, seed)
    grad_output = inputs([(*shapes[0][:-1], shapes[2][-1])], seed + 1)[0]
    ours = [t.clone().requires_grad_() for t in (q, k, v)]
    theirs = [t.clone().requires_grad_() for t in (q, k, v)]
    out = attention_manual(*ours, None if mask is None else mask.clone())
    expected = expected_attention(*theirs, mask)
    expect_close(out, expected.detach(), "output", atol=atol)
    out.backward(grad_output.clone())
    expected.backward(grad_output)
    for tensor, reference, label in zip(ours, theirs, "QKV", strict=True):
        expect(tensor.grad is not None, f"d{label}: no gradient reached the {label} input")
        expect_close(tensor.grad, reference.grad, f"d{label}", atol=atol)


def gradcheck(attention_manual, mask, seed):
    q, k, v = inputs([(2, 5, 4), (2, 5, 4), (2, 5, 3)], seed, torch.float64)
    leaves = tuple(t.requires_grad_() for t in (q, k, v))
    # Fast mode compares a random projection vᵀJu of the Jacobian with finite differences:
    # a few calls instead of 2 per input entry, each a request to the notebook when graded.
    return torch.autograd.gradcheck(
        lambda *t: attention_manual(*t, mask), leaves, raise_exception=False, fast_mode=True
    )


@test_case(name="output and dQ, dK, dV match autograd, no mask (tolerance 1e-5)", points=1)
def test_gradients_no_mask(attention_manual):
    shapes = [(2, 4, 8), (2, 6, 8), (2, 6, 5)]
    check_gradients(attention_manual, shapes, None, 1, 1e-5, pytorch_attention)


@test_case(name="gradcheck in float64 without a mask", points=1)
def test_gradcheck_no_mask(attention_manual):
    expect(
        gradcheck(attention_manual, None, 2),
        "gradcheck failed: your backward disagrees with finite differences of your forward",
    )


@test_case(name="gradcheck in float64 with a causal mask", points=1)
def test_gradcheck_causal(attention_manual):
    causal = torch.ones(5, 5, dtype=torch.bool).triu(1)
    expect(
        gradcheck(attention_manual, causal, 3),
        "gradcheck failed with a causal mask: your backward disagrees with finite differences",
    )

hidden_points = 3
