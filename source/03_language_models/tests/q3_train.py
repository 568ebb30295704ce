"""Tests for q3_train: train(model, train_data, val_data, config) -> history, and the
validation loss of the model the notebook trained.

The threshold is computed, not pasted: the validation loss of a unigram count model (the
training split's character frequencies, add-one smoothed) minus 0.5 nats. A transformer that
learned anything beyond letter frequencies passes it even in the quick mode of grading.
"""


import torch
from otter.test_files import test_case

from tfcourse.assertions import expect
from tfcourse.checking import progress_bars_off
from tfcourse.encoder_config import EncoderConfig
from tfcourse.optimizer import TrainConfig

from language_model import CausalLM

OK_FORMAT = False
name = "q3_train"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]
MARGIN = 0.5


def unigram_loss(train_data, val_data, vocab_size):
    expect(0 < vocab_size <= 2**20, f"the model's vocab_size is {vocab_size}")
    counts = torch.bincount(train_data, minlength=vocab_size).double() + 1.0
    return -torch.log(counts / counts.sum())[val_data].mean().item()


def window_loss(model, data, most=256):
    """The model's mean loss, in eval mode, over the first ``most`` non-overlapping windows of
    ``data`` (all of them when fewer): enough for a threshold, and exact for short data."""
    size = model.config.block_size
    count = min(most, (len(data) - 1) // size)
    model.eval()
    with torch.no_grad():
        _, loss = model(
            data[: count * size].view(count, size), data[1 : count * size + 1].view(count, size)
        )
    return float(loss)


def short_run(env, seed=0, global_seed=None):
    """A 10-step run of a tiny model built from torch.manual_seed(seed), trained with
    config.seed = seed; the global generator is then reseeded with ``global_seed`` (default:
    left where building the model left it). Returns (model, history, validation ids)."""
    torch.manual_seed(seed)
    config = EncoderConfig(
        vocab_size=9, block_size=8, n_layer=1, n_head=2, d_model=16, d_ff=32, dropout=0.0
    )
    model = CausalLM(config)
    data = torch.randint(0, 9, (600,), generator=torch.Generator().manual_seed(seed))
    train_config = TrainConfig(max_iters=10, batch_size=4, eval_interval=4, seed=seed)
    if global_seed is not None:
        torch.manual_seed(global_seed)
    with progress_bars_off(env):
        history = env["train"](model, data[:500], data[500:].clone(), train_config)
    return model, history, data[500:]


@test_case(
    name="a 10-step run with eval_interval 4: history lists, evaluations after 4, 8, 10 steps",
    points=1,
)
def test_history(env, train):
    model, history, val_data = short_run(env)
    expect(isinstance(history, dict), f"train should return a dict, got {type(history).__name__}")
    keys = {"train_loss", "eval_steps", "val_loss"}
    expect(keys <= set(history), f"history keys: expected {sorted(keys)}, got {sorted(history)}")
    expect(
        len(history["train_loss"]) == 10,
        f"train_loss: expected 10 values, got {len(history['train_loss'])}",
    )
    expect(
        history["eval_steps"] == [4, 8, 10],
        f"eval_steps: expected [4, 8, 10], got {history['eval_steps']}",
    )
    expect(
        len(history["val_loss"]) == 3,
        f"val_loss: expected 3 values, got {len(history['val_loss'])}",
    )
    expect(not model.training, "the trained model should be returned in eval() mode")
    final = window_loss(model, val_data)
    expect(
        len(history["val_loss"]) == 3 and abs(history["val_loss"][-1] - final) < 1e-5,
        f"the last val_loss should be the loss of the trained model on val_data, {final:.6f} "
        f"(tolerance 1e-5); got {history['val_loss'][-1:]}",
    )


@test_case(
    name="the notebook's trained model: validation loss below the unigram model's minus 0.5 nats",
    points=2,
)
def test_threshold(model, train_data, val_data):
    threshold = unigram_loss(train_data, val_data, model.config.vocab_size) - MARGIN
    loss = window_loss(model, val_data)
    expect(
        loss < threshold,
        f"validation loss of `model`: {loss:.3f} nats; expected below {threshold:.3f} (a unigram "
        f"count model's {threshold + MARGIN:.3f} minus {MARGIN}). Did the training cell run, and "
        "do the losses in your history fall?",
    )

hidden_points = 2
