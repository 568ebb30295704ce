"""Inside a student's kernel while it is graded: answer the test runner's requests.

The trusted test runner (:mod:`tfcourse_instructor.grading.submission.remote`) sends each
request as a message of its own type, which the grading kernel
(:class:`tfcourse.grading_kernel.requests_kernel.GradingKernel`) answers with what
:func:`serve` returns for the message's three fields: the request, a
:mod:`tfcourse.grading_kernel.wire` message; the trusted objects it refers to (modules,
generators, configs of the test file), pickled in base64; and the gradients those held. The
answer is a wire message too. Objects that cannot cross as plain data stay here, in a table,
and cross as numbered handles.

Nothing here is trusted: a submission can replace this module, and all it can change is the
data the runner receives, which the runner judges.
"""

from __future__ import annotations

import base64
import pickle
import sys
from typing import Any

import torch

from tfcourse.checking import quiet
from tfcourse.declarations.callwatch import CallWatch
from tfcourse.grading_kernel import wire

CALLBACK = "tfcourse-callback:"
"""Prefix of the input requests by which the kernel calls a function of the test."""
MAX_MESSAGE = 4000
MAX_CHUNK_BYTES = 4 * 2**20
"""Once the items of an answer to ``next`` encode to this many bytes, it holds no more."""


class _Table:
    """Objects the runner holds handles to, and the autograd graphs it may backpropagate."""

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self.numbers: dict[int, int] = {}
        self.graphs: dict[int, tuple[list[torch.Tensor], list[torch.Tensor], list[Any]]] = {}
        self.failures: dict[int, Exception] = {}
        """What an iterator of the table raised after the items last answered, by its id: the
        next request for its items raises it."""
        self.counter = 0

    def keep(self, value: Any) -> wire.Handle:
        number = self.numbers.get(id(value))
        if number is None:
            self.counter += 1
            number = self.numbers[id(value)] = self.counter
            self.objects[number] = value
        return wire.Handle(number)

    def get(self, handle: wire.Handle) -> Any:
        try:
            return self.objects[handle.number]
        except KeyError:
            raise LookupError(f"no object with handle {handle.number}") from None

    def clear(self) -> None:
        self.objects.clear()
        self.numbers.clear()
        self.graphs.clear()
        self.failures.clear()


_TABLE = _Table()
_WATCHES: list[CallWatch] = []


def serve(request: str, pickled: str = "", grads: str = "") -> str:
    """The answer to one request of the runner; errors become an answer too."""
    try:
        answer: dict[str, Any] = {"ok": _answer(request, pickled, grads)}
    except Exception as error:
        answer = {"error": [type(error).__name__, _text(error)]}
    try:
        return _encode(answer)
    except Exception as error:  # an answer that cannot be encoded
        return wire.encode({"error": ["WireError", _text(error)]})


class _Callback:
    """A function of the test file: calling it asks the runner, over the kernel's stdin
    channel (the runner answers the input request), with plain data only."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from IPython import get_ipython

        request = wire.encode({"callback": self.index, "args": list(args), "kwargs": kwargs})
        answer = wire.decode(get_ipython().kernel.raw_input(CALLBACK + request))
        if "error" in answer:
            raise RuntimeError(f"the test's function raised {answer['error']}")
        return answer["ok"]

    def __repr__(self) -> str:
        return f"<function of the test, {self.index}>"


def _answer(request: str, pickled: str, grads: str) -> Any:
    trusted = pickle.loads(base64.b64decode(pickled)) if pickled else []
    for obj, found in zip(trusted, wire.decode(grads) if grads else [], strict=True):
        if found:  # the gradients a trusted module held (pickles leave them out)
            for name, parameter in obj.named_parameters():
                parameter.grad = found.get(name)
    message = wire.decode(
        request,
        handle=_TABLE.get,
        pickled=lambda p: trusted[p.index],
        callback=lambda c: _Callback(c.index),
    )
    op = message.pop("op")
    _before(**message.pop("before", {}))
    return _OPS[op](trusted=trusted, **message)


def _before(release_graphs: bool = False, watch: list[list[str]] | None = None) -> None:
    """What the runner asks done before a request: drop the autograd graphs kept so far
    (those of the test case that ended), start recording calls of forbidden callables."""
    if release_graphs:
        _TABLE.graphs.clear()
    if watch is not None:
        names, tested = watch
        _WATCHES.append(CallWatch(names, _namespace(), tested))
        _WATCHES[-1].start()


def _encode(answer: dict[str, Any]) -> str:
    """The answer as a wire message; a value that cannot cross as data crosses as a handle."""
    try:
        return wire.encode(answer, other=_data_or_handle)
    except wire.WireError:
        if "ok" not in answer:
            raise
        result = answer["ok"]
        if type(result) is dict and "v" in result:  # calls: a result that cannot cross stays
            for index, value in enumerate(result["v"]):  # here, whole
                try:
                    wire.tree(value, other=_data_or_handle)
                except wire.WireError:
                    result["v"][index], result["graphs"][index] = _TABLE.keep(value), None
            return wire.encode(answer, other=_data_or_handle)
        return wire.encode({"ok": _TABLE.keep(result)})


def _data_or_handle(value: Any) -> dict[str, Any]:
    """The exact number or string held by a subclass of int, float or str (numpy's float64);
    a handle for anything else."""
    for kind, plain in ((int, int.__int__), (float, float.__float__), (str, str.__str__)):
        if isinstance(value, kind):
            return plain(value)
    return wire.tree(_TABLE.keep(value))


def _text(error: BaseException) -> str:
    try:
        return str(error)[:MAX_MESSAGE]
    except Exception:
        return "(no message)"


# The operations. Each takes the decoded fields of the request as keyword arguments.


def _global(name: str, trusted: list[Any]) -> Any:
    namespace = _namespace()
    if name not in namespace:
        raise KeyError(name)
    return namespace[name]


def _globals(names: list[str], trusted: list[Any]) -> list[str | None]:
    """Each of ``names``' value in the notebook as a wire message of its own (None if the
    name is unbound): a value that cannot cross as data crosses as a handle, whatever the
    others."""
    namespace = _namespace()
    return [_crossing(namespace[name])[0] if name in namespace else None for name in names]


def _has(name: str, trusted: list[Any]) -> bool:
    return name in _namespace()


def _names(trusted: list[Any]) -> list[str]:
    return [name for name in _namespace() if type(name) is str]


def _set_global(name: str, value: Any, trusted: list[Any]) -> None:
    _namespace()[name] = value


def _set_globals(values: dict[str, Any], trusted: list[Any]) -> None:
    _namespace().update(values)


def _del_global(name: str, trusted: list[Any]) -> None:
    del _namespace()[name]


def _getattr(target: Any, name: str, trusted: list[Any]) -> Any:
    return getattr(target, name)


def _setattr(target: Any, name: str, value: Any, trusted: list[Any]) -> None:
    setattr(target, name, value)


def _getitem(target: Any, key: Any, trusted: list[Any]) -> Any:
    return target[key]


def _setitem(target: Any, key: Any, value: Any, trusted: list[Any]) -> None:
    target[key] = value


def _len(target: Any, trusted: list[Any]) -> int:
    return len(target)


def _iter(target: Any, trusted: list[Any]) -> wire.Handle:
    return _TABLE.keep(iter(target))


def _next(target: Any, count: int, trusted: list[Any]) -> list[Any]:
    """Up to ``count`` next items of the iterator ``target`` (fewer once they would make a
    long answer), and whether it is exhausted. An exception raised after some items is
    raised by the next request instead, as it would have been when the runner reached it."""
    if (failure := _TABLE.failures.pop(id(target), None)) is not None:
        raise failure
    items: list[Any] = []
    size = 0
    while len(items) < count and size < MAX_CHUNK_BYTES:
        try:
            item = next(target)
        except StopIteration:
            return [items, True]
        except Exception as error:
            if not items:
                raise
            _TABLE.failures[id(target)] = error
            break
        text, item = _crossing(item)
        size += len(text)
        items.append(item)
    return [items, False]


def _crossing(value: Any) -> tuple[str, Any]:
    """``value`` encoded, and what crosses: ``value`` itself if it can cross as data, else
    a handle to it (also when reading it raises: the student's objects may)."""
    try:
        return wire.encode(value, other=_data_or_handle), value
    except Exception:
        handle = _TABLE.keep(value)
        return wire.encode(handle), handle


def _bool(target: Any, trusted: list[Any]) -> bool:
    return bool(target)


def _contains(target: Any, item: Any, trusted: list[Any]) -> bool:
    return item in target


def _isinstance(target: Any, kind: Any, trusted: list[Any]) -> bool:
    return isinstance(target, kind)


def _repr(target: Any, trusted: list[Any]) -> str:
    return repr(target)[:MAX_MESSAGE]


def _type_name(target: Any, trusted: list[Any]) -> str:
    return type(target).__name__


def _call(
    target: Any,
    calls: list[list[Any]],
    grad: bool,
    seeds: list[int],
    trusted: list[Any],
) -> dict[str, Any]:
    """Call ``target`` with each ``[args, kwargs]`` of ``calls`` in turn, the global RNG
    seeded with the matching seed of ``seeds``; keep the autograd graph of outputs that need
    gradients; answer the results, their graphs and the state of the trusted arguments."""
    results, graphs = [], []
    for (args, kwargs), seed in zip(calls, seeds, strict=True):
        torch.manual_seed(seed)
        with quiet(), torch.set_grad_enabled(grad):
            result = target(*args, **kwargs)
        outputs = [t for t in wire.flat_tensors(result) if t.requires_grad]
        graph = None
        if grad and outputs:
            inputs = [t for t in wire.flat_tensors([args, kwargs]) if t.requires_grad]
            _TABLE.counter += 1
            graph = [_TABLE.counter, len(outputs)]
            _TABLE.graphs[_TABLE.counter] = (outputs, inputs, trusted)
        results.append(result)
        graphs.append(graph)
    return {"v": results, "graphs": graphs, "states": _states(trusted)}


def _backward(graph: int, grads: list[Any], trusted: list[Any]) -> dict[str, Any]:
    """Backpropagate ``grads`` from the outputs of ``graph``: gradients accumulate in the
    notebook's parameters; those of the inputs are answered (and cleared here)."""
    outputs, inputs, objects = _TABLE.graphs[graph]
    pairs = [(out, g) for out, g in zip(outputs, grads, strict=True) if g is not None]
    with quiet():
        torch.autograd.backward(
            [out for out, _ in pairs], [g.to(out.dtype) for out, g in pairs], retain_graph=True
        )
    found = []
    for tensor in inputs:
        found.append(tensor.grad)
        tensor.grad = None
    return {"grads": found, "states": _states(objects)}


def _release(trusted: list[Any]) -> list[str]:
    """Drop every object and graph of the session; stop recording calls: the forbidden
    names that were called meanwhile."""
    _TABLE.clear()
    called: set[str] = set()
    while _WATCHES:
        called.update(_WATCHES.pop().stop())
    return sorted(called)


def _states(objects: list[Any]) -> list[Any]:
    """What the runner writes back into its own copies of the trusted objects."""
    return [_state(obj) for obj in objects]


def _state(obj: Any) -> Any:
    if isinstance(obj, torch.nn.Module):
        return {
            "params": {
                name: [p.detach(), p.grad, p.requires_grad] for name, p in obj.named_parameters()
            },
            "buffers": {name: b.detach() for name, b in obj.named_buffers()},
            "training": {name: m.training for name, m in obj.named_modules()},
        }
    if isinstance(obj, torch.optim.Optimizer):
        return {"optimizer": obj.state_dict()}
    if isinstance(obj, torch.Generator):
        return {"generator": obj.get_state()}
    return None


def _namespace() -> dict[str, Any]:
    from IPython import get_ipython

    shell = get_ipython()
    return shell.user_ns if shell is not None else vars(sys.modules["__main__"])


_OPS = {
    "global": _global,
    "globals": _globals,
    "has": _has,
    "names": _names,
    "setglobal": _set_global,
    "setglobals": _set_globals,
    "delglobal": _del_global,
    "getattr": _getattr,
    "setattr": _setattr,
    "getitem": _getitem,
    "setitem": _setitem,
    "len": _len,
    "iter": _iter,
    "next": _next,
    "bool": _bool,
    "contains": _contains,
    "isinstance": _isinstance,
    "repr": _repr,
    "typename": _type_name,
    "call": _call,
    "backward": _backward,
    "release": _release,
}
