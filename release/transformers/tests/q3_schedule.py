"""Tests for q3_schedule: learning_rate(step, config), linear warm-up then cosine decay.
Expected values come from the reference tfcourse.training.learning_rate."""

from otter.test_files import test_case

from tfcourse import training
from tfcourse.assertions import expect
from tfcourse.training import TrainConfig

OK_FORMAT = False
name = "q3_schedule"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse.training.learning_rate",
    "tfcourse.reference",
]


def check(learning_rate, config, steps):
    for step in steps:
        expected = training.learning_rate(step, config)
        got = learning_rate(step, config)
        expect(
            isinstance(got, (int, float)) and abs(got - expected) <= 1e-12 + 1e-9 * expected,
            f"learning_rate({step}) with warmup_iters={config.warmup_iters}, max_iters="
            f"{config.max_iters}, learning_rate={config.learning_rate}, min_lr={config.min_lr}: "
            f"expected {expected:.6e}, got {got!r}",
        )


@test_case(name="warm-up, peak, cosine half-way and end, floor after max_iters", points=2)
def test_schedule(learning_rate):
    config = TrainConfig(max_iters=2000, warmup_iters=100, learning_rate=1e-3, min_lr=1e-4)
    check(learning_rate, config, [0, 1, 50, 99, 100, 101, 1050, 1500, 1999, 2000, 5000])

hidden_points = 1
