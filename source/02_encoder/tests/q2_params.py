"""Tests for q2_params: parameter_count(config), the parameters of CausalLM(config) in closed
form. Expected counts come from an equivalent model assembled from PyTorch modules."""

from otter.test_files import test_case
from torch import nn

from tfcourse import encoder_config
from tfcourse.assertions import expect

OK_FORMAT = False
name = "q2_params"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse.encoder_config",
    "tfcourse_instructor.reference",
]


def torch_model_count(config):
    """Parameters of embeddings + nn.TransformerEncoder(final norm) + head; tied ones count once."""
    layer = nn.TransformerEncoderLayer(
        config.d_model, config.n_head, config.d_ff, batch_first=True, norm_first=config.norm_first
    )
    parts = nn.ModuleDict(
        {
            "tokens": nn.Embedding(config.vocab_size, config.d_model),
            "encoder": nn.TransformerEncoder(
                layer, config.n_layer, norm=nn.LayerNorm(config.d_model), enable_nested_tensor=False
            ),
            "head": nn.Linear(config.d_model, config.vocab_size, bias=False),
        }
    )
    if config.positional == "learned":
        parts["positions"] = nn.Embedding(config.block_size, config.d_model)
    if config.tie_weights:
        parts["head"].weight = parts["tokens"].weight
    return sum(p.numel() for p in parts.parameters())  # parameters() lists a shared tensor once


def check(parameter_count, EncoderConfig, **settings):
    """parameter_count of the notebook's EncoderConfig(**settings). The expected count is that
    of the test's own config with the same settings: the notebook's answers from the notebook."""
    config = encoder_config.EncoderConfig(**settings)
    expected = torch_model_count(config)
    got = parameter_count(EncoderConfig(**settings))
    expect(
        isinstance(got, int) and not isinstance(got, bool),
        f"parameter_count({config}): expected a Python int, got {type(got).__name__}",
    )
    expect(got == expected, f"parameter_count({config}): expected {expected}, got {got}")


@test_case(name="the default EncoderConfig() (learned positions, tied head)", points=1)
def test_default(parameter_count, EncoderConfig):
    check(parameter_count, EncoderConfig)

hidden_points = 2
