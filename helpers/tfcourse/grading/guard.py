"""Inside the grading kernel: checks that a submission's code cannot rig.

The grading kernel (:mod:`tfcourse.grading.kernel`) calls :func:`install` before any cell
of the submission runs. It reads the test files (public and hidden) into memory and takes a
snapshot of the modules the checks rely on: builtins, ``math``, ``torch``, ``numpy``,
``otter`` and ``tfcourse``. During autograde every test cell then runs :func:`check`
instead of the notebook's ``grader.check``:

- the modules, their classes and functions are put back as they were in the snapshot, so a
  submission that rebinds ``grader``, patches ``Grader.check``, an assertion helper,
  otter's test-file classes, ``AssertionError`` or ``torch.allclose`` changes nothing;
- the test file comes from memory, so editing ``tests/`` on disk changes nothing;
- the points are the text the cell displays, whatever ``NBGRADER_EXECUTION`` says.

Code that goes after the snapshot itself can still cheat: nothing inside one Python
process is proof against that. The pre-flight check flags such code for a grader
(:mod:`tfcourse.grading.preflight`).
"""

from __future__ import annotations

import contextlib
import hashlib
import sys
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tfcourse.checking import CheckResult, check_source

GUARDED_PACKAGES = ("builtins", "math", "torch", "numpy", "otter", "tfcourse")


@dataclass
class _Snapshot:
    modules: dict[str, types.ModuleType] = field(default_factory=dict)
    namespaces: dict[int, tuple[Any, dict[str, Any]]] = field(default_factory=dict)
    code: dict[int, tuple[types.FunctionType, Any, Any, Any]] = field(default_factory=dict)
    tests: dict[str, str] = field(default_factory=dict)


_SNAPSHOT = _Snapshot()


@dataclass(frozen=True)
class GradedCheck:
    """What a test cell displays while graded: the points as text, the report as HTML."""

    result: CheckResult

    def __repr__(self) -> str:
        return f"{self.result.score:g}"

    def _repr_html_(self) -> str:
        return self.result._repr_html_()


def tests_digest(tests_dir: Path) -> str:
    """A digest of the test files of ``tests_dir``: names and contents."""
    digest = hashlib.sha256()
    for path in sorted(tests_dir.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def install(tests_dir: Path, expected_digest: str) -> None:
    """Read every test file of ``tests_dir`` and snapshot the guarded modules.

    The test files must match ``expected_digest``: a kernel restarted after a crash reads
    them again, and the submission may have rewritten them before crashing it.
    """
    import numpy  # noqa: F401  (imported so that the snapshot covers them)
    import torch  # noqa: F401

    import tfcourse.assertions  # noqa: F401

    if tests_digest(tests_dir) != expected_digest:
        raise RuntimeError(f"the test files in {tests_dir} were changed: refusing to grade")
    _SNAPSHOT.tests = {
        path.stem: path.read_text(encoding="utf-8") for path in sorted(tests_dir.glob("*.py"))
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecated aliases warn when looked at
        for name, module in list(sys.modules.items()):
            if isinstance(module, types.ModuleType) and _guarded(name):
                _SNAPSHOT.modules[name] = module
                _remember(module)


def check(question: str, env: dict[str, Any]) -> GradedCheck:
    """Restore the snapshot, then run ``question``'s test file against ``env``."""
    restore()
    source = _SNAPSHOT.tests.get(question)
    if source is None:
        raise LookupError(f"no test file for {question!r} among the grading tests")
    return GradedCheck(check_source(question, source, env, f"tests/{question}.py"))


def restore() -> None:
    """Undo changes to the guarded modules: rebound or deleted names, patched or added
    class attributes, replaced function bodies. Names added to modules stay (submodules
    imported later are added that way)."""
    for name, module in _SNAPSHOT.modules.items():
        sys.modules[name] = module
    for owner, saved in _SNAPSHOT.namespaces.values():
        current = vars(owner)
        for key, value in saved.items():
            if current.get(key, _MISSING) is not value:
                with contextlib.suppress(AttributeError, TypeError):
                    setattr(owner, key, value)
        if isinstance(owner, type):  # a new class attribute can shadow an inherited one
            for key in set(current) - set(saved):
                with contextlib.suppress(AttributeError, TypeError):
                    delattr(owner, key)
    for function, code, defaults, kwdefaults in _SNAPSHOT.code.values():
        if function.__code__ is not code:
            function.__code__ = code
        if function.__defaults__ is not defaults:
            function.__defaults__ = defaults
        if function.__kwdefaults__ is not kwdefaults:
            function.__kwdefaults__ = kwdefaults


_MISSING = object()


def _guarded(name: str) -> bool:
    return name.split(".", 1)[0] in GUARDED_PACKAGES


def _remember(module: types.ModuleType) -> None:
    namespace = vars(module)
    _SNAPSHOT.namespaces[id(module)] = (module, dict(namespace))
    for value in list(namespace.values()):
        if isinstance(value, type) and _guarded(getattr(value, "__module__", "") or ""):
            _remember_class(value)
        elif type(value) is types.FunctionType and _guarded(value.__module__ or ""):
            _remember_function(value)


def _remember_class(cls: type) -> None:
    if id(cls) in _SNAPSHOT.namespaces or cls.__flags__ & (1 << 9) == 0:
        return  # seen already, or a static (C) type whose attributes cannot be set
    _SNAPSHOT.namespaces[id(cls)] = (cls, dict(vars(cls)))
    for value in list(vars(cls).values()):
        function = getattr(value, "__func__", value)
        if type(function) is types.FunctionType:
            _remember_function(function)


def _remember_function(function: types.FunctionType) -> None:
    _SNAPSHOT.code[id(function)] = (
        function,
        function.__code__,
        function.__defaults__,
        function.__kwdefaults__,
    )
