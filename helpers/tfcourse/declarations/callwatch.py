"""Record, while a question is checked, the calls its solution makes to what it forbids.

:class:`CallWatch` wraps each forbidden callable (see :mod:`.shortcuts`) where code finds
it: a function in its module and under any name of the notebook that holds it, a class at its
``__init__`` (building one is the call), a module at every function and class defined in it.
A call counts when the notebook's own code makes it (the calling frame's globals are the
notebook's namespace): the kit's code and PyTorch's may use what a question forbids, for
instance a reference layer that a test puts in place of the student's.

It runs in the process of the code it watches: the student's kernel when graded (the kit's
agent starts and stops it around a question's tests), the notebook's own process for
``grader.check``. Code written against it can undo it, so it is a backstop for calls the
reading of the code cannot see (a helper outside the solution's cells); the reading of the
code is the protection.
"""

from __future__ import annotations

import functools
import importlib
import sys
import types
from collections.abc import Callable, MutableMapping, Sequence
from typing import Any


class CallWatch:
    """Wraps the callables ``forbidden`` names while started; records which were called."""

    def __init__(
        self,
        forbidden: Sequence[str],
        namespace: MutableMapping[str, Any],
        tested: Sequence[str] = (),
    ) -> None:
        self.forbidden = tuple(forbidden)
        self.namespace = namespace
        self.tested = tuple(tested)
        """Names of the notebook the tests call: calls from the tests are not the notebook's,
        so a tested name that holds a forbidden callable (or a partial of one) counts."""
        self.called: set[str] = set()
        self._undo: list[Callable[[], None]] = []

    def start(self) -> None:
        """Put the wrappers in place."""
        wrappers: dict[int, Callable[..., Any]] = {}
        for entry in self.forbidden:
            for owner, attribute, target in _targets(entry):
                if any(_unwrapped(self.namespace.get(name)) is target for name in self.tested):
                    self.called.add(entry)
                if isinstance(target, type):
                    self._wrap_class(entry, target)
                else:
                    wrapper = wrappers.get(id(target)) or self._wrapper(entry, target)
                    wrappers[id(target)] = wrapper
                    self._replace(owner, attribute, target, wrapper)
        for name, value in list(self.namespace.items()):
            if id(value) in wrappers and callable(value):
                self._replace_in_namespace(name, value, wrappers[id(value)])

    def stop(self) -> list[str]:
        """Take the wrappers away; the forbidden entries that were called."""
        while self._undo:
            try:
                self._undo.pop()()
            except Exception:  # the watched code may have changed what was wrapped
                continue
        return sorted(self.called)

    def _wrapper(self, entry: str, target: Callable[..., Any]) -> Callable[..., Any]:
        record = self._recorder(entry)

        @functools.wraps(target)
        def watched(*args: Any, **kwargs: Any) -> Any:
            record()
            return target(*args, **kwargs)

        return watched

    def _recorder(self, entry: str) -> Callable[[], None]:
        """A function that records ``entry`` when its caller's caller is the notebook's code."""
        called, namespace = self.called, self.namespace

        def record() -> None:
            if sys._getframe(2).f_globals is namespace:
                called.add(entry)

        return record

    def _wrap_class(self, entry: str, cls: type) -> None:
        if "__watched__" in cls.__dict__:
            return
        own = cls.__dict__.get("__init__")
        init = cls.__init__
        record = self._recorder(entry)

        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            record()
            init(self, *args, **kwargs)

        try:
            cls.__init__ = __init__  # type: ignore[misc]
            cls.__watched__ = True  # type: ignore[attr-defined]
        except (TypeError, AttributeError):  # a class of C code: the reading of the code only
            return

        def undo() -> None:
            del cls.__watched__  # type: ignore[attr-defined]
            if own is None:
                del cls.__init__  # type: ignore[misc]
            else:
                cls.__init__ = own  # type: ignore[misc]

        self._undo.append(undo)

    def _replace(self, owner: Any, attribute: str, original: Any, wrapper: Any) -> None:
        try:
            setattr(owner, attribute, wrapper)
        except (TypeError, AttributeError):
            return
        self._undo.append(lambda: setattr(owner, attribute, original))

    def _replace_in_namespace(self, name: str, original: Any, wrapper: Any) -> None:
        namespace = self.namespace
        namespace[name] = wrapper

        def undo() -> None:
            if namespace.get(name) is wrapper:
                namespace[name] = original

        self._undo.append(undo)


def _unwrapped(value: Any) -> Any:
    """What a ``functools.partial`` (or a partial of a partial) calls in the end."""
    while isinstance(value, functools.partial):
        value = value.func
    return value


def _targets(entry: str) -> list[tuple[Any, str, Any]]:
    """``(owner, attribute, callable)`` for each place where ``entry`` is found: the entry
    itself, or for a module every function and class defined in it and its loaded submodules."""
    found = _lookup(entry)
    if found is None:
        return []
    owner, attribute, target = found
    if not isinstance(target, types.ModuleType):
        return [(owner, attribute, target)] if callable(target) else []
    modules = [m for n, m in list(sys.modules.items()) if n == entry or n.startswith(entry + ".")]
    targets = []
    for module in modules:
        for name, value in list(vars(module).items()):
            defined_here = getattr(value, "__module__", None) == module.__name__
            if defined_here and isinstance(value, types.FunctionType | type):
                targets.append((module, name, value))
    return targets


def _lookup(entry: str) -> tuple[Any, str, Any] | None:
    """The object ``entry`` names, with its owner and the attribute it is found under; None
    when it does not exist here (a module that is not installed, a name that moved)."""
    parts = entry.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: Any = importlib.import_module(".".join(parts[:cut]))
        except Exception:  # not a module: the rest are attributes
            continue
        owner: Any = sys.modules.get(".".join(parts[: cut - 1])) if cut > 1 else None
        try:
            for part in parts[cut:]:
                owner, found = found, getattr(found, part)
        except AttributeError:
            return None
        return owner, parts[-1], found
    return None
