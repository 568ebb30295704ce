"""Tests for q4_params: lm_parameter_count(vocab_size, context, d_model, n_layers, n_heads, tied).

Expected values are counted on real models: tfcourse.theory.StandardLM is assembled from
torch.nn modules (nn.Embedding, nn.LayerNorm, nn.MultiheadAttention, nn.Linear) and its
parameters are summed. Large models are built on PyTorch's "meta" device, which records
shapes without allocating memory.
"""

from otter.test_files import test_case

from tfcourse.assertions import expect_number
from tfcourse.theory import LMConfig, StandardLM, count_parameters

OK_FORMAT = False
name = "q4_params"


def check(lm_parameter_count, vocab_size, context, d_model, n_layers, n_heads, tied):
    config = LMConfig(vocab_size, context, d_model, n_layers, n_heads, tied)
    expected = count_parameters(StandardLM(config, device="meta"))
    call = (
        f"lm_parameter_count(vocab_size={vocab_size}, context={context}, d_model={d_model}, "
        f"n_layers={n_layers}, n_heads={n_heads}, tied={tied})"
    )
    got = lm_parameter_count(vocab_size, context, d_model, n_layers, n_heads, tied)
    expect_number(got, expected, call)


@test_case(name="a small model with a tied head", points=1)
def test_small_tied(lm_parameter_count):
    check(lm_parameter_count, 10, 8, 4, 1, 2, tied=True)


@test_case(name="a small model with an untied head", points=1)
def test_small_untied(lm_parameter_count):
    check(lm_parameter_count, 10, 8, 4, 1, 2, tied=False)

hidden_points = 3
