"""Tests for q3_sampling: sample_next_token(logits, temperature, top_k, generator) and
generate(model, idx, max_new_tokens, temperature, top_k, generator)."""

import copy

import torch
from otter.test_files import test_case

from tfcourse.assertions import call_beside, expect, expect_shape, forward_graph_flags
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


@test_case(
    name="frequencies follow softmax(logits / temperature) at temperatures 0.5, 1 and 2",
    points=1,
    hidden=True,
)
def test_temperature(sample_next_token):
    row = torch.tensor([1.0, 0.0, -1.0, 0.5, 2.0])
    generator = torch.Generator().manual_seed(4)
    for temperature in (0.5, 1.0, 2.0):
        ids = sample_next_token(row.expand(DRAWS, 5), temperature, None, generator)
        frequencies = torch.bincount(ids.flatten(), minlength=5).double() / DRAWS
        expected = torch.softmax(row.double() / temperature, -1)
        error = (frequencies - expected).abs().max().item()
        expect(
            error < FREQUENCY_TOLERANCE,
            f"temperature {temperature}: frequencies "
            f"{[round(f, 3) for f in frequencies.tolist()]}, expected "
            f"{[round(p, 3) for p in expected.tolist()]}",
        )


@test_case(
    name="generate: (B, T + n), prompt kept, prompts longer than block_size, eval mode, no graph",
    points=1,
    hidden=True,
)
def test_generate_contract(generate):
    model = tiny_model(5).train()
    kept = copy.deepcopy(model)  # the second call gets the model as the first did, in train()
    idx = torch.randint(0, 11, (2, 9))  # longer than block_size 6
    generator = torch.Generator().manual_seed(6)
    out, graphs = call_beside(
        generate, forward_graph_flags, generate, model, idx.clone(), 7, 1.0, None, generator
    )
    expect_shape(out, (2, 16), "generate(model, idx (2, 9), 7)")
    expect(torch.equal(out[:, :9], idx), "the output should start with the prompt")
    expect(
        graphs and not any(graphs),
        f"{sum(graphs)} of {len(graphs)} forward passes built a graph for gradients: "
        "generate under torch.no_grad()",
    )
    again = generate(kept, idx.clone(), 7, 1.0, None, torch.Generator().manual_seed(6))
    expect(
        torch.equal(out, again), "same generator seed, different samples: is dropout on? (eval())"
    )


@test_case(
    name="generate with top_k=1 is greedy decoding from the last position's logits",
    points=1,
    hidden=True,
)
def test_generate_greedy(generate):
    model = tiny_model(7).eval()
    idx = torch.randint(0, 11, (3, 4))
    # Expected first: what the call does to the model must not change what is expected.
    expected = idx
    with torch.no_grad():
        for _ in range(5):
            logits, _ = model(expected[:, -6:])
            expected = torch.cat([expected, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    out = generate(model, idx.clone(), 5, 1.0, 1, torch.Generator().manual_seed(8))
    expect(
        torch.equal(out, expected),
        f"greedy continuation: expected {expected[:, 4:].tolist()}, got {out[:, 4:].tolist()}",
    )
