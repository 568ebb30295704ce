"""Tests for q3_train_step: train_step(model, optimizer, x, y, lr, grad_clip) -> float."""

import copy

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect
from tfcourse.encoder_config import EncoderConfig
from tfcourse.optimizer import TrainConfig, make_optimizer

from language_model import CausalLM

OK_FORMAT = False
name = "q3_train_step"
# What the solution may not call (the question scores 0 if it does; the task says so).
forbidden = [
    "tfcourse_instructor.reference",
]


def setting(seed=0, dropout=0.0):
    """A tiny model, its AdamW optimiser and one batch."""
    torch.manual_seed(seed)
    config = EncoderConfig(
        vocab_size=13, block_size=8, n_layer=1, n_head=2, d_model=16, d_ff=32, dropout=dropout
    )
    model = CausalLM(config)
    generator = torch.Generator().manual_seed(seed + 100)
    x = torch.randint(0, 13, (4, 8), generator=generator)
    y = torch.randint(0, 13, (4, 8), generator=generator)
    return model, make_optimizer(model, TrainConfig()), x, y


def reference_gradients(model, x, y):
    """Gradients of one forward and backward pass of a copy of model, in train mode."""
    twin = copy.deepcopy(model).train()
    twin.zero_grad()
    twin(x, y)[1].backward()
    return twin


@test_case(
    name="returns the loss as a float; a second step on the same batch has a lower loss; sets lr",
    points=2,
)
def test_step(train_step):
    model, optimizer, x, y = setting()
    first = train_step(model, optimizer, x, y, 1e-2, 1.0)
    expect(
        isinstance(first, float),
        f"train_step should return a Python float, got {type(first).__name__}",
    )
    second = train_step(model, optimizer, x, y, 1e-2, 1.0)
    expect(
        second < first,
        f"the loss did not fall after a step on the same batch: {first:.4f} then {second:.4f}",
    )
    rates = [group["lr"] for group in optimizer.param_groups]
    expect(
        all(rate == 1e-2 for rate in rates),
        f"expected lr 1e-2 in every parameter group, got {rates}",
    )


def sgd_update(model, optimizer, x, y, lr, grad_clip, train_step):
    """The change of every parameter made by one train_step with plain SGD, which moves each
    parameter by exactly -lr times the gradient it was given."""
    before = [p.detach().clone() for p in model.parameters()]
    train_step(model, optimizer, x, y, lr, grad_clip)
    return [p.detach() - b for p, b in zip(model.parameters(), before, strict=True)]


def expect_update(update, model, gradients, scale, what):
    for (name_, _), change, grad in zip(model.named_parameters(), update, gradients, strict=True):
        expected = -scale * grad
        error = (change - expected).abs().max().item()
        expect(
            error < 1e-6 + 1e-4 * expected.abs().max().item(),
            f"{what}: the update of {name_} differs from the expected one by {error:.3g}",
        )


@test_case(
    name="the update uses gradients clipped to a global norm of grad_clip (none when it is 0)",
    points=1,
    hidden=True,
)
def test_clipping(train_step):
    model, _, x, y = setting(1)
    gradients = [p.grad.clone() for p in reference_gradients(model, x, y).parameters()]
    unclipped = torch.cat([g.flatten() for g in gradients]).norm().item()
    for grad_clip, factor in ((0.05, 0.05 / unclipped), (0.0, 1.0)):
        model, _, x, y = setting(1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
        update = sgd_update(model, optimizer, x, y, 0.1, grad_clip, train_step)
        expect_update(
            update,
            model,
            gradients,
            0.1 * factor,
            f"grad_clip={grad_clip} (gradient norm before clipping {unclipped:.4g})",
        )


@test_case(
    name="each update uses this batch's gradient only, not ones left by earlier steps",
    points=1,
    hidden=True,
)
def test_zero_grad(train_step):
    model, _, x, y = setting(2)
    gradients = [p.grad.clone() for p in reference_gradients(model, x, y).parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    train_step(model, optimizer, x, y, 0.0, 0.0)  # lr 0: SGD leaves the weights unchanged
    update = sgd_update(model, optimizer, x, y, 0.1, 0.0, train_step)
    expect_update(
        update,
        model,
        gradients,
        0.1,
        "second step on the same batch (are gradients accumulating? optimizer.zero_grad)",
    )


@test_case(
    name="the step runs in train() mode (dropout on), even for a model left in eval()",
    points=1,
    hidden=True,
)
def test_train_mode(train_step):
    model, optimizer, x, y = setting(3, dropout=0.3)
    model.eval()
    with torch.no_grad():
        eval_loss = model(x, y)[1].item()
    loss = train_step(model, optimizer, x, y, 1e-3, 1.0)
    expect(
        loss != eval_loss,
        f"the step's loss {loss:.6f} is the eval-mode loss: dropout did not run (call train())",
    )
