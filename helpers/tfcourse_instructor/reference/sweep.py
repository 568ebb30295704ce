"""A hyper-parameter sweep: train several small models on one split, tabulate the results.

>>> points = [SweepPoint("tiny", EncoderConfig(...), TrainConfig(max_iters=200)), ...]
>>> results = run_sweep(points, train_data, val_data)
>>> print(format_results(results))
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from torch import Tensor
from tqdm.auto import tqdm

from tfcourse_instructor.reference.encoder import CausalLM, EncoderConfig
from tfcourse_instructor.reference.training import Metrics, TrainConfig, train


@dataclass(frozen=True)
class SweepPoint:
    """One model of a sweep: a name, its architecture and how it is trained."""

    name: str
    model: EncoderConfig
    train: TrainConfig


@dataclass(frozen=True)
class SweepResult:
    """One row of a sweep's results table."""

    name: str
    n_layer: int
    d_model: int
    n_head: int
    block_size: int
    learning_rate: float
    dropout: float
    parameters: int
    val_loss: float
    """Validation nats per character after training."""
    bits_per_char: float
    seconds: float
    """Wall time of training, evaluations included."""


COLUMNS = tuple(field.name for field in fields(SweepResult))


def run_sweep(
    points: list[SweepPoint], train_data: Tensor, val_data: Tensor, progress: bool = True
) -> list[SweepResult]:
    """Train a fresh model for each point (seeded with its ``train.seed``); one row each."""
    results = []
    for point in tqdm(points, disable=not progress, unit="model"):
        torch.manual_seed(point.train.seed)
        model = CausalLM(point.model)
        history = train(model, train_data, val_data, point.train, progress=False)
        metrics = Metrics(history.final_val_loss)
        results.append(
            SweepResult(
                name=point.name,
                n_layer=point.model.n_layer,
                d_model=point.model.d_model,
                n_head=point.model.n_head,
                block_size=point.model.block_size,
                learning_rate=point.train.learning_rate,
                dropout=point.model.dropout,
                parameters=model.count_parameters(),
                val_loss=metrics.loss,
                bits_per_char=metrics.bits_per_char,
                seconds=history.seconds,
            )
        )
    return results


def format_results(results: list[SweepResult]) -> str:
    """A plain-text table of ``results``, best validation loss first."""
    rows = [asdict(result) for result in sorted(results, key=lambda r: r.val_loss)]
    cells = [[_cell(row[column]) for column in COLUMNS] for row in rows]
    widths = [max(len(column), *(len(row[i]) for row in cells)) for i, column in enumerate(COLUMNS)]
    lines = ["  ".join(column.rjust(width) for column, width in zip(COLUMNS, widths, strict=True))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if value < 0.01 else f"{value:.3f}"
    return str(value)
