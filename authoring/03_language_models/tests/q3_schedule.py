"""Tests for q3_schedule: learning_rate(step, config), linear warm-up then cosine decay.

The public case checks values the task's formula gives at chosen steps; the hidden ones
compare every step with the reference schedule."""

import math

from otter.test_files import test_case

from tfcourse.assertions import expect
from tfcourse.optimizer import TrainConfig
from tfcourse_instructor.reference import training

OK_FORMAT = False
name = "q3_schedule"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def expect_rate(got, expected, step, config):
    expect(
        isinstance(got, (int, float)) and abs(got - expected) <= 1e-12 + 1e-9 * expected,
        f"learning_rate({step}) with warmup_iters={config.warmup_iters}, max_iters="
        f"{config.max_iters}, learning_rate={config.learning_rate}, min_lr={config.min_lr}: "
        f"expected {expected:.6e}, got {got!r}",
    )


def check(learning_rate, config, steps, reference):
    for step in steps:
        expect_rate(learning_rate(step, config), reference(step, config), step, config)


@test_case(name="warm-up, peak, cosine half-way and end, floor after max_iters", points=2)
def test_schedule(learning_rate):
    config = TrainConfig(max_iters=2000, warmup_iters=100, learning_rate=1e-3, min_lr=1e-4)
    peak, floor = config.learning_rate, config.min_lr
    # Warm-up climbs by peak / (W + 1) a step; the cosine is at 1, 1/2 + √2/4, 1/2, 0 of its
    # range at progress 0, 1/4, 1/2, 1; the floor holds from max_iters on.
    expected = {step: peak * (step + 1) / 101 for step in (0, 1, 50, 99)}
    expected |= {100: peak, 575: floor + (0.5 + math.sqrt(2) / 4) * (peak - floor)}
    expected |= {1050: (peak + floor) / 2, 2000: floor, 5000: floor}
    for step, rate in expected.items():
        expect_rate(learning_rate(step, config), rate, step, config)
    for step in (101, 1500, 1999):
        rate = learning_rate(step, config)
        expect(
            floor < rate < peak,
            f"learning_rate({step}): expected between min_lr and the peak, got {rate!r}",
        )


@test_case(name="other settings, including no warm-up", points=1, hidden=True)
def test_other_settings(learning_rate):
    check(
        learning_rate,
        TrainConfig(max_iters=50, warmup_iters=10, learning_rate=3e-3, min_lr=0.0),
        range(0, 60, 3),
        training.learning_rate,
    )
    check(
        learning_rate,
        TrainConfig(max_iters=2000, warmup_iters=100, learning_rate=1e-3, min_lr=1e-4),
        [0, 1, 50, 99, 100, 101, 1050, 1500, 1999, 2000, 5000],
        training.learning_rate,
    )
    check(
        learning_rate,
        TrainConfig(max_iters=300, warmup_iters=0, learning_rate=6e-4, min_lr=6e-5),
        [0, 1, 150, 299, 300],
        training.learning_rate,
    )
