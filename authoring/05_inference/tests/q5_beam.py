"""Tests for q5_beam: beam_search(model, idx, max_new_tokens, beam_width, eos_id=None,
alpha=0.0) -> (tokens, log_prob).

Models are built here from the student package (the reference never enters a kernel): random
causal models in float64 (tfcourse.decoding_models' RecomputingLM) and bigram tables written
out by hand. Expected sequences come from greedy choices, from the reference beam
search, or from enumerating every possible continuation (when the beam is wide enough to keep
them all, beam search is exhaustive); log-probabilities are scored here, within 1e-9.
"""

import copy
import itertools
import math

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_close
from tfcourse.decoding_models import BigramLM, DecodingConfig, RecomputingLM
from tfcourse_instructor.reference.beam import beam_search as reference_beam_search

OK_FORMAT = False
name = "q5_beam"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]

# From token 0 greedy takes 1 (0.55), but every sequence through 1 is below 0.55 × 0.35,
# while 2 then 3 has 0.45 × 0.9.
TRAP = [
    [0.00, 0.55, 0.45, 0.00, 0.00],
    [0.00, 0.32, 0.00, 0.35, 0.33],
    [0.00, 0.05, 0.00, 0.90, 0.05],
    [0.00, 0.40, 0.30, 0.20, 0.10],
    [0.00, 0.40, 0.30, 0.20, 0.10],
]
# Token 4 ends a sequence. After 0: ending at once is likeliest in total (0.4), but 1 leads to
# nearly certain tokens, so the longest sequence is likeliest per token.
WITH_EOS = [
    [0.00, 0.35, 0.25, 0.00, 0.40],
    [0.00, 0.00, 0.97, 0.01, 0.02],
    [0.00, 0.00, 0.01, 0.97, 0.02],
    [0.00, 0.02, 0.01, 0.01, 0.96],
    [0.20, 0.20, 0.20, 0.20, 0.20],
]


def tiny_lm(seed, vocab_size=5, block_size=8):
    """A small random causal model in float64."""
    return RecomputingLM(DecodingConfig(vocab_size, block_size), d_model=8, seed=seed)


def log_prob(model, prompt, tokens):
    """Log-probability of tokens after prompt (1, T), each predicted from the last block_size
    ids before it, as decoding sees them."""
    ids, total = prompt[0], 0.0
    with torch.no_grad():
        for token in tokens.tolist():
            logits, _ = model(ids[-model.config.block_size :][None])
            total += torch.log_softmax(logits[0, -1].double(), dim=-1)[token].item()
            ids = torch.cat([ids, ids.new_tensor([token])])
    return total


def exhaustive_best(model, prompt, max_new_tokens, eos_id=None, alpha=0.0):
    """The continuation with the best log p / L**alpha among all sequences that end at their
    first eos_id or after max_new_tokens tokens."""
    candidates = set()
    for tokens in itertools.product(range(model.config.vocab_size), repeat=max_new_tokens):
        if eos_id in tokens:
            tokens = tokens[: tokens.index(eos_id) + 1]
        candidates.add(tokens)
    scored = [(log_prob(model, prompt, torch.tensor(t)), t) for t in candidates]
    return max(scored, key=lambda pair: pair[0] / len(pair[1]) ** alpha)


def run(beam_search, model, prompt, max_new_tokens, beam_width, **options):
    tokens, score = beam_search(
        copy.deepcopy(model), prompt.clone(), max_new_tokens, beam_width, **options
    )
    call = f"beam_search(..., max_new_tokens={max_new_tokens}, beam_width={beam_width}" + "".join(
        f", {k}={v}" for k, v in options.items()
    ) + ")"
    expect(
        isinstance(score, float), f"{call}: the log-probability must be a float, got {score!r}"
    )
    return tokens, score, call


def check_against(beam_search, model, prompt, max_new_tokens, beam_width, expected, **options):
    tokens, score, call = run(beam_search, model, prompt, max_new_tokens, beam_width, **options)
    expect_close(tokens, torch.tensor(expected, dtype=torch.long), f"{call}: tokens", atol=0)
    expect(
        math.isclose(score, log_prob(model, prompt, tokens), abs_tol=1e-9),
        f"{call}: returned log-probability {score:.6f}, but the tokens {tokens.tolist()} have "
        f"{log_prob(model, prompt, tokens):.6f}",
    )


@test_case(name="beam_width=1 is greedy decoding (random model, 5 tokens)", points=1)
def test_width_one_is_greedy(beam_search):
    model, prompt = RecomputingLM(DecodingConfig(vocab_size=5), seed=1), torch.tensor([[0, 3]])
    # Greedy decoding here, before the call: the expected tokens never come from the answer.
    ids = prompt[0]
    with torch.no_grad():
        for _ in range(5):
            logits, _ = model(ids[-model.config.block_size :][None])
            ids = torch.cat([ids, logits[0, -1].argmax(dim=-1, keepdim=True)])
    check_against(beam_search, model, prompt, 5, 1, ids[prompt.size(1) :].tolist())


@test_case(name="where greedy misses, beam_width=2 finds the likeliest sequence", points=1)
def test_trap(beam_search):
    model, prompt = BigramLM(TRAP), torch.tensor([[0]])
    expected = exhaustive_best(model, prompt, 2)[1]
    check_against(beam_search, model, prompt, 2, 2, list(expected))


@test_case(name="a beam wide enough to keep every sequence finds the likeliest one",
           points=1, hidden=True)
def test_exhaustive(beam_search):
    model, prompt = tiny_lm(2), torch.tensor([[1, 4, 2]])
    expected = exhaustive_best(model, prompt, 3)[1]
    check_against(beam_search, model, prompt, 3, 125, list(expected))


@test_case(name="with eos_id: alpha=0 prefers the short sequence, alpha=1 the likelier per token",
           points=1, hidden=True)
def test_length_normalisation(beam_search):
    model = BigramLM(WITH_EOS)
    # L counts new tokens only: after a prompt of 12 tokens ending in 0, the same choices.
    for prompt in (torch.tensor([[0]]), torch.tensor([[0, 1, 2, 3, 1, 2, 3, 2, 3, 1, 3, 0]])):
        for alpha in (0.0, 1.0):
            expected = exhaustive_best(model, prompt, 4, eos_id=4, alpha=alpha)[1]
            check_against(
                beam_search, model, prompt, 4, 625, list(expected), eos_id=4, alpha=alpha
            )


@test_case(name="beam_width=1 with eos_id: the search ends when its only beam ends",
           points=1, hidden=True)
def test_search_ends_with_its_beams(beam_search):
    model, prompt = BigramLM(WITH_EOS), torch.tensor([[0]])
    for alpha in (0.0, 1.0):
        # Greedy from 0 takes 4 (0.40) at once: the one beam ends after one token.
        check_against(beam_search, model, prompt, 4, 1, [4], eos_id=4, alpha=alpha)


@test_case(name="width 3 past block_size: the reference's beam and its log-probability",
           points=1, hidden=True)
def test_past_block_size(beam_search):
    model, prompt = tiny_lm(3, vocab_size=7, block_size=6), torch.tensor([[2, 5, 1, 6]])
    expected, _ = reference_beam_search(model, prompt, 6, 3)
    check_against(beam_search, model, prompt, 6, 3, expected.tolist())
