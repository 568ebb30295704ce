"""Tests for q6_rotary_attention: rotary_self_attention(attn, x, cache=None, base=10000.0)
-> (output, (keys, values)).

Each test builds its own nn.MultiheadAttention (batch_first=True, random biases). Expected
values are computed here: the input projection split into heads, queries and keys rotated by
their positions (as complex numbers: pair (x_i, x_{i+D/2}) is x_i + i·x_{i+D/2}, multiplied
by e^{i·m·θ_i}), causal attention over the whole sequence, out_proj. The student's code gets
the sequence in chunks with its own cache; the joined outputs and the last cache (rotated
keys, values) must match within 1e-5. Hidden cases add more chunks, one position at a time,
no biases, another base and a comparison with the instructor's reference in float64.
"""

import copy

import torch
import torch.nn.functional as F
from otter.test_files import test_case
from torch import nn

from tfcourse.assertions import expect, expect_close, expect_shape

OK_FORMAT = False
name = "q6_rotary_attention"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.functional.multi_head_attention_forward",
    "tfcourse_instructor.reference",
]


def module(embed_dim, num_heads, seed, bias=True, dtype=torch.float32):
    torch.manual_seed(seed)
    attn = nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=True)
    if bias:  # PyTorch starts the biases at zero, which would hide a missing bias
        with torch.no_grad():
            attn.in_proj_bias.normal_()
            attn.out_proj.bias.normal_()
    return attn.to(dtype)


def rotate(x, base):
    """x (B, H, T, D) at positions 0..T-1, through complex multiplication, in float64."""
    half = x.shape[-1] // 2
    theta = base ** (-torch.arange(0, 2 * half, 2, dtype=torch.float64) / (2 * half))
    angles = torch.arange(x.size(-2), dtype=torch.float64)[:, None] * theta
    z = torch.complex(x[..., :half].double(), x[..., half:].double()) * torch.polar(
        torch.ones_like(angles), angles
    )
    return torch.cat([z.real, z.imag], dim=-1).to(x.dtype)


def expected_attention(attn, x, base):
    batch, length, width = x.shape
    size = (batch, length, attn.num_heads, width // attn.num_heads)
    with torch.no_grad():
        q, k, v = (t.view(size).transpose(1, 2)
                   for t in F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, -1))
        q, k = rotate(q, base), rotate(k, base)
        causal = torch.ones(length, length, dtype=torch.bool).tril()
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=causal)
        out = attn.out_proj(out.transpose(1, 2).reshape(batch, length, width))
    return out, (k, v)


def run_in_chunks(rotary_self_attention, attn, x, sizes, base):
    outputs, cache, start = [], None, 0
    kwargs = {} if base == 10000.0 else {"base": base}
    for size in sizes:
        with torch.no_grad():
            out, cache = rotary_self_attention(attn, x[:, start : start + size].clone(), cache,
                                               **kwargs)
        expect_shape(out, (x.size(0), size, x.size(2)), f"output of the chunk at {start}")
        outputs.append(out)
        start += size
    return torch.cat(outputs, dim=1), cache


def check(rotary_self_attention, embed_dim, heads, batch, sizes, seed, bias=True, base=10000.0,
          expected_with=None, dtype=torch.float32):
    attn = module(embed_dim, heads, seed, bias, dtype)
    x = torch.randn(batch, sum(sizes), embed_dim, generator=torch.Generator().manual_seed(seed),
                    dtype=dtype)
    if expected_with is None:
        expected, expected_kv = expected_attention(attn, x, base)
    else:
        with torch.no_grad():
            expected, expected_kv = expected_with(copy.deepcopy(attn), x.clone(), None, base)
    got, cache = run_in_chunks(rotary_self_attention, copy.deepcopy(attn), x, sizes, base)
    expect_close(got, expected, f"outputs of chunks {sizes} joined")
    expect(len(cache) == 2, f"the cache must be a pair (keys, values), got {len(cache)} items")
    for tensor, reference, label in zip(cache, expected_kv, ("rotated keys", "values"), strict=True):
        expect_close(tensor, reference, f"cached {label} after chunks {sizes}")


@test_case(name="no cache: (2, 6, 8), 2 heads, output and rotated keys", points=1)
def test_without_cache(rotary_self_attention):
    check(rotary_self_attention, 8, 2, 2, [6], 1)


@test_case(name="a prompt of 4 then 3 single steps equals the whole sequence of 7", points=1)
def test_single_steps(rotary_self_attention):
    check(rotary_self_attention, 8, 2, 2, [4, 1, 1, 1], 2)

hidden_points = 3
