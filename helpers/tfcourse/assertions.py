"""Assertions for test files whose failure messages tell a student what to fix.

Each raises ``AssertionError`` with what was checked, what was expected and what came back.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor


def expect(condition: bool, message: str) -> None:
    """Fail with ``message`` unless ``condition`` holds."""
    if not condition:
        raise AssertionError(message)


def expect_number(actual: object, expected: float, what: str) -> None:
    """Fail unless ``actual`` is a real number (not a bool) equal to ``expected``."""
    expect(
        isinstance(actual, numbers.Real) and not isinstance(actual, bool),
        f"{what}: expected a number, got {type(actual).__name__} {actual!r}",
    )
    expect(
        actual == expected,
        f"{what}: expected {expected}, got {actual} (off by {actual - expected})",
    )


def expect_tensor(actual: object, what: str) -> Tensor:
    """Fail unless ``actual`` is a tensor; return it."""
    expect(
        isinstance(actual, Tensor),
        f"{what}: expected a torch.Tensor, got {type(actual).__name__}",
    )
    return actual  # type: ignore[return-value]


def expect_shape(actual: object, shape: Sequence[int], what: str) -> None:
    """Fail unless ``actual`` is a tensor of exactly ``shape``."""
    tensor = expect_tensor(actual, what)
    expect(
        tuple(tensor.shape) == tuple(shape),
        f"{what}: expected shape {tuple(shape)}, got {tuple(tensor.shape)}",
    )


def expect_close(
    actual: object, expected: Tensor, what: str, atol: float = 1e-5, rtol: float = 0.0
) -> None:
    """Fail unless ``actual`` has ``expected``'s shape, dtype and values within
    ``atol + rtol * |expected|`` everywhere (NaN only where ``expected`` is NaN)."""
    expect_shape(actual, expected.shape, what)
    tensor: Tensor = actual  # type: ignore[assignment]
    expect(
        tensor.dtype == expected.dtype,
        f"{what}: expected dtype {expected.dtype}, got {tensor.dtype}",
    )
    tensor, expected = tensor.detach().cpu(), expected.detach().cpu()
    nan_mismatch = torch.isnan(tensor) != torch.isnan(expected)
    if nan_mismatch.any():
        index = _first_index(nan_mismatch)
        raise AssertionError(
            f"{what}: NaN where a number was expected (or the reverse) at index {index}: "
            f"expected {expected[index].item():.6g}, got {tensor[index].item():.6g}"
        )
    finite = ~torch.isnan(expected)
    error = (tensor - expected).abs().where(finite, torch.zeros_like(tensor))
    excess = error - (atol + rtol * expected.abs().where(finite, torch.zeros_like(expected)))
    if expected.numel() and excess.max() > 0:
        index = _first_index(excess == excess.max())
        raise AssertionError(
            f"{what}: values differ by up to {error.max().item():.3g} "
            f"(tolerance {atol:g} + {rtol:g}·|expected|); at index {index} "
            f"expected {expected[index].item():.6g}, got {tensor[index].item():.6g}"
        )


def _first_index(flags: Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in flags.nonzero()[0])


def is_instance(value: object, kind: type) -> bool:
    """``isinstance(value, kind)``, also for the stand-ins the grader passes to tests in place
    of the notebook's objects (:class:`tfcourse_instructor.grading.submission.remote.Proxy`): the
    notebook answers."""
    check = getattr(type(value), "_isinstance_in_notebook", None)
    return bool(check(value, kind)) if check is not None else isinstance(value, kind)


def call_beside(anchor: object, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``function(*args, **kwargs)``, run where ``anchor`` (the notebook's object) lives: while
    graded, in the student's kernel, so that a measurement of the student's code (the tensors
    it creates) measures that code. ``function`` must be importable (a function of the kit)."""
    call = getattr(type(anchor), "_call_in_notebook", None)
    return (
        call(anchor, function, *args, **kwargs) if call is not None else function(*args, **kwargs)
    )


def dataclass_copies(values: Sequence[object], kind: type) -> list[Any]:
    """A copy of each of ``values`` that is an instance of the dataclass ``kind``, built from
    its values of ``kind``'s fields; None for each that is not. While graded, the notebook's
    objects are read in one request to the student's kernel, not one per attribute."""
    anchor = next((value for value in values if hasattr(type(value), "_call_in_notebook")), None)
    found = call_beside(anchor, dataclass_fields, list(values), kind)
    return [None if fields is None else kind(**fields) for fields in found]


def dataclass_fields(values: Sequence[object], kind: type) -> list[dict[str, Any] | None]:
    """For each of ``values``: its values of the fields of the dataclass ``kind`` if it is an
    instance of ``kind``, else None (what :func:`dataclass_copies` runs beside the notebook)."""
    names = [field.name for field in dataclasses.fields(kind)]
    return [
        {name: getattr(value, name) for name in names} if isinstance(value, kind) else None
        for value in values
    ]


def call_each(function: Callable[..., Any], calls: Sequence[Sequence[Any]]) -> list[Any]:
    """``[function(*args) for args in calls]``. While graded, the notebook's ``function``
    runs every call in one request to the student's kernel, in order: a test that calls it
    many times (once per layer it builds) waits for one answer instead of one each."""
    each = getattr(type(function), "_call_each_in_notebook", None)
    return each(function, calls) if each is not None else [function(*args) for args in calls]


def gradients_recorded(function: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, bool]:
    """``function(*args, **kwargs)``, and whether any torch operation meanwhile returned a
    tensor that requires gradients (autograd recorded it). Run it with :func:`call_beside`,
    so that while graded the operations are watched where the code runs."""
    from torch.overrides import TorchFunctionMode

    recorded = False

    class Watch(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            nonlocal recorded
            result = func(*args, **(kwargs or {}))
            for item in result if isinstance(result, (tuple, list)) else (result,):
                if isinstance(item, Tensor) and item.requires_grad:
                    recorded = True
            return result

    with Watch():
        result = function(*args, **kwargs)
    return result, recorded


def forward_graph_flags(
    function: Callable[..., Any], model: Any, *args: Any, **kwargs: Any
) -> tuple[Any, list[bool]]:
    """``function(model, *args, **kwargs)``, and for each forward pass of ``model`` meanwhile,
    whether its output requires gradients (a graph was built). Run it with
    :func:`call_beside`, so that while graded the passes are watched where the code runs."""
    flags: list[bool] = []

    def record(module: Any, inputs: Any, output: Any) -> None:
        first = output[0] if isinstance(output, tuple) else output
        flags.append(bool(first.requires_grad))

    hook = model.register_forward_hook(record)
    try:
        return function(model, *args, **kwargs), flags
    finally:
        hook.remove()


def shares_parameter(module: object, first: str, second: str) -> bool:
    """True if the parameters named ``first`` and ``second`` of ``module`` are one tensor:
    ``named_parameters()`` lists a shared tensor once, so one of the names is missing."""
    names = [name for name, _ in module.named_parameters()]  # type: ignore[attr-defined]
    return (first in names) != (second in names)
