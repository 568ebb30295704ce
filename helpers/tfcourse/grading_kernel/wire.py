"""The grading wire: what may cross between the trusted test runner and a student's kernel.

While a notebook is graded, the test runner (:mod:`tfcourse_instructor.grading.submission.remote`)
asks the student's kernel (:mod:`tfcourse.grading_kernel.agent`) to look up names, call functions
and read attributes, in Jupyter messages of the types :data:`REQUEST` and :data:`REPLY`.
Both directions use the encoding of this module: JSON text whose values are

================  ============================================================
JSON              Python value
================  ============================================================
null, true, 3     ``None``, ``bool``, ``int`` (exact types, never subclasses)
1.5, NaN          ``float``
"text"            ``str``
[...]             ``list``
{"$": tag, ...}   ``tuple``, ``dict``, ``bytes``, ``complex``, ``torch.Tensor``,
                  ``torch.Size``, ``torch.dtype``, a handle, or (runner to kernel
                  only) an object of the trusted side, sent as a pickle
================  ============================================================

Tagged values: ``{"$": "tuple", "v": [...]}``, ``{"$": "dict", "v": [[key, value], ...]}``
(keys: ``None``, ``bool``, ``int``, ``float``, ``str`` or tuples of them; dict subclasses
cross as dicts),
``{"$": "bytes", "v": base64}``, ``{"$": "complex", "v": [re, im]}``,
``{"$": "tensor", "dtype": "float32", "shape": [2, 3], "data": base64, "grad": bool,
"g": tensor or null}`` (dense, on the CPU: raw bytes, C order; ``grad`` is requires_grad,
``g`` the ``.grad`` it holds), ``{"$": "size", "v": [2, 3]}``, ``{"$": "dtype", "v":
"float64"}``, ``{"$": "handle", "v": 7}`` (an object that stays in the kernel, named by a
number), and from the runner only: ``{"$": "pickle", "v": 0}`` (the first object of the
request's pickle) and ``{"$": "callback", "v": 2}`` (a function of the test file, which the
kernel calls back with plain data, see :mod:`tfcourse.grading_kernel.agent`).

The decoder is strict: any other JSON object, an unknown dtype, a tensor whose bytes do not
match its shape, nesting deeper than :data:`MAX_DEPTH`, more than :data:`MAX_ITEMS` values
or a text longer than :data:`MAX_BYTES` raise :class:`WireError`. Tensors are rebuilt from
their bytes as exact ``torch.Tensor`` objects. The runner never accepts a pickle: a reply
that holds one is rejected like any other malformed reply.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from tfcourse.grading_kernel.sizes import MAX_BYTES

REQUEST = "tfcourse_request"
"""The Jupyter message type of a runner's request, on the kernel's shell channel; its content
holds the three texts :func:`tfcourse.grading_kernel.agent.serve` takes."""
REPLY = "tfcourse_reply"
"""The message type of the kernel's answer; its content is ``{"answer": text}``."""
MAX_DEPTH = 40
MAX_ITEMS = 2_000_000
"""Most values (list items, dict entries, tensor elements do not count) in one message."""
MAX_TENSOR_BYTES = 48 * 2**20

DTYPES: dict[str, torch.dtype] = {
    name: getattr(torch, name)
    for name in (
        "float16",
        "bfloat16",
        "float32",
        "float64",
        "complex64",
        "complex128",
        "uint8",
        "int8",
        "int16",
        "int32",
        "int64",
        "bool",
    )
}
_DTYPE_NAMES = {dtype: name for name, dtype in DTYPES.items()}
_SCALARS = (type(None), bool, int, float, str)


class WireError(ValueError):
    """A message that does not follow the encoding of this module."""


@dataclass(frozen=True)
class Handle:
    """An object that stays in the kernel, named by a number."""

    number: int


@dataclass(frozen=True)
class Pickled:
    """Position of a trusted object in the pickle that travels with a request."""

    index: int


@dataclass(frozen=True)
class Callback:
    """A function of the test file, by number, that the kernel may call back."""

    index: int


def encode(value: Any, other: Callable[[Any], Any] | None = None, grads: bool = True) -> str:
    """Encode ``value`` as JSON text. Values of other types go to ``other``, which returns the
    JSON tree standing for them (see :func:`tree`); without it they raise :class:`WireError`.
    ``grads``: whether tensors carry the ``.grad`` they hold."""
    return json.dumps(tree(value, other, grads), separators=(",", ":"), allow_nan=True)


def tree(value: Any, other: Callable[[Any], Any] | None = None, grads: bool = True) -> Any:
    """The JSON tree (dicts, lists, scalars) that :func:`encode` writes for ``value``."""
    return _Encoder(other, grads).value(value, 0)


def flat_tensors(value: Any) -> list[torch.Tensor]:
    """The tensors of ``value`` in the order the encoder meets them: items of lists and tuples,
    values of dicts (a kernel sends dict subclasses as dicts), tensors themselves."""
    found: list[torch.Tensor] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            found.append(item)
        elif type(item) in (list, tuple):
            stack.extend(reversed(item))
        elif isinstance(item, dict):
            stack.extend(reversed(list(dict.values(item))))
    return found


def decode(
    text: str | bytes,
    *,
    handle: Callable[[Handle], Any] = lambda handle: handle,
    pickled: Callable[[Pickled], Any] | None = None,
    callback: Callable[[Callback], Any] | None = None,
) -> Any:
    """Decode JSON text written by :func:`encode`, strictly. Handles become ``handle(Handle)``;
    pickled objects ``pickled(Pickled)`` and callbacks ``callback(Callback)``, and either is
    rejected when its function is None."""
    if not isinstance(text, (str, bytes)):
        raise WireError(f"expected text, got {type(text).__name__}")
    if len(text) > MAX_BYTES:
        raise WireError(f"message of {len(text)} bytes, more than the limit of {MAX_BYTES}")
    try:
        tree = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise WireError(f"not JSON: {str(error)[:100]}") from None
    return _Decoder(handle, pickled, callback).value(tree, 0)


def tensor_fields(tensor: torch.Tensor) -> dict[str, Any]:
    """The tagged object of a tensor: dtype, shape and raw bytes of its values (detached)."""
    plain = torch.Tensor.detach(tensor).to("cpu").contiguous()
    if plain.dtype not in _DTYPE_NAMES or plain.layout != torch.strided:
        raise WireError(f"tensors of dtype {plain.dtype} and layout {plain.layout} cannot cross")
    # Byte views would count as tensors of one entry per byte for code that measures the
    # tensors a call creates (tfcourse.theory.largest_intermediate); numpy reads them as is.
    name, shape = _DTYPE_NAMES[plain.dtype], list(plain.shape)
    if plain.dtype == torch.bfloat16:
        plain = plain.view(torch.int16)
    return {
        "$": "tensor",
        "dtype": name,
        "shape": shape,
        "data": base64.b64encode(plain.numpy().tobytes()).decode("ascii"),
        "grad": bool(tensor.requires_grad),
    }


class _Encoder:
    def __init__(self, other: Callable[[Any], Any] | None, grads: bool) -> None:
        self.other = other
        self.grads = grads

    def value(self, value: Any, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise WireError(f"nested deeper than {MAX_DEPTH}")
        kind = type(value)
        if kind in _SCALARS:
            return value
        if kind is list:
            return [self.value(item, depth + 1) for item in value]
        if kind is tuple:
            return {"$": "tuple", "v": [self.value(item, depth + 1) for item in value]}
        if isinstance(value, dict):  # subclasses (a state_dict's OrderedDict) cross as dicts
            items = [
                [self.value(key, depth + 1), self.value(item, depth + 1)]
                for key, item in dict.items(value)
            ]
            return {"$": "dict", "v": items}
        if kind is bytes:
            return {"$": "bytes", "v": base64.b64encode(value).decode("ascii")}
        if kind is complex:
            return {"$": "complex", "v": [value.real, value.imag]}
        if kind is torch.Size:
            return {"$": "size", "v": [int(n) for n in value]}
        if kind is torch.dtype and value in _DTYPE_NAMES:
            return {"$": "dtype", "v": _DTYPE_NAMES[value]}
        if isinstance(value, torch.Tensor):  # subclasses too: they cross as their plain values
            fields = tensor_fields(value)
            grad = torch.Tensor.grad.__get__(value) if self.grads and value.is_leaf else None
            fields["g"] = None if grad is None else self.value(torch.Tensor.detach(grad), depth + 1)
            return fields
        if kind is Handle:
            return {"$": "handle", "v": value.number}
        if self.other is None:
            raise WireError(f"{kind.__name__} values cannot cross")
        return self.other(value)


class _Decoder:
    def __init__(
        self,
        handle: Callable[[Handle], Any],
        pickled: Callable[[Pickled], Any] | None,
        callback: Callable[[Callback], Any] | None,
    ) -> None:
        self.handle = handle
        self.pickled = pickled
        self.callback = callback
        self.items = 0

    def value(self, tree: Any, depth: int) -> Any:
        self.items += 1
        if self.items > MAX_ITEMS:
            raise WireError(f"more than {MAX_ITEMS} values")
        if depth > MAX_DEPTH:
            raise WireError(f"nested deeper than {MAX_DEPTH}")
        if tree is None or type(tree) in (bool, str):
            return tree
        if type(tree) is int:
            return tree
        if type(tree) is float:
            return tree
        if type(tree) is list:
            return [self.value(item, depth + 1) for item in tree]
        if type(tree) is not dict or type(tree.get("$")) is not str:
            raise WireError(f"unexpected JSON value of type {type(tree).__name__}")
        tag = tree["$"]
        fields = {"tensor": {"$", "dtype", "shape", "data", "grad", "g"}}.get(tag, {"$", "v"})
        if set(tree) != fields:
            raise WireError(f"{tag!r} value with fields {sorted(tree)}")
        if tag == "tensor":
            return self.tensor(tree, depth)
        body = tree["v"]
        if tag == "tuple":
            return tuple(self.value(item, depth + 1) for item in _typed(body, list, tag))
        if tag == "dict":
            return self.mapping(_typed(body, list, tag), depth)
        if tag == "bytes":
            return _b64(body)
        if tag == "complex":
            parts = _typed(body, list, tag)
            if len(parts) != 2 or not all(type(part) in (int, float) for part in parts):
                raise WireError("complex: expected [real, imag]")
            return complex(parts[0], parts[1])
        if tag == "size":
            return torch.Size(_shape(body))
        if tag == "dtype":
            if body not in DTYPES:
                raise WireError(f"unknown dtype {str(body)[:40]!r}")
            return DTYPES[body]
        if tag == "handle":
            return self.handle(Handle(_index(body)))
        if tag == "pickle" and self.pickled is not None:
            return self.pickled(Pickled(_index(body)))
        if tag == "callback" and self.callback is not None:
            return self.callback(Callback(_index(body)))
        raise WireError(f"unexpected tag {tag[:40]!r}")

    def mapping(self, pairs: list[Any], depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for pair in pairs:
            if type(pair) is not list or len(pair) != 2:
                raise WireError("dict: expected [key, value] pairs")
            key = self.value(pair[0], depth + 1)
            if not _plain_key(key):
                raise WireError(f"dict key of type {type(key).__name__}")
            result[key] = self.value(pair[1], depth + 1)
        return result

    def tensor(self, tree: dict[str, Any], depth: int) -> torch.Tensor:
        dtype = DTYPES.get(tree["dtype"]) if type(tree["dtype"]) is str else None
        if dtype is None:
            raise WireError(f"tensor of unknown dtype {str(tree['dtype'])[:40]!r}")
        shape = _shape(tree["shape"])
        data = _b64(tree["data"])
        itemsize = torch.empty((), dtype=dtype).element_size()
        if len(data) > MAX_TENSOR_BYTES or len(data) != math.prod(shape) * itemsize:
            raise WireError(f"tensor of shape {shape} and {dtype} with {len(data)} bytes")
        if type(tree["grad"]) is not bool:
            raise WireError("tensor: requires_grad must be a bool")
        if data:
            if dtype == torch.bool:  # any byte but 0 would be an invalid bool
                tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8) != 0
            else:
                tensor = torch.frombuffer(bytearray(data), dtype=dtype)
            tensor = tensor.reshape(shape).clone()
        else:
            tensor = torch.empty(shape, dtype=dtype)
        if tree["grad"]:
            if not (dtype.is_floating_point or dtype.is_complex):
                raise WireError(f"a {dtype} tensor cannot require gradients")
            tensor.requires_grad_(True)
        if tree["g"] is not None:
            grad = self.value(tree["g"], depth + 1)
            if type(grad) is not torch.Tensor or grad.shape != tensor.shape or not tree["grad"]:
                raise WireError("tensor: .grad must be a tensor of the same shape")
            tensor.grad = grad.to(dtype)
        return tensor


def _typed(body: Any, kind: type, tag: str) -> Any:
    if type(body) is not kind:
        raise WireError(f"{tag}: expected {kind.__name__}, got {type(body).__name__}")
    return body


def _index(body: Any) -> int:
    if type(body) is not int or body < 0:
        raise WireError("expected a non-negative int")
    return body


def _shape(body: Any) -> list[int]:
    if type(body) is not list or len(body) > 16:
        raise WireError("shape: expected a list of at most 16 sizes")
    if not all(type(n) is int and 0 <= n < 2**40 for n in body):
        raise WireError("shape: sizes must be non-negative ints")
    return body


def _b64(body: Any) -> bytes:
    if type(body) is not str:
        raise WireError("expected base64 text")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise WireError("invalid base64") from None


def _plain_key(key: Any) -> bool:
    if type(key) is tuple:
        return all(_plain_key(part) for part in key)
    return type(key) in _SCALARS
