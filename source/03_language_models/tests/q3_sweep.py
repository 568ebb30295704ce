"""Tests for q3_sweep: sweep_points(vocab_size, base_model, base_train) and
run_sweep(points, train_data, val_data) -> one row (dict) per point."""

import math

import torch
from otter.test_files import test_case

from tfcourse.assertions import dataclass_copies, expect
from tfcourse.encoder_config import EncoderConfig
from tfcourse.optimizer import TrainConfig

from language_model import CausalLM

OK_FORMAT = False
name = "q3_sweep"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]
COLUMNS = ["name", "n_layer", "d_model", "n_head", "block_size", "learning_rate", "dropout",
           "parameters", "val_loss", "seconds"]  # fmt: skip
VARIED = {
    "n_layer": lambda model, train: model.n_layer,
    "d_model": lambda model, train: model.d_model,
    "n_head": lambda model, train: model.n_head,
    "block_size": lambda model, train: model.block_size,
    "learning_rate": lambda model, train: train.learning_rate,
    "dropout": lambda model, train: model.dropout,
}


MAX_LAYERS = 256


def local_points(points):
    """The points with copies of their configurations: a check reads every setting of every
    point, one request each if read from the notebook."""
    models = dataclass_copies([model for _, model, _ in points], EncoderConfig)
    trains = dataclass_copies([train for _, _, train in points], TrainConfig)
    copies = []
    for point, model, train in zip(points, models, trains, strict=True):
        expect(
            model is not None and train is not None,
            f"{point[0]!r}: expected an EncoderConfig and a TrainConfig",
        )
        copies.append((point[0], model, train))
    return copies


def check_rows(rows, points):
    expect(
        isinstance(rows, list) and len(rows) == len(points),
        f"expected a list of {len(points)} rows, got {type(rows).__name__} "
        f"of length {len(rows) if isinstance(rows, list) else '?'}",
    )
    for row, (point_name, model_config, train_config) in zip(rows, points, strict=True):
        missing = [column for column in COLUMNS if column not in row]
        expect(not missing, f"row {point_name!r} lacks the columns {missing}")
        expect(
            row["name"] == point_name,
            f"rows should follow the points: expected {point_name!r}, got {row['name']!r}",
        )
        for column, value in VARIED.items():
            expected = value(model_config, train_config)
            expect(
                row[column] == expected,
                f"row {point_name!r}, column {column!r}: expected {expected}, got {row[column]}",
            )
        expect(
            model_config.n_layer <= MAX_LAYERS,
            f"row {point_name!r}: {model_config.n_layer} layers, more than this check counts",
        )
        with torch.device("meta"):  # counted without allocating: sizes come from the notebook
            expected = CausalLM(model_config).count_parameters()
        expect(
            row["parameters"] == expected,
            f"row {point_name!r}: expected {expected} parameters, got {row['parameters']}",
        )
        expect(
            isinstance(row["val_loss"], float)
            and math.isfinite(row["val_loss"])
            and row["val_loss"] > 0,
            f"row {point_name!r}: val_loss should be a positive float, got {row['val_loss']!r}",
        )
        expect(
            row["seconds"] > 0,
            f"row {point_name!r}: seconds should be positive, got {row['seconds']!r}",
        )


@test_case(
    name="the notebook's points: at least ten, distinct names, each of the six settings varied",
    points=1,
)
def test_points(points, sweep_model, sweep_train):
    expect(len(points) >= 10, f"expected at least 10 points, got {len(points)}")
    names = [point[0] for point in points]
    expect(len(set(names)) == len(names), f"names should be distinct: {names}")
    points = local_points(points)
    [base_model] = dataclass_copies([sweep_model], EncoderConfig)
    [base_train] = dataclass_copies([sweep_train], TrainConfig)
    for setting, value in VARIED.items():
        base = value(base_model, base_train)
        expect(
            any(value(model, train) != base for _, model, train in points),
            f"no point varies {setting} (all {base})",
        )
    for point_name, model, _ in points:
        expect(
            model.d_model % model.n_head == 0,
            f"{point_name!r}: d_model must be divisible by n_head",
        )
        expect(
            model.d_ff == 4 * model.d_model,
            f"{point_name!r}: d_ff should be 4 * d_model = {4 * model.d_model}, got {model.d_ff}",
        )


@test_case(name="the notebook's results: one row per point, in order, with every column", points=1)
def test_results(results, points):
    points = local_points(points)
    check_rows(results, points)

hidden_points = 1
