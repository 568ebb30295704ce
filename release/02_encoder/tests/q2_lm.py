"""Tests for q2_lm: CausalLM(config).forward(idx, targets=None) -> (logits, loss).

The student's model is built with stand-ins for the notebook's earlier answers: PyTorch's
nn.TransformerEncoder / nn.TransformerEncoderLayer for Encoder / EncoderLayer and, for the
positional encodings, fixed random tables (one per kind, so the hidden cases see which the
model picked). A bug graded earlier is then not counted again here. Everything sent to the
notebook comes from the student package; the expected logits are the reference's, computed
from the test's own config and weights, which the student's model is given.
"""

import contextlib

import torch
import torch.nn.functional as F
from otter.test_files import test_case

from tfcourse import encoder_config
from tfcourse.assertions import expect, expect_close, expect_shape
from tfcourse.encoder_config import RandomPositions, torch_encoder, torch_encoder_layer

OK_FORMAT = False
name = "q2_lm"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "language_model.CausalLM",
    "tfcourse_instructor.reference",
]


STAND_INS = {
    "EncoderLayer": torch_encoder_layer,
    "Encoder": torch_encoder,
    "LearnedPositionalEncoding": RandomPositions,
    "SinusoidalPositionalEncoding": RandomPositions,
}


@contextlib.contextmanager
def parts_in(env, parts):
    """Let the notebook's names of the earlier parts build ``parts`` meanwhile."""
    saved = {key: env.get(key) for key in parts}
    env.update(parts)
    try:
        yield
    finally:
        env.update(saved)


def build(env, seed=0, positions=None, **overrides):
    """The notebook's CausalLM on the stand-ins, and the test's own copy of its config (the
    notebook's config answers from the notebook); ``positions`` maps the names of the
    positional encodings to other classes."""
    torch.manual_seed(seed)
    settings = dict(
        vocab_size=11, block_size=16, n_layer=2, n_head=2, d_model=16, d_ff=32, dropout=0.0
    )
    config = env["EncoderConfig"](**{**settings, **overrides})
    with parts_in(env, {**STAND_INS, **(positions or {})}):
        model = env["CausalLM"](config)
    return model, encoder_config.EncoderConfig(**{**settings, **overrides})


def random_weights(config):
    """A state dict of random weights for an untied CausalLM on the stand-ins of ``config``:
    token embedding, encoder stack, head (the stand-ins' positions are not in it)."""
    encoder = torch_encoder(config)
    with torch.no_grad():  # biases and LayerNorm parameters away from their 0/1 defaults
        for parameter in encoder.parameters():
            parameter.add_(0.2 * torch.randn_like(parameter))
    return {
        "token_embedding.weight": torch.randn(config.vocab_size, config.d_model),
        **{f"encoder.{key}": value for key, value in encoder.state_dict().items()},
        "lm_head.weight": torch.randn(config.vocab_size, config.d_model) / config.d_model**0.5,
    }


def changed_positions(model, idx, position, vocab_size):
    """Positions whose logits change when the token at ``position`` is replaced."""
    changed = idx.clone()
    changed[:, position] = (changed[:, position] + 1) % vocab_size
    before, _ = model(idx)
    after, _ = model(changed)
    difference = (after - before).abs().amax(dim=(0, 2))
    return difference, [t for t in range(idx.size(1)) if difference[t] > 1e-6]


@test_case(
    name="idx (2, 10) -> logits (2, 10, vocab_size); loss None, or the cross-entropy with targets",
    points=1,
)
def test_shapes_and_loss(env, CausalLM, EncoderConfig):
    model, _ = build(env)
    idx = torch.randint(0, 11, (2, 10))
    logits, loss = model(idx)
    expect_shape(logits, (2, 10, 11), "logits")
    expect(loss is None, f"loss without targets: expected None, got {type(loss).__name__}")
    targets = torch.randint(0, 11, (2, 10))
    logits, loss = model(idx, targets)
    expect_shape(loss, (), "loss with targets")
    expect_close(loss, F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1)), "loss")


@test_case(
    name="causality: changing token 6 leaves logits 0-5 unchanged and changes position 6",
    points=2,
)
def test_causality(env, CausalLM, EncoderConfig):
    model, _ = build(env, seed=1)
    idx = torch.randint(0, 11, (2, 10))
    difference, changed = changed_positions(model, idx, 6, 11)
    expect(
        all(t >= 6 for t in changed),
        f"changing token 6 changed the logits at earlier positions {[t for t in changed if t < 6]} "
        f"(by up to {difference[:6].max().item():.3g}); expected no change before position 6",
    )
    expect(6 in changed, "changing token 6 did not change the logits at position 6")

hidden_points = 5
