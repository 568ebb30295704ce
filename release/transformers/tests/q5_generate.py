"""Tests for q5_generate: generate(model, idx, max_new_tokens, use_cache=True, temperature=1.0,
top_k=None, generator=None).

Each test builds its own small TinyLM in float64 (tfcourse.reference.kv_cache: the notebook's
model on the reference cached attention, so the student's attention plays no part) and
compares the student's tokens with the reference's generation WITHOUT a cache, from a
generator seeded alike. In float64 rounding cannot flip a choice between the two paths.
"""

import copy

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_shape
from tfcourse.reference.kv_cache import LMConfig, TinyLM
from tfcourse.reference.kv_cache import generate as reference_generate

OK_FORMAT = False
name = "q5_generate"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse.reference",
]


def model(seed, block_size=8, vocab_size=11):
    torch.manual_seed(seed)
    config = LMConfig(vocab_size, block_size=block_size, n_layer=2, n_head=2, d_model=16)
    return TinyLM(config).double().eval()


def check(generate, seed, batch, prompt_length, new, use_cache=True, **sampling):
    lm = model(seed)
    prompt = torch.randint(lm.config.vocab_size, (batch, prompt_length),
                           generator=torch.Generator().manual_seed(seed))
    expected = reference_generate(
        lm, prompt, new, use_cache=False, generator=torch.Generator().manual_seed(seed), **sampling
    )
    got = generate(
        copy.deepcopy(lm), prompt.clone(), new, use_cache,
        generator=torch.Generator().manual_seed(seed), **sampling,
    )
    call = (f"generate(prompt {tuple(prompt.shape)}, {new} new tokens, use_cache={use_cache}, "
            f"{', '.join(f'{k}={v}' for k, v in sampling.items())}), block_size "
            f"{lm.config.block_size}")
    expect_shape(got, (batch, prompt_length + new), call)
    expect(torch.equal(got[:, :prompt_length], prompt), f"{call}: the prompt must be kept")
    mismatch = (got != expected).nonzero()
    if len(mismatch):
        row, column = (int(i) for i in mismatch[0])
        raise AssertionError(
            f"{call}: tokens differ from generation without a cache, first at sequence {row}, "
            f"position {column}: expected {expected[row].tolist()}, got {got[row].tolist()}"
        )


@test_case(name="greedy with the cache: the tokens of uncached greedy decoding", points=1)
def test_greedy_cached(generate):
    check(generate, 1, batch=2, prompt_length=3, new=4, temperature=0)


@test_case(name="sampled with the cache and a seeded generator: the uncached tokens", points=1)
def test_sampled_cached(generate):
    check(generate, 2, batch=2, prompt_length=2, new=5, temperature=1.0)


@test_case(name="without the cache (use_cache=False): greedy and top-k sampling", points=1)
def test_uncached(generate):
    check(generate, 3, batch=1, prompt_length=4, new=4, use_cache=False, temperature=0)
    check(generate, 4, batch=2, prompt_length=4, new=4, use_cache=False, temperature=0.8, top_k=3)

hidden_points = 3
