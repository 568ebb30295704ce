"""The reference encoder (tfcourse_instructor.reference.encoder) against PyTorch's modules and
closed forms."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tfcourse.encoder_config import EncoderConfig, torch_encoder, torch_encoder_layer
from tfcourse_instructor.reference.attention import causal_mask, padding_mask
from tfcourse_instructor.reference.encoder import (
    CausalLM,
    Encoder,
    EncoderLayer,
    FeedForward,
    LearnedPositionalEncoding,
    SinusoidalPositionalEncoding,
    parameter_count,
    sinusoidal_encoding,
    torch_lm_logits,
)

ATOL = 1e-5


def small_config(**overrides: object) -> EncoderConfig:
    settings: dict[str, object] = dict(
        vocab_size=13, block_size=12, n_layer=2, n_head=4, d_model=16, d_ff=40, dropout=0.0
    )
    settings.update(overrides)
    return EncoderConfig(**settings)  # type: ignore[arg-type]


def randomize(module: nn.Module, scale: float = 0.2) -> None:
    """Move every parameter off its initial value (zero biases, unit LayerNorm gains)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(scale * torch.randn_like(parameter))


def close(actual: torch.Tensor, expected: torch.Tensor, atol: float = ATOL) -> None:
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    difference = (actual - expected).abs().max().item()
    assert difference <= atol, f"max |difference| {difference:.3g} > {atol:g}"


# Positional encodings


@pytest.mark.parametrize(("max_len", "d_model"), [(50, 16), (7, 5), (300, 64)])
def test_sinusoidal_encoding_follows_the_formula(max_len: int, d_model: int) -> None:
    table = sinusoidal_encoding(max_len, d_model)
    assert table.shape == (max_len, d_model) and table.dtype == torch.float32
    for p in range(0, max_len, 7):
        for j in range(d_model):
            angle = p / 10000 ** ((j - j % 2) / d_model)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(table[p, j].item() - expected) < 1e-6


def test_positional_modules_add_the_first_rows() -> None:
    config = small_config()
    x = torch.randn(3, 5, 16)
    sinusoidal = SinusoidalPositionalEncoding(config)
    close(sinusoidal(x), x + sinusoidal_encoding(5, 16))
    assert not list(sinusoidal.parameters()) and "pe" not in sinusoidal.state_dict()
    learned = LearnedPositionalEncoding(config)
    close(learned(x), x + learned.embedding.weight[:5])


@pytest.mark.parametrize("module", [SinusoidalPositionalEncoding, LearnedPositionalEncoding])
def test_positional_modules_reject_sequences_longer_than_block_size(module: type) -> None:
    with pytest.raises(ValueError, match="block_size"):
        module(small_config(block_size=4))(torch.randn(1, 5, 16))


# Feed-forward and encoder layer


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_feed_forward_equals_linear_activation_linear(activation: str) -> None:
    feed_forward = FeedForward(small_config(activation=activation))
    randomize(feed_forward)
    reference = nn.Sequential(
        nn.Linear(16, 40), nn.ReLU() if activation == "relu" else nn.GELU(), nn.Linear(40, 16)
    )
    reference[0].load_state_dict(feed_forward.linear1.state_dict())
    reference[2].load_state_dict(feed_forward.linear2.state_dict())
    x = torch.randn(2, 5, 16)
    close(feed_forward(x), reference(x))


def twin_layers(config: EncoderConfig) -> tuple[EncoderLayer, nn.TransformerEncoderLayer]:
    reference = torch_encoder_layer(config)
    randomize(reference)
    ours = EncoderLayer(config)
    ours.load_state_dict(reference.state_dict())  # same parameter names: loads as is
    return ours, reference


MASKS = {
    "none": lambda: {},
    "causal": lambda: {"src_mask": causal_mask(6)},
    "padding": lambda: {"src_key_padding_mask": padding_mask(torch.tensor([6, 4, 1]), 6)},
    "causal+padding": lambda: {
        "src_mask": causal_mask(6),
        "src_key_padding_mask": padding_mask(torch.tensor([6, 4, 1]), 6),
    },
    "float": lambda: {"src_mask": torch.randn(6, 6)},
}


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("masks", sorted(MASKS))
def test_encoder_layer_matches_torch(norm_first: bool, activation: str, masks: str) -> None:
    torch.manual_seed(0)
    ours, reference = twin_layers(small_config(norm_first=norm_first, activation=activation))
    x = torch.randn(3, 6, 16)
    kwargs = MASKS[masks]()
    close(ours(x, **kwargs), reference(x, **kwargs))


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradients_match_torch(norm_first: bool) -> None:
    torch.manual_seed(1)
    ours, reference = twin_layers(small_config(norm_first=norm_first))
    x, target = torch.randn(2, 6, 16), torch.randn(2, 6, 16)
    for layer in (ours, reference):
        ((layer(x, causal_mask(6)) - target) ** 2).sum().backward()
    theirs = dict(reference.named_parameters())
    for name, parameter in ours.named_parameters():
        close(parameter.grad, theirs[name].grad, atol=1e-4)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_dropout_follows_the_mode(norm_first: bool) -> None:
    torch.manual_seed(2)
    ours, reference = twin_layers(small_config(norm_first=norm_first, dropout=0.3))
    x = torch.randn(2, 6, 16)
    ours.eval()
    reference.eval()
    close(ours(x, causal_mask(6)), reference(x, causal_mask(6)))
    ours.train()
    assert not torch.allclose(ours(x), ours(x))
    # With p = 1 every branch is dropped: what remains is the residual path, as in PyTorch.
    ours, reference = twin_layers(small_config(norm_first=norm_first, dropout=1.0))
    close(ours.train()(x), reference.train()(x))


# Stack and language model


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_matches_torch_transformer_encoder(norm_first: bool) -> None:
    torch.manual_seed(3)
    config = small_config(norm_first=norm_first, n_layer=3)
    reference = torch_encoder(config)
    randomize(reference)
    ours = Encoder(config)
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(3, 6, 16)
    padded = padding_mask(torch.tensor([6, 5, 2]), 6)
    close(ours(x, causal_mask(6)), reference(x, causal_mask(6)))
    close(ours(x, causal_mask(6), padded), reference(x, causal_mask(6), padded))


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("tie_weights", [False, True])
def test_causal_lm_matches_torch_modules(
    positional: str, norm_first: bool, tie_weights: bool
) -> None:
    torch.manual_seed(4)
    model = CausalLM(
        small_config(positional=positional, norm_first=norm_first, tie_weights=tie_weights)
    )
    randomize(model, scale=0.05)
    idx = torch.randint(0, 13, (3, 9))
    targets = torch.randint(0, 13, (3, 9))
    logits, loss = model(idx, targets)
    assert logits.shape == (3, 9, 13)
    close(logits, torch_lm_logits(model.state_dict(), model.config, idx))
    assert loss is not None
    close(loss, F.cross_entropy(logits.reshape(-1, 13), targets.reshape(-1)))
    assert model(idx)[1] is None


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
@pytest.mark.parametrize("norm_first", [False, True])
def test_causal_lm_is_causal(positional: str, norm_first: bool) -> None:
    torch.manual_seed(5)
    model = CausalLM(small_config(positional=positional, norm_first=norm_first, block_size=10))
    randomize(model, scale=0.05)
    idx = torch.randint(0, 13, (2, 10))
    before, _ = model(idx)
    for position in range(10):
        changed = idx.clone()
        changed[:, position] = (changed[:, position] + 1) % 13
        after, _ = model(changed)
        moved = (after - before).abs().amax(dim=(0, 2)) > 1e-6
        assert not moved[:position].any(), f"token {position} changed earlier logits"
        assert moved[position], f"token {position} did not change its own logits"


def test_weight_tying_shares_one_tensor() -> None:
    tied = CausalLM(small_config(tie_weights=True))
    assert tied.lm_head.weight is tied.token_embedding.weight
    untied = CausalLM(small_config(tie_weights=False))
    assert untied.lm_head.weight is not untied.token_embedding.weight


def independent_count(config: EncoderConfig) -> int:
    """Parameters of the same architecture assembled from PyTorch modules."""
    parts = nn.ModuleDict(
        {
            "tokens": nn.Embedding(config.vocab_size, config.d_model),
            "encoder": torch_encoder(config),
            "head": nn.Linear(config.d_model, config.vocab_size, bias=False),
        }
    )
    if config.positional == "learned":
        parts["positions"] = nn.Embedding(config.block_size, config.d_model)
    if config.tie_weights:
        parts["head"].weight = parts["tokens"].weight
    return sum(parameter.numel() for parameter in parts.parameters())


@pytest.mark.parametrize(
    "config",
    [
        EncoderConfig(),
        EncoderConfig(tie_weights=False),
        EncoderConfig(positional="sinusoidal", n_layer=1),
        small_config(vocab_size=1000, d_model=24, n_head=3, d_ff=72, tie_weights=False),
    ],
    ids=["default", "untied", "sinusoidal", "wide-vocab"],
)
def test_parameter_counts_agree(config: EncoderConfig) -> None:
    expected = independent_count(config)
    assert parameter_count(config) == expected
    assert CausalLM(config).count_parameters() == expected


def test_gpt2_small_has_124m_parameters() -> None:
    config = EncoderConfig(
        vocab_size=50257, block_size=1024, n_layer=12, n_head=12, d_model=768, d_ff=3072
    )
    assert parameter_count(config) == 124_439_808


def test_count_parameters_can_leave_out_positions() -> None:
    config = small_config()
    model = CausalLM(config)
    assert model.count_parameters() - model.count_parameters(non_embedding=True) == 12 * 16


def test_optimizer_groups_cover_each_parameter_once() -> None:
    model = CausalLM(small_config())
    decay, no_decay = model.optimizer_groups(weight_decay=0.1)
    grouped = [*decay["params"], *no_decay["params"]]  # type: ignore[misc]
    assert len(grouped) == len({id(p) for p in grouped}) == len(list(model.parameters()))
    assert all(p.dim() >= 2 for p in decay["params"])  # type: ignore[attr-defined]


def test_generate_extends_and_top_1_is_greedy() -> None:
    torch.manual_seed(6)
    model = CausalLM(small_config(block_size=6)).eval()
    idx = torch.randint(0, 13, (2, 3))
    out = model.generate(idx, max_new_tokens=7, top_k=1)
    assert out.shape == (2, 10) and torch.equal(out[:, :3], idx)
    for t in range(3, 10):  # each step only sees the last block_size tokens
        window = out[:, max(0, t - 6) : t]
        assert torch.equal(out[:, t], model(window)[0][:, -1].argmax(-1))
