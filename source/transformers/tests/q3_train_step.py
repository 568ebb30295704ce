"""Tests for q3_train_step: train_step(model, optimizer, x, y, lr, grad_clip) -> float."""

import copy

import torch
from otter.test_files import test_case

from tfcourse.assertions import expect
from tfcourse.encoder import CausalLM, EncoderConfig
from tfcourse.training import TrainConfig, make_optimizer

OK_FORMAT = False
name = "q3_train_step"


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


def gradient_norm(model):
    return torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).norm()


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


@test_case(
    name="gradients are clipped to a global norm of grad_clip, and not clipped when it is 0",
    points=1,
    hidden=True,
)
def test_clipping(train_step):
    model, optimizer, x, y = setting(1)
    unclipped = gradient_norm(reference_gradients(model, x, y)).item()
    train_step(model, optimizer, x, y, 0.0, 0.05)
    norm = gradient_norm(model).item()
    expect(
        abs(norm - 0.05) < 1e-4,
        f"gradient norm after clipping at 0.05: expected 0.05, got {norm:.4g} "
        f"(before clipping {unclipped:.4g})",
    )
    model, optimizer, x, y = setting(1)
    train_step(model, optimizer, x, y, 0.0, 0.0)
    norm = gradient_norm(model).item()
    expect(
        abs(norm - unclipped) < 1e-4 * unclipped,
        f"grad_clip=0 should not clip: expected norm {unclipped:.4g}, got {norm:.4g}",
    )


@test_case(
    name="old gradients are cleared before backward (two steps at lr 0 equal one)",
    points=1,
    hidden=True,
)
def test_zero_grad(train_step):
    model, optimizer, x, y = setting(2)
    expected = reference_gradients(model, x, y)
    train_step(model, optimizer, x, y, 0.0, 0.0)
    train_step(model, optimizer, x, y, 0.0, 0.0)  # lr 0: AdamW leaves the weights unchanged
    for (name_, p), q in zip(model.named_parameters(), expected.parameters(), strict=True):
        expect(
            p.grad is not None and torch.allclose(p.grad, q.grad, atol=1e-6),
            f"gradient of {name_} after two steps differs from one backward pass: "
            "are gradients accumulating (optimizer.zero_grad)?",
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
