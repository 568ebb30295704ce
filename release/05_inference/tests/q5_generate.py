"""Tests for q5_generate: generate(model, idx, max_new_tokens, use_cache=True, temperature=1.0,
top_k=None, generator=None).

Public cases run on tfcourse.decoding_models.RecomputingLM (PyTorch's modules in float64; its
cache holds the ids seen and recomputes, so the notebook's attention plays no part): a greedy
token must be the argmax after its prefix, a top-k draw one of the k likeliest, and the cache
must not change the tokens. Hidden cases compare the student's tokens with the instructor's
reference generation WITHOUT a cache (run here, on this process's own copy of the model), from
a generator seeded alike, past block_size too, where a cache cropped to slide raises. Models
sent to the notebook come from the student package: the reference never enters a kernel.
"""

import copy

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_shape
from tfcourse.decoding_models import DecodingConfig, RecomputingLM

OK_FORMAT = False
name = "q5_generate"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def generated(generate, lm, seed, batch, prompt_length, new, use_cache=True, **sampling):
    """The student's tokens from a random prompt (checked for shape and kept prompt), the
    prompt and a description of the call."""
    prompt = torch.randint(lm.config.vocab_size, (batch, prompt_length),
                           generator=torch.Generator().manual_seed(seed))
    got = generate(
        copy.deepcopy(lm), prompt.clone(), new, use_cache,
        generator=torch.Generator().manual_seed(seed), **sampling,
    )
    call = (f"generate(prompt {tuple(prompt.shape)}, {new} new tokens, use_cache={use_cache}, "
            f"{', '.join(f'{k}={v}' for k, v in sampling.items())}), block_size "
            f"{lm.config.block_size}")
    expect_shape(got, (batch, prompt_length + new), call)
    expect(torch.equal(got[:, :prompt_length], prompt), f"{call}: the prompt must be kept")
    return prompt, got, call


def expect_tokens(got, expected, call, what):
    mismatch = (got != expected).nonzero()
    if len(mismatch):
        row, column = (int(i) for i in mismatch[0])
        raise AssertionError(
            f"{call}: tokens differ from {what}, first at sequence {row}, "
            f"position {column}: expected {expected[row].tolist()}, got {got[row].tolist()}"
        )


def choices(generate, seed, batch, prompt_length, new, use_cache=True, **sampling):
    """Generate on a RecomputingLM; return the logits each new token was chosen from
    (B, new, V), the new tokens (B, new) and the call."""
    lm = RecomputingLM(DecodingConfig(vocab_size=11, block_size=8), seed=seed)
    _, got, call = generated(generate, lm, seed, batch, prompt_length, new, use_cache, **sampling)
    with torch.no_grad():
        logits, _ = lm(got[:, :-1])
    return logits[:, prompt_length - 1 :], got[:, prompt_length:], call


def expect_greedy(generate, seed, batch, prompt_length, new, use_cache):
    logits, tokens, call = choices(
        generate, seed, batch, prompt_length, new, use_cache, temperature=0
    )
    expect_tokens(tokens, logits.argmax(dim=-1), call, "the argmax after each prefix")


def check(generate, reference, seed, batch, prompt_length, new, use_cache=True, **sampling):
    """Compare with ``reference.generate`` without a cache on a random RecomputingLM."""
    lm = RecomputingLM(DecodingConfig(vocab_size=11, block_size=8), d_model=24, seed=seed)
    prompt, got, call = generated(
        generate, lm, seed, batch, prompt_length, new, use_cache, **sampling
    )
    expected = reference.generate(
        lm, prompt, new, use_cache=False, generator=torch.Generator().manual_seed(seed), **sampling
    )
    expect_tokens(got, expected, call, "generation without a cache")


@test_case(name="greedy with the cache: each new token is the argmax after its prefix", points=1)
def test_greedy_cached(generate):
    expect_greedy(generate, 1, batch=2, prompt_length=3, new=4, use_cache=True)


@test_case(name="sampled with the cache and a seeded generator: the uncached tokens", points=1)
def test_sampled_cached(generate):
    _, cached, call = choices(generate, 2, 2, 2, 5, use_cache=True, temperature=1.0)
    _, uncached, _ = choices(generate, 2, 2, 2, 5, use_cache=False, temperature=1.0)
    expect_tokens(cached, uncached, call, "use_cache=False with the same seed")


@test_case(name="without the cache (use_cache=False): greedy and top-k sampling", points=1)
def test_uncached(generate):
    expect_greedy(generate, 3, batch=1, prompt_length=4, new=4, use_cache=False)
    logits, tokens, call = choices(
        generate, 4, 2, 4, 4, use_cache=False, temperature=0.8, top_k=3
    )
    inside = (logits.topk(3, dim=-1).indices == tokens[..., None]).any(dim=-1)
    expect(
        bool(inside.all()),
        f"{call}: {int((~inside).sum())} of {inside.numel()} tokens are not among the 3 "
        "likeliest after their prefix",
    )

hidden_points = 3
