"""The trusted test runner's view of a student's kernel: proxies, remote autograd, seeds.

:func:`check_remotely` runs a question's test file in the trusted process (nbgrader's, see
:mod:`tfcourse_instructor.grading.submission.execution`) with :class:`Proxy` objects in place of the
notebook's globals. Every operation on a proxy (an attribute, a call, an item, ``len``, iteration,
truth, ``isinstance``) is one request to the kernel's :mod:`tfcourse.grading_kernel.agent`, over the
:mod:`tfcourse.grading_kernel.wire` encoding; the answer is plain data, or another proxy.

So that a test reads the same values as it would inside the notebook:

- tensors go to the kernel as copies (the test keeps its own), and come back as exact
  ``torch.Tensor`` objects rebuilt from bytes;
- the test's own objects (modules, optimisers, generators, configs) go as a pickle; after
  a call, what the student's code did to them (trained weights and gradients, ``train()``
  or ``eval()`` modes, optimiser state, generator state) is written back into the originals;
- the kernel's global RNG is seeded for each call from the test's own stream (one draw
  per call), so ``torch.manual_seed`` in a test seeds the student's dropout and sampling too,
  and the kernel's RNG state never comes back into the test;
- outputs that need gradients are linked to the test's autograd graph by
  :class:`_RemoteGraph`, whose backward asks the kernel to backpropagate.

Points never come from the kernel: a kernel that does not answer in time, or answers with
anything but well-formed data, fails the case that was running and the cases after it.
"""

from __future__ import annotations

import base64
import builtins
import contextlib
import pickle
import queue
import sys
import types
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from time import monotonic
from typing import Any

import torch

from tfcourse.checking import CaseOutcome, CheckResult, check_source, run_case
from tfcourse.declarations import shortcuts
from tfcourse.grading_kernel import wire

Transport = Callable[[dict[str, str], float, Callable[[str], str]], str]
"""``transport(content, seconds, on_input)`` sends a request (the content of a
:data:`~tfcourse.grading_kernel.wire.REQUEST` message, see :func:`send_request`) to the kernel
and returns the agent's answer (wire text) within ``seconds``, or raises
:class:`KernelUnresponsive`. Meanwhile it answers the kernel's input requests with
``on_input(prompt)``: that is how the kernel calls back a function of the test."""
CALLBACK = "tfcourse-callback:"
"""Prefix of an input request that calls a test's function (:data:`agent.CALLBACK`)."""

POLL_SECONDS = 0.01
"""How often a transport looks for the kernel's input requests while it waits."""
MAX_CHUNK = 64
"""Most items of a kernel iterator asked for in one request."""


class KernelUnresponsive(Exception):
    """The kernel did not answer a request in time, or answered with malformed data."""


class RemoteError(Exception):
    """Base of the exceptions re-raised here for an exception of the student's code."""


class Session:
    """Requests to one kernel during one check, and the proxies of its objects."""

    def __init__(self, transport: Transport, deadline: float) -> None:
        self.transport = transport
        self.deadline = deadline
        self.broken: str | None = None
        """Why the kernel can no longer be trusted to answer, once it failed to."""
        self.round_trips = 0
        self.called: list[str] = []
        """The forbidden names the kernel recorded calls of during the check."""
        self._proxies: dict[int, Proxy] = {}
        self._callbacks: list[Callable[..., Any]] = []
        self._in_callback = False
        self._before: dict[str, Any] = {}
        """What the kernel does before it answers the next request (``"release_graphs"``,
        ``"watch"``): sent with that request, so each costs no round trip of its own."""

    def request(self, op: str, **fields: Any) -> Any:
        """Send one request; return the decoded answer or raise what the student's code raised."""
        answer, _ = self._send(op, fields)
        return answer

    def call(self, target: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Call a kernel object (or, in the kernel, a function of the kit) with the test's
        arguments, as :class:`Proxy` calls do."""
        return self.call_each(target, [(args, kwargs)])[0]

    def call_each(
        self, target: Any, calls: Sequence[tuple[Sequence[Any], dict[str, Any]]]
    ) -> list[Any]:
        """:meth:`call` with each (arguments, keyword arguments) of ``calls`` in turn, all in
        one request; the results, in order."""
        grad = torch.is_grad_enabled()
        sent = [[list(args), kwargs] for args, kwargs in calls]
        seeds = [_next_seed() for _ in calls]
        fields = dict(target=target, calls=sent, grad=grad, seeds=seeds)
        answer, trusted = self._send("call", fields)
        try:
            _expect(type(answer) is dict and set(answer) == {"v", "graphs", "states"})
            results, graphs = answer["v"], answer["graphs"]
            _expect(type(results) is list and type(graphs) is list, "results")
            _expect(len(results) == len(graphs) == len(calls), "results miscounted")
            _write_back(trusted, answer["states"])
            if grad:
                results = [
                    result if graph is None else self._linked(result, graph, call, trusted)
                    for result, graph, call in zip(results, graphs, sent, strict=True)
                ]
        except (TypeError, ValueError, KeyError, RuntimeError) as error:
            raise self._break(f"malformed answer to a call: {error}") from None
        return results

    def proxy(self, handle: wire.Handle) -> Proxy:
        """The one proxy of a kernel object (so that ``is`` compares kernel objects)."""
        found = self._proxies.get(handle.number)
        if found is None:
            found = self._proxies[handle.number] = Proxy(self, handle)
        return found

    def watch(self, names: list[str], tested: list[str]) -> None:
        """From the next request on, the kernel records calls of the callables ``names``
        (``tested``: the notebook's names the tests call); :meth:`close` answers them."""
        self._before["watch"] = [names, tested]

    def release_graphs(self) -> None:
        """Before the next request, the kernel drops the autograd graphs it keeps for this
        session's outputs."""
        self._before["release_graphs"] = True

    def close(self) -> Any:
        """Let the kernel drop every object and graph it keeps for this session; its answer:
        the forbidden names it recorded calls of since :meth:`watch` (a list, if well formed)."""
        self._proxies.clear()
        if self.broken is None:
            return self.request("release")
        return None

    def _send(self, op: str, fields: dict[str, Any]) -> tuple[Any, list[Any]]:
        if self.broken is not None:
            raise KernelUnresponsive(self.broken)
        if self._in_callback:
            raise RuntimeError("a test's function called from the notebook cannot use it")
        trusted: list[Any] = []

        def other(value: Any) -> Any:
            if type(value) is Proxy:
                if object.__getattribute__(value, "_session") is not self:
                    raise wire.WireError("a proxy of another check")
                return wire.tree(object.__getattribute__(value, "_handle"))
            if isinstance(value, types.FunctionType) and not _importable(value):
                if value not in self._callbacks:
                    self._callbacks.append(value)
                return {"$": "callback", "v": self._callbacks.index(value)}
            trusted.append(value)
            return {"$": "pickle", "v": len(trusted) - 1}

        # Gradients do not cross with the tensors: the kernel's copies start without any, and
        # what backward adds there comes back. Those of trusted modules go along (pickles
        # leave them out).
        message = {"op": op, **fields, **({"before": self._before} if self._before else {})}
        text = wire.encode(message, other=other, grads=False)
        try:
            blob = base64.b64encode(pickle.dumps(trusted)).decode("ascii") if trusted else ""
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise TypeError(f"the test cannot send this to the notebook: {error}") from None
        grads = wire.encode([_gradients(obj) for obj in trusted]) if trusted else ""
        seconds = self.deadline - monotonic()
        if seconds <= 0:
            raise self._break("the check ran out of time")
        self.round_trips += 1
        self._before = {}  # sent now (a request that could not be sent left it for the next)
        try:
            content = {"request": text, "pickled": blob, "grads": grads}
            reply = self.transport(content, seconds, self._serve_callback)
            answer = wire.decode(reply, handle=self.proxy)
        except KernelUnresponsive as error:
            raise self._break(str(error)) from None
        except wire.WireError as error:
            raise self._break(f"malformed answer: {error}") from None
        if type(answer) is dict and set(answer) == {"ok"}:
            return answer["ok"], trusted
        if type(answer) is dict and set(answer) == {"error"}:
            error = answer["error"]
            if type(error) is list and len(error) == 2 and all(type(e) is str for e in error):
                raise _remote_error(error[0])
        raise self._break("malformed answer: neither a value nor an error")

    def _serve_callback(self, prompt: str) -> str:
        """Run the test's function the kernel calls, with the plain data it sent."""
        try:
            if not prompt.startswith(CALLBACK):
                raise wire.WireError("an input request that is not a callback")
            request = wire.decode(prompt[len(CALLBACK) :])
            _expect(type(request) is dict and set(request) == {"callback", "args", "kwargs"})
            function = self._callbacks[request["callback"]]
            _expect(type(request["args"]) is list and type(request["kwargs"]) is dict)
            self._in_callback = True
            try:
                return wire.encode({"ok": function(*request["args"], **request["kwargs"])})
            finally:
                self._in_callback = False
        except Exception as error:
            return wire.encode({"error": f"{type(error).__name__}: {error}"[:2000]})

    def _break(self, why: str) -> KernelUnresponsive:
        self.broken = self.broken or f"the notebook's kernel did not answer properly ({why})"
        return KernelUnresponsive(self.broken)

    def _linked(self, result: Any, graph: Any, sent: list[Any], trusted: list[Any]) -> Any:
        """``result`` with its differentiable tensors made outputs of a :class:`_RemoteGraph`
        whose inputs are the test's tensors that require gradients."""
        _expect(type(graph) is list and len(graph) == 2 and all(type(g) is int for g in graph))
        outputs = [t for t in wire.flat_tensors(result) if t.requires_grad]
        _expect(len(outputs) == graph[1], "differentiable outputs miscounted")
        inputs = [t for t in wire.flat_tensors(sent) if t.requires_grad]
        for tensor in outputs:
            tensor.requires_grad_(False)
        link = _Link(self, graph[0], outputs, inputs, trusted)
        anchor = torch.zeros((), requires_grad=True)  # outputs need gradients even if no input does
        linked = dict(zip(map(id, outputs), _RemoteGraph.apply(link, anchor, *inputs), strict=True))
        return _replace_tensors(result, linked)


class Proxy:
    """A kernel object, seen from the test runner: each operation is a request."""

    __slots__ = ("__weakref__", "_handle", "_session")

    def __init__(self, session: Session, handle: wire.Handle) -> None:
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_handle", handle)

    def _ask(self, op: str, **fields: Any) -> Any:
        return object.__getattribute__(self, "_session").request(op, target=self, **fields)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # copy, pickle and numpy probe for these
        return self._ask("getattr", name=name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._ask("setattr", name=name, value=value)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return object.__getattribute__(self, "_session").call(self, args, kwargs)

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key=key)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._ask("setitem", key=key, value=value)

    def __len__(self) -> int:
        return _exact(self._ask("len"), int)

    def __bool__(self) -> bool:
        return _exact(self._ask("bool"), bool)

    def __contains__(self, item: Any) -> bool:
        return _exact(self._ask("contains", item=item), bool)

    def __iter__(self) -> Iterator[Any]:
        iterator = self._ask("iter")
        if type(iterator) is not Proxy:
            raise TypeError("the notebook answered iter() with data")
        # Items come in chunks that double in size: one request per chunk, and a loop that
        # stops early has the kernel's iterator run ahead by at most as many items as it read.
        count = 1
        while True:
            items, exhausted = iterator._next_items(count)
            yield from items
            if exhausted:
                return
            count = min(2 * count, MAX_CHUNK)

    def __next__(self) -> Any:
        items, _ = self._next_items(1)
        if not items:
            raise StopIteration
        return items[0]

    def _next_items(self, count: int) -> tuple[list[Any], bool]:
        """Up to ``count`` next items of this kernel iterator, and whether it is exhausted."""
        found = self._ask("next", count=count)
        if not (
            type(found) is list
            and len(found) == 2
            and type(found[0]) is list
            and len(found[0]) <= count
            and type(found[1]) is bool
        ):
            raise TypeError("the notebook answered next() with malformed data")
        return found[0], found[1]

    def __eq__(self, other: object) -> bool:
        # An object of the notebook equals itself only: whether it equals a value is decided
        # here, never by its own ``__eq__``, which the notebook wrote.
        return other is self

    def __ne__(self, other: object) -> bool:
        return other is not self

    __hash__ = object.__hash__

    def _call_in_notebook(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """What :func:`tfcourse.assertions.call_beside` asks: ``function`` runs in the kernel."""
        return object.__getattribute__(self, "_session").call(function, args, kwargs)

    def _call_each_in_notebook(self, calls: Sequence[Sequence[Any]]) -> list[Any]:
        """What :func:`tfcourse.assertions.call_each` asks: this function of the notebook
        called with each of ``calls``, in one request."""
        session = object.__getattribute__(self, "_session")
        return session.call_each(self, [(tuple(args), {}) for args in calls])

    def _isinstance_in_notebook(self, kind: type) -> bool:
        """What :func:`tfcourse.assertions.is_instance` asks: ``isinstance`` in the kernel."""
        return _exact(self._ask("isinstance", kind=kind), bool)

    def __instancecheck__(self, instance: Any) -> bool:
        session = object.__getattribute__(self, "_session")
        return _exact(session.request("isinstance", target=instance, kind=self), bool)

    def __repr__(self) -> str:
        try:
            return _exact(self._ask("repr"), str)
        except Exception:  # a failure message must not fail on its own
            return "<object of the notebook>"

    def __reduce_ex__(self, protocol: Any) -> Any:
        raise TypeError("an object of the notebook cannot be copied into the test")


class RemoteGlobals(MutableMapping[str, Any]):
    """The notebook's globals, as the ``env`` of a test case.

    The names ``tested`` (those the cases take as arguments) are all looked up in the first
    request for any of them, and each lookup then decodes its value afresh: a test file's
    cases ask for the same few names one after the other, each lookup a request otherwise.
    So every case gets the values bound at that first request, unless the test itself binds
    or deletes the name: if the student's code rebinds a tested name while it is tested, the
    later cases still test what the notebook had defined. :meth:`update` binds several names
    in one request."""

    def __init__(self, session: Session, tested: Sequence[str] = ()) -> None:
        self.session = session
        self.tested = tuple(tested)
        self._found: dict[str, str | None] | None = None
        """The wire text of each tested name's value (None: unbound), once looked up; a name
        the test binds or deletes leaves it."""

    def __getitem__(self, name: str) -> Any:
        if name not in self.tested or (self._found is not None and name not in self._found):
            return self.session.request("global", name=name)
        if self._found is None:
            found = self.session.request("globals", names=list(self.tested))
            if not (
                type(found) is list
                and len(found) == len(self.tested)
                and all(text is None or type(text) is str for text in found)
            ):
                raise self.session._break("malformed answer to a lookup")
            self._found = dict(zip(self.tested, found, strict=True))
        text = self._found[name]
        if text is None:
            raise KeyError(name)
        try:
            return wire.decode(text, handle=self.session.proxy)
        except wire.WireError as error:
            raise self.session._break(f"malformed answer: {error}") from None

    def __setitem__(self, name: str, value: Any) -> None:
        self._forget(name)
        self.session.request("setglobal", name=name, value=value)

    def __delitem__(self, name: str) -> None:
        self._forget(name)
        self.session.request("delglobal", name=name)

    def update(self, other: Any = (), /, **more: Any) -> None:  # type: ignore[override]
        """Bind every name of ``other`` (a mapping or pairs) and ``more``, in one request."""
        values = {**dict(other), **more}
        for name in values:
            self._forget(name)
        self.session.request("setglobals", values=values)

    def _forget(self, name: str) -> None:
        if self._found is not None:
            self._found.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return _exact(self.session.request("has", name=name), bool)

    def __iter__(self) -> Iterator[str]:
        return iter(_exact(self.session.request("names"), list))

    def __len__(self) -> int:
        return len(_exact(self.session.request("names"), list))


def send_request(client: Any, content: dict[str, str]) -> str:
    """Send a :data:`~tfcourse.grading_kernel.wire.REQUEST` message of ``content`` on the
    shell channel of a jupyter_client ``client``; its message id."""
    message = client.session.msg(wire.REQUEST, content)
    client.shell_channel.send(message)
    return str(message["header"]["msg_id"])


def answer_of(reply: dict[str, Any]) -> str:
    """The agent's answer in the kernel's reply message, or :class:`KernelUnresponsive`."""
    try:
        if reply["msg_type"] != wire.REPLY:
            raise KernelUnresponsive("the kernel's reply is not an answer")
        text = reply["content"]["answer"]
    except (KeyError, TypeError):
        raise KernelUnresponsive("the kernel's reply holds no answer") from None
    if type(text) is not str:
        raise KernelUnresponsive("the kernel's answer is not text")
    return text


def blocking_transport(client: Any) -> Transport:
    """A transport over a jupyter_client ``BlockingKernelClient`` (tests, benchmarks)."""

    def ask(content: dict[str, str], seconds: float, on_input: Callable[[str], str]) -> str:
        msg_id = send_request(client, content)
        deadline = monotonic() + seconds
        while (left := deadline - monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                reply = client.get_shell_msg(timeout=min(left, POLL_SECONDS))
                if reply["parent_header"].get("msg_id") == msg_id:
                    return answer_of(reply)
            while client.stdin_channel.msg_ready():
                asked = client.get_stdin_msg(timeout=0)
                client.input(on_input(str(asked["content"].get("prompt", ""))))
        raise KernelUnresponsive(f"no answer within {seconds:.0f} s")

    return ask


def type_name(value: Any) -> str:
    """The name of ``value``'s type, asked of the kernel for a proxy."""
    if type(value) is Proxy:
        return _exact(value._ask("typename"), str)
    return type(value).__name__


def check_remotely(
    question: str,
    source: str,
    transport: Transport,
    seconds: float,
    forbidden: Sequence[str] = (),
) -> tuple[CheckResult, Session]:
    """Run the test file text ``source`` of ``question`` here, against the kernel behind
    ``transport``, within ``seconds``. The session tells whether the kernel broke down, and
    which of the callables ``forbidden`` names the kernel recorded calls of meanwhile
    (:mod:`tfcourse.declarations.callwatch`; a record kept by the student's process, so a
    backstop)."""
    session = Session(transport, monotonic() + seconds)
    tested = shortcuts.names_tested(source)
    env = RemoteGlobals(session, tested)
    if forbidden:
        session.watch(list(forbidden), tested)

    def run(case: Any, env: Mapping[str, Any]) -> CaseOutcome:
        if session.broken is None:
            with contextlib.suppress(KernelUnresponsive):  # it broke the session: below
                outcome = run_case(case, env)
            session.release_graphs()
        if session.broken is None:
            return outcome
        return CaseOutcome(case.name, float(case.points), case.hidden, False, session.broken)

    result = check_source(question, source, env, f"tests/{question}.py", run)
    with contextlib.suppress(Exception):  # a kernel that breaks now costs no points
        called = session.close()
        session.called = [name for name in forbidden if type(called) is list and name in called]
    return result, session


class _Link:
    """What a :class:`_RemoteGraph` needs to ask the kernel for gradients."""

    def __init__(
        self,
        session: Session,
        graph: int,
        outputs: list[torch.Tensor],
        inputs: list[torch.Tensor],
        trusted: list[Any],
    ) -> None:
        self.session = session
        self.graph = graph
        self.outputs = outputs
        self.inputs = inputs
        self.trusted = trusted


class _RemoteGraph(torch.autograd.Function):
    """Outputs computed in the kernel; their backward runs there too."""

    @staticmethod
    def forward(ctx: Any, link: _Link, anchor: torch.Tensor, *inputs: torch.Tensor) -> Any:
        ctx.link = link
        ctx.mark_non_differentiable(*[t for t in link.outputs if not _differentiable(t)])
        return tuple(link.outputs)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, *grads: torch.Tensor) -> Any:
        link: _Link = ctx.link
        answer = link.session.request("backward", graph=link.graph, grads=list(grads))
        try:
            _expect(type(answer) is dict and set(answer) == {"grads", "states"})
            found = answer["grads"]
            _expect(type(found) is list and len(found) == len(link.inputs), "gradients miscounted")
            for grad, tensor in zip(found, link.inputs, strict=True):
                _expect(grad is None or grad.shape == tensor.shape, "gradient of the wrong shape")
            _write_back(link.trusted, answer["states"])
        except (TypeError, ValueError, KeyError, AttributeError, RuntimeError) as error:
            raise link.session._break(f"malformed gradients: {error}") from None
        grads_in = [
            None if g is None else g.to(t.dtype) for g, t in zip(found, link.inputs, strict=True)
        ]
        return (None, None, *grads_in)


def _importable(function: types.FunctionType) -> bool:
    """True if the kernel can import ``function`` by name (a pickle of it is a reference)."""
    found: Any = sys.modules.get(function.__module__)
    for part in function.__qualname__.split("."):
        found = getattr(found, part, None)
    return found is function


def _gradients(obj: Any) -> dict[str, torch.Tensor] | None:
    if not isinstance(obj, torch.nn.Module):
        return None
    return {name: p.grad for name, p in obj.named_parameters() if p.grad is not None}


def _differentiable(tensor: torch.Tensor) -> bool:
    return tensor.dtype.is_floating_point or tensor.dtype.is_complex


def _replace_tensors(value: Any, linked: dict[int, torch.Tensor]) -> Any:
    if isinstance(value, torch.Tensor):
        return linked.get(id(value), value)
    if type(value) is list:
        return [_replace_tensors(item, linked) for item in value]
    if type(value) is tuple:
        return tuple(_replace_tensors(item, linked) for item in value)
    if type(value) is dict:
        return {key: _replace_tensors(item, linked) for key, item in value.items()}
    return value


def _next_seed() -> int:
    """A seed for the kernel's global RNG during one call, drawn from the test's own stream
    (which it advances): the student's draws follow ``torch.manual_seed`` in the test, two
    calls draw differently, and nothing the kernel does to its RNG reaches the test."""
    return int(torch.randint(0, 2**62, (), dtype=torch.int64))


def _write_back(trusted: list[Any], states: Any) -> None:
    """Put into the test's objects what the student's code did to their copies."""
    _expect(type(states) is list and len(states) == len(trusted), "states miscounted")
    for obj, state in zip(trusted, states, strict=True):
        if isinstance(obj, torch.nn.Module):
            _write_module(obj, state)
        elif isinstance(obj, torch.optim.Optimizer):
            _expect(type(state) is dict and set(state) == {"optimizer"}, "optimizer state")
            obj.load_state_dict(state["optimizer"])
        elif isinstance(obj, torch.Generator):
            _expect(type(state) is dict and set(state) == {"generator"}, "generator state")
            _expect(type(state["generator"]) is torch.Tensor, "generator state")
            obj.set_state(state["generator"])


def _write_module(module: torch.nn.Module, state: Any) -> None:
    _expect(type(state) is dict and set(state) == {"params", "buffers", "training"}, "module")
    params, buffers, training = state["params"], state["buffers"], state["training"]
    _expect(all(type(part) is dict for part in (params, buffers, training)), "module state")
    with torch.no_grad():
        for name, parameter in module.named_parameters():
            if name in params:
                value, grad, requires = params[name]
                parameter.copy_(_exact(value, torch.Tensor))
                _expect(grad is None or type(grad) is torch.Tensor, "gradient")
                parameter.grad = None if grad is None else grad.to(parameter.dtype)
                parameter.requires_grad_(_exact(requires, bool))
        for name, buffer in module.named_buffers():
            if name in buffers:
                buffer.copy_(_exact(buffers[name], torch.Tensor))
    for name, submodule in module.named_modules():
        if name in training:
            submodule.training = _exact(training[name], bool)


_ERRORS: dict[str, type[Exception]] = {}


def _remote_error(name: str) -> Exception:
    """An exception of the student's code, re-raised here: a subclass of the builtin of that
    name (so ``except KeyError`` and ``AttributeError`` work as in the notebook). Its message
    is the kit's: the message the kernel sends was composed while graded, by the student's
    code, and never reaches feedback."""
    base = getattr(builtins, name, None)
    if not (isinstance(base, type) and issubclass(base, Exception)):
        name, base = "Exception", Exception
    if name not in _ERRORS:
        _ERRORS[name] = type(name, (base, RemoteError), {"__module__": "notebook"})
    return _ERRORS[name](
        "raised in the notebook while graded (its message is not shown here: run the "
        "check in your notebook to see it)"
    )


def _exact(value: Any, kind: type) -> Any:
    if type(value) is not kind:
        raise TypeError(f"expected {kind.__name__} from the notebook, got {type(value).__name__}")
    return value


def _expect(condition: bool, what: str = "unexpected answer") -> None:
    if not condition:
        raise ValueError(what)
