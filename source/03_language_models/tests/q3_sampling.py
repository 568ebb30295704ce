"""Tests for q3_sampling: sample_next_token(logits, temperature, top_k, generator) and
generate(model, idx, max_new_tokens, temperature, top_k, generator)."""


import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, expect_shape
from tfcourse.encoder_config import EncoderConfig

from language_model import CausalLM

OK_FORMAT = False
name = "q3_sampling"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]
DRAWS = 20_000
# The standard error of a frequency from 20,000 draws is at most 0.0036: 0.015 is over 4 of them.
FREQUENCY_TOLERANCE = 0.015


def random_logits(seed, rows=500, vocab=10):
    return torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed)) * 2


def tiny_model(seed):
    torch.manual_seed(seed)
    config = EncoderConfig(
        vocab_size=11, block_size=6, n_layer=1, n_head=2, d_model=16, d_ff=32, dropout=0.2
    )
    return CausalLM(config)


@test_case(
    name="sample_next_token: (B, 1) long ids; top_k=1 always picks the largest logit", points=1
)
def test_greedy(sample_next_token):
    logits = random_logits(0)
    ids = sample_next_token(logits, 1.0, 1, torch.Generator().manual_seed(1))
    expect_shape(ids, (500, 1), "sample_next_token(logits (500, 10))")
    expect(ids.dtype == torch.long, f"ids: expected torch.long, got {ids.dtype}")
    wrong = (ids != logits.argmax(-1, keepdim=True)).sum().item()
    expect(wrong == 0, f"top_k=1: {wrong} of 500 rows did not pick their largest logit")


@test_case(name="top_k=3 never draws outside the 3 largest logits of its row", points=1)
def test_top_k(sample_next_token):
    logits = random_logits(2)
    ids = sample_next_token(logits, 1.0, 3, torch.Generator().manual_seed(3))
    inside = (ids == torch.topk(logits, 3).indices).any(-1)
    expect(
        bool(inside.all()),
        f"{int((~inside).sum())} of 500 draws fell outside the top 3 of their row",
    )

hidden_points = 3
