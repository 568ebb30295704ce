"""Tests for q3_checkpoint: save_checkpoint(path, model) and load_checkpoint(path)."""

import contextlib
import copy
import dataclasses
import os

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect, is_instance
from tfcourse.encoder_config import EncoderConfig

from language_model import CausalLM

OK_FORMAT = False
name = "q3_checkpoint"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def round_trip(save_checkpoint, load_checkpoint, seed, load=None, **overrides):
    """Save and load a model; ``load``, if given, opens the file too (while graded, the
    notebook's torch.load: the file is the student's, so the grader never unpickles it). The
    file goes in the notebook's own folder (while graded, the kernel's private one). The
    notebook saves a copy: what save_checkpoint does to it never reaches the model returned,
    which the loaded one is compared with."""
    torch.manual_seed(seed)
    settings = dict(
        vocab_size=11, block_size=8, n_layer=2, n_head=2, d_model=16, d_ff=32, dropout=0.1
    )
    model = CausalLM(EncoderConfig(**{**settings, **overrides})).eval()
    path = f"q3_checkpoint_test_{seed}.pt"
    try:
        save_checkpoint(path, copy.deepcopy(model))
        loaded = load_checkpoint(path)
        stored = load(path, weights_only=True) if load else None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    return model, loaded, stored


def check_same_model(model, loaded, what):
    expect(
        is_instance(loaded, CausalLM),
        f"{what}: load_checkpoint should return a CausalLM, got {type(loaded).__name__}",
    )
    # Field by field: values compare here, whatever the loaded config's class says of itself.
    differing = [
        field.name
        for field in dataclasses.fields(model.config)
        if getattr(loaded.config, field.name) != getattr(model.config, field.name)
    ]
    expect(not differing, f"{what}: config expected {model.config}, got {loaded.config}")
    expect(not loaded.training, f"{what}: the loaded model should be in eval() mode")
    idx = torch.randint(0, 11, (2, 8))
    expect(
        torch.equal(loaded(idx)[0], model(idx)[0]), f"{what}: the loaded model gives other logits"
    )


@test_case(name="save then load: same configuration, same logits, eval() mode", points=2)
def test_round_trip(save_checkpoint, load_checkpoint):
    model, loaded, _ = round_trip(save_checkpoint, load_checkpoint, 0)
    check_same_model(model, loaded, "default settings")

hidden_points = 2
