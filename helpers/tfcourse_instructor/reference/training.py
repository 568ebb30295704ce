"""Training a character-level language model, in the style of nanoGPT's ``train.py``.

One :class:`~tfcourse.optimizer.TrainConfig` holds the optimisation settings; the model's own
settings live in its :class:`~tfcourse.encoder_config.EncoderConfig`. The pieces, each usable alone:

- :func:`split_ids` and :func:`get_batch`: a training/validation split and random windows
  whose targets are the inputs shifted by one position;
- :func:`learning_rate`: linear warm-up, then cosine decay to a floor;
- :func:`train_step`: one AdamW step (``tfcourse.optimizer.make_optimizer``) with gradient
  clipping;
- :func:`evaluate`: loss, perplexity and bits per character over validation windows, in
  ``eval()`` mode and without gradients;
- :func:`train`: the loop, with a tqdm progress bar and a loss :class:`History`;
- :func:`save_checkpoint` and :func:`load_checkpoint`: model configuration and weights.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor
from tqdm.auto import tqdm

from tfcourse.encoder_config import EncoderConfig
from tfcourse.optimizer import TrainConfig, make_optimizer
from tfcourse_instructor.reference.encoder import CausalLM


@dataclass(frozen=True)
class Metrics:
    """The mean next-token cross-entropy and the two numbers derived from it."""

    loss: float
    """Nats per token: the mean of -ln p(target)."""

    @property
    def perplexity(self) -> float:
        """e^loss: the number of equally likely tokens the model is as unsure as."""
        return math.exp(self.loss)

    @property
    def bits_per_char(self) -> float:
        """loss / ln 2: the code length per character, comparable with compressors."""
        return self.loss / math.log(2)


@dataclass
class History:
    """What a training run recorded: the loss at every step and the periodic evaluations."""

    train_loss: list[float] = field(default_factory=list)
    """Training loss of each step's batch."""
    eval_steps: list[int] = field(default_factory=list)
    """Steps after which the model was evaluated (a count of completed steps)."""
    val_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    """Wall time of the run, evaluations included."""

    @property
    def final_val_loss(self) -> float:
        """The last validation loss recorded."""
        return self.val_loss[-1]


def split_ids(ids: Tensor, train_fraction: float = 0.9) -> tuple[Tensor, Tensor]:
    """The first ``train_fraction`` of a 1-d id tensor and the rest: (training, validation).

    A contiguous split, not a shuffled one: validation text is text the model never saw.
    """
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be between 0 and 1, got {train_fraction}")
    cut = int(len(ids) * train_fraction)
    return ids[:cut], ids[cut:]


def get_batch(
    data: Tensor,
    block_size: int,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``batch_size`` random windows of ``block_size`` ids from the 1-d ``data``.

    Returns inputs ``x`` and targets ``y``, both (batch_size, block_size), with
    ``y[b, t] = x[b, t + 1]``: every position is a next-token prediction.
    """
    # A window needs block_size + 1 ids (its inputs and the target after the last input).
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=generator)
    offsets = torch.arange(block_size)
    x = data[starts[:, None] + offsets]
    y = data[starts[:, None] + offsets + 1]
    return x, y


def learning_rate(step: int, config: TrainConfig) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up, then cosine decay.

    Rises linearly to ``config.learning_rate`` over ``warmup_iters`` steps, falls along half
    a cosine to ``min_lr`` at ``max_iters``, and stays there.
    """
    if step < config.warmup_iters:
        return config.learning_rate * (step + 1) / (config.warmup_iters + 1)
    if step >= config.max_iters:
        return config.min_lr
    progress = (step - config.warmup_iters) / max(1, config.max_iters - config.warmup_iters)
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
    return config.min_lr + cosine * (config.learning_rate - config.min_lr)


def train_step(
    model: CausalLM,
    optimizer: torch.optim.Optimizer,
    x: Tensor,
    y: Tensor,
    lr: float,
    grad_clip: float = 1.0,
) -> float:
    """One optimisation step on the batch ``(x, y)`` at learning rate ``lr``; returns its loss.

    Leaves the model in training mode (dropout on).
    """
    model.train()
    for group in optimizer.param_groups:
        group["lr"] = lr
    _, loss = model(x, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


@torch.no_grad()
def evaluate(
    model: CausalLM, data: Tensor, batch_size: int = 32, max_batches: int | None = None
) -> Metrics:
    """Mean loss over the non-overlapping windows that tile ``data``.

    Every window holds ``model.config.block_size`` predictions, each from its own prefix, as
    in training. ``max_batches`` caps the cost: that many batches of windows spread evenly
    over ``data``. Runs in ``eval()`` mode (no dropout) and restores the mode it found.
    """
    block_size = model.config.block_size
    windows = (len(data) - 1) // block_size
    if windows == 0:
        raise ValueError(f"data of {len(data)} ids is shorter than one window of {block_size + 1}")
    starts = torch.arange(windows) * block_size
    if max_batches is not None and max_batches * batch_size < windows:
        starts = starts[torch.linspace(0, windows - 1, max_batches * batch_size).long()]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    offsets = torch.arange(block_size)
    total, count = 0.0, 0
    for chunk in starts.split(batch_size):
        x = data[chunk[:, None] + offsets].to(device)
        y = data[chunk[:, None] + offsets + 1].to(device)
        _, loss = model(x, y)
        total += loss.item() * y.numel()
        count += y.numel()
    model.train(was_training)
    return Metrics(total / count)


def train(
    model: CausalLM,
    train_data: Tensor,
    val_data: Tensor,
    config: TrainConfig,
    progress: bool = True,
) -> History:
    """Train ``model`` for ``config.max_iters`` steps; evaluate every ``eval_interval`` steps.

    Batches are drawn from a generator seeded with ``config.seed``, so a run is reproducible
    given the model's initial weights (and one thread: see ``torch.set_num_threads``).
    """
    generator = torch.Generator().manual_seed(config.seed)
    optimizer = make_optimizer(model, config)
    device = next(model.parameters()).device
    history = History()
    start = time.perf_counter()
    bar = tqdm(range(config.max_iters), disable=not progress, unit="step", leave=False)
    for step in bar:
        x, y = get_batch(train_data, model.config.block_size, config.batch_size, generator)
        lr = learning_rate(step, config)
        loss = train_step(model, optimizer, x.to(device), y.to(device), lr, config.grad_clip)
        history.train_loss.append(loss)
        done = step + 1
        if done % config.eval_interval == 0 or done == config.max_iters:
            metrics = evaluate(model, val_data, max_batches=config.eval_batches)
            history.eval_steps.append(done)
            history.val_loss.append(metrics.loss)
            bar.set_postfix(train=f"{loss:.3f}", val=f"{metrics.loss:.3f}")
    history.seconds = time.perf_counter() - start
    model.eval()
    return history


def save_checkpoint(path: str | os.PathLike[str], model: CausalLM) -> None:
    """Write the model's configuration (a plain dict) and weights to ``path``."""
    checkpoint = {"config": asdict(model.config), "state_dict": model.state_dict()}
    torch.save(checkpoint, Path(path))


def load_checkpoint(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> CausalLM:
    """Rebuild the model saved by :func:`save_checkpoint`, in ``eval()`` mode.

    Loads with ``weights_only=True``: a checkpoint cannot run code when it is opened.
    """
    checkpoint = torch.load(Path(path), map_location=device, weights_only=True)
    model = CausalLM(EncoderConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    return model.to(device).eval()
