"""Tests for q5_kv_attention: cached_attention(attn, x, cache=None) -> (output, (keys, values)).

Each test builds its own nn.MultiheadAttention (batch_first=True). Expected outputs are that
module's causal self-attention over the whole sequence; expected keys and values are its input
projection of the whole sequence, split into heads. float32 within 1e-5.
"""

import copy

import torch
import torch.nn.functional as F
from otter.test_files import test_case
from torch import nn

from tfcourse.assertions import expect, expect_close, expect_shape

OK_FORMAT = False
name = "q5_kv_attention"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "torch.nn.functional.multi_head_attention_forward",
    "tfcourse_instructor.reference",
]


def module(embed_dim, num_heads, seed, bias=True):
    torch.manual_seed(seed)
    attn = nn.MultiheadAttention(embed_dim, num_heads, bias=bias, batch_first=True)
    if bias:  # PyTorch starts the biases at zero, which would hide a missing bias
        with torch.no_grad():
            attn.in_proj_bias.normal_()
            attn.out_proj.bias.normal_()
    return attn


def expected_outputs(attn, x):
    causal = torch.ones(x.size(1), x.size(1), dtype=torch.bool).triu(1)
    with torch.no_grad():
        return attn(x, x, x, attn_mask=causal, need_weights=False)[0]


def expected_cache(attn, x):
    size = (*x.shape[:2], attn.num_heads, x.size(2) // attn.num_heads)
    _, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    return tuple(t.view(size).transpose(1, 2).detach() for t in (k, v))


def run_in_chunks(cached_attention, attn, x, sizes):
    """Feed x in chunks of the given sizes; return the outputs joined, and the last cache."""
    outputs, cache, start = [], None, 0
    for size in sizes:
        with torch.no_grad():
            out, cache = cached_attention(attn, x[:, start : start + size].clone(), cache)
        expect_shape(out, (x.size(0), size, x.size(2)), f"output of the chunk at {start}")
        outputs.append(out)
        start += size
    return torch.cat(outputs, dim=1), cache


def check(cached_attention, embed_dim, heads, batch, sizes, seed, bias=True):
    attn = module(embed_dim, heads, seed, bias)
    x = torch.randn(batch, sum(sizes), embed_dim, generator=torch.Generator().manual_seed(seed))
    expected, expected_kv = expected_outputs(attn, x), expected_cache(attn, x)
    got, cache = run_in_chunks(cached_attention, copy.deepcopy(attn), x, sizes)
    expect_close(got, expected, f"outputs of chunks {sizes} joined")
    expect(len(cache) == 2, f"the cache must be a pair (keys, values), got {len(cache)} items")
    for tensor, reference, label in zip(cache, expected_kv, ("keys", "values"), strict=True):
        expect_close(tensor, reference, f"cached {label} after chunks {sizes}")


@test_case(name="no cache: the causal self-attention of nn.MultiheadAttention (2, 5, 8), 2 heads",
           points=1)
def test_without_cache(cached_attention):
    check(cached_attention, 8, 2, 2, [5], 1)


@test_case(name="a prompt of 4 then 3 single steps equals the whole sequence of 7", points=1)
def test_single_steps(cached_attention):
    check(cached_attention, 8, 2, 2, [4, 1, 1, 1], 2)

hidden_points = 3
