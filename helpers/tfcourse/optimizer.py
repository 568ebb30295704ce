"""Training settings and the optimiser the notebooks give students.

:class:`TrainConfig` holds the optimisation settings of a run (its defaults are nanoGPT's CPU
recipe for tiny Shakespeare); :func:`make_optimizer` builds AdamW for a model that groups its
parameters with ``optimizer_groups(weight_decay)``, as ``tfcourse.encoder_config.CausalLM`` does
with :func:`parameter_groups`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn


@dataclass
class TrainConfig:
    """Optimisation settings. The defaults are nanoGPT's CPU recipe for tiny Shakespeare."""

    max_iters: int = 2000
    batch_size: int = 12
    learning_rate: float = 1e-3
    """Peak learning rate, reached at the end of the warm-up."""
    min_lr: float = 1e-4
    """Floor of the cosine decay, reached at ``max_iters``."""
    warmup_iters: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    """Largest global gradient norm; 0 switches clipping off."""
    eval_interval: int = 250
    """Evaluate on the validation split every this many steps (and after the last)."""
    eval_batches: int | None = None
    """Validation batches per evaluation; None evaluates the whole split."""
    seed: int = 0


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict[str, object]]:
    """Parameter groups for AdamW: decay the matrices, not the biases and LayerNorm gains."""
    parameters = list(model.parameters())  # deduplicated: a tied matrix appears once
    return [
        {"params": [p for p in parameters if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in parameters if p.dim() < 2], "weight_decay": 0.0},
    ]


class GroupsParameters(Protocol):
    """A model that splits its parameters into AdamW groups."""

    def optimizer_groups(self, weight_decay: float) -> list[dict[str, object]]: ...


def make_optimizer(model: GroupsParameters, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW that decays the weight matrices but not biases and LayerNorm gains."""
    return torch.optim.AdamW(
        model.optimizer_groups(config.weight_decay),
        lr=config.learning_rate,
        betas=(config.beta1, config.beta2),
    )
