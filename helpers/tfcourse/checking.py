"""In-notebook checks: run a question's otter test file and report each test case.

``Grader("tests").check("q1_sdpa")`` loads ``tests/q1_sdpa.py`` (otter's exception format),
runs every test case against the notebook's globals and returns a :class:`CheckResult`.

A student sees a report (HTML in JupyterLab and Colab, text elsewhere): which case passed,
and for a failed public case what was expected and what came back. Output from the code under
test is swallowed. When graded, the kit runs the test files itself and writes the test cells'
outputs (:mod:`tfcourse_instructor.grading.submission.execution`); this module only serves students.

nbgrader's *Validate* button and ``nbgrader validate`` (``NBGRADER_VALIDATING`` is set) read a
test cell's standard error as its failure and a value it returns as its points. There a check
shows its report instead of returning it: on standard error when a public case failed, so
validation names the check and the case (with no traceback), and displayed otherwise, so a
correct notebook validates without a "partial credit" complaint about points that only the
hidden tests can award, and without a warning about a value that is not a number. Its lines
are wrapped to :data:`VALIDATION_WIDTH`: ``nbgrader validate`` cuts longer ones short, which
would drop what was expected and what came back.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import html
import inspect
import io
import os
import sys
import textwrap
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tqdm.auto

from tfcourse.declarations import shortcuts
from tfcourse.declarations.callwatch import CallWatch
from tfcourse.declarations.hidden_points import read_hidden_points

VALIDATING_VARIABLE = "NBGRADER_VALIDATING"
"""Set by nbgrader while it validates a notebook (its Validate button, ``nbgrader validate``)."""
VALIDATION_WIDTH = 80
"""Columns of a report shown to nbgrader's validation: ``nbgrader validate`` indents each line
by 4 and cuts it at 87 (its default width of 90, less 3 for "...")."""


@dataclass(frozen=True)
class CaseOutcome:
    """The outcome of one test case."""

    name: str
    points: float
    hidden: bool
    passed: bool
    message: str = ""


@dataclass(frozen=True)
class CheckResult:
    """All test cases of one question; displays as a report."""

    question: str
    cases: tuple[CaseOutcome, ...]
    hidden_points: float = 0.0
    """Points of hidden cases that are not in this test file (they run when graded)."""
    shortcut: str = ""
    """Why the question earns nothing whatever its cases did: its solution calls what the
    question forbids (:func:`tfcourse.declarations.shortcuts.verdict`)."""

    @property
    def score(self) -> float:
        """Points earned: the sum over passed cases, or 0 for a forbidden shortcut."""
        if self.shortcut:
            return 0.0
        return sum(case.points for case in self.cases if case.passed)

    @property
    def possible(self) -> float:
        """Points available: the sum over all cases."""
        return sum(case.points for case in self.cases)

    @property
    def passed(self) -> bool:
        """True when every case passed."""
        return all(case.passed for case in self.cases)

    def outcomes(self) -> dict[str, bool]:
        """Whether each case passed, by its label in the report (hidden cases included)."""
        return {_label(case): case.passed for case in self.cases}

    def public_outcomes(self) -> dict[str, bool]:
        """Whether each public case passed, by its label in the report."""
        return {_label(case): case.passed for case in self.cases if not case.hidden}

    def report(self, width: int | None = None) -> str:
        """Plain-text report: one line per case, with the failure message of public cases;
        lines longer than ``width`` (if given) are wrapped, keeping their indentation."""
        lines = [self._headline()]
        if self.shortcut:
            lines.append(f"  {self.shortcut}")
        for case in self.cases:
            lines.append(f"  {_verdict(case)}  {_label(case)}")
            if not case.passed and case.message:
                lines.extend("          " + line for line in _shown_message(case).splitlines())
        if width is not None:
            lines = [wrapped for line in lines for wrapped in _wrapped(line, width)]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.report()

    def _repr_html_(self) -> str:
        colour = "#1a7f37" if self.passed and not self.shortcut else "#cf222e"
        rows = []
        if self.shortcut:
            rows.append(f"<div><strong>{html.escape(self.shortcut)}</strong></div>")
        for case in self.cases:
            detail = ""
            if not case.passed and case.message:
                message = html.escape(_shown_message(case))
                detail = f"<pre style='margin:2px 0 6px 2em'>{message}</pre>"
            label = html.escape(_label(case))
            rows.append(f"<div><code>{_verdict(case)}</code> {label}{detail}</div>")
        return (
            f"<div><strong style='color:{colour}'>{html.escape(self._headline())}</strong>"
            f"{''.join(rows)}</div>"
        )

    def _headline(self) -> str:
        headline = f"{self.question}: {_fmt(self.score)} / {_fmt(self.possible)} points"
        if self.hidden_points:
            headline += f" (hidden tests worth {_fmt(self.hidden_points)} more run when graded)"
        return headline


class Grader:
    """Runs the otter test files in ``tests_dir`` (by default ``tests/`` beside the notebook)."""

    def __init__(self, tests_dir: str | os.PathLike[str] = "tests") -> None:
        self.tests_dir = Path(tests_dir)

    def check(self, question: str, global_env: dict[str, Any] | None = None) -> CheckResult | None:
        """Run every test case of ``question`` against ``global_env`` (default: the caller's
        globals, i.e. the notebook's variables). Under nbgrader's validation the report is
        shown and None returned (see the module's docstring)."""
        if global_env is None:
            caller = inspect.currentframe().f_back  # type: ignore[union-attr]
            global_env = caller.f_globals  # type: ignore[union-attr]
        path = self.tests_dir / f"{question}.py"
        if not path.is_file():
            raise FileNotFoundError(
                f"No tests for {question!r}: {path} is missing. Keep the tests/ folder that came "
                "with the notebook next to it."
            )
        source = path.read_text(encoding="utf-8")
        forbidden, tested = shortcuts.forbidden_calls(source), shortcuts.names_tested(source)
        watch = CallWatch(forbidden, global_env, tested)
        watch.start()
        try:
            result = check_source(question, source, global_env, str(path))
        finally:
            called = watch.stop()
        # The kernel's history is current (a file on disk may not be saved yet) and exists in
        # every front end: the cells checked are the last run of those defining what is tested.
        history = global_env.get("In") or []
        solution, context = shortcuts.history_cells(history, tested)
        found = shortcuts.find_shortcuts(solution, context, forbidden, tested) + called
        result = dataclasses.replace(result, shortcut=shortcuts.verdict(question, found))
        if os.environ.get(VALIDATING_VARIABLE):
            _show_for_validation(result)
            return None
        return result


def _show_for_validation(result: CheckResult) -> None:
    if result.shortcut or not result.passed:
        print(result.report(VALIDATION_WIDTH), file=sys.stderr)
        return
    try:
        from IPython.display import display
    except ImportError:
        print(result.report(VALIDATION_WIDTH))
    else:
        display(result)


def check_source(
    question: str,
    source: str,
    global_env: Mapping[str, Any],
    path: str = "<string>",
    run: Callable[[Any, Mapping[str, Any]], CaseOutcome] | None = None,
) -> CheckResult:
    """Run every test case of the test file text ``source`` against ``global_env``, each with
    ``run`` (default :func:`run_case`; the trusted runner wraps it)."""
    # Imported here: otter brings nbconvert, a second of imports that a grading kernel, which
    # runs no test file, would pay for every submission.
    from otter.test_files.exception_test import ExceptionTestFile

    test_file = ExceptionTestFile.from_string(source, path=path)
    outcomes = [(run or run_case)(case, global_env) for case in test_file.test_cases]
    return CheckResult(question, tuple(outcomes), read_hidden_points(source))


@contextlib.contextmanager
def progress_bars_off(env: dict[str, Any]) -> Iterator[None]:
    """Meanwhile, the notebook's ``tqdm`` draws nothing: tests that call a student's training
    loop keep progress widgets (and their stderr text) out of the test cell."""
    missing = object()
    saved = env.get("tqdm", missing)
    env["tqdm"] = functools.partial(tqdm.auto.tqdm, disable=True)
    try:
        yield
    finally:
        if saved is missing:
            del env["tqdm"]
        else:
            env["tqdm"] = saved


_MISSING = object()


def run_case(case: Any, env: Mapping[str, Any]) -> CaseOutcome:
    """Run one otter test case quietly; a missing name or an exception fails the case."""
    body = case.body
    # Each name is looked up once (otter's call_func would look it up again): when graded,
    # every lookup is a request to the notebook's kernel.
    arguments = {
        name: env if name == "env" else env.get(name, _MISSING)
        for name in inspect.signature(body.test_func).parameters
    }
    missing = [name for name, value in arguments.items() if value is _MISSING]
    outcome = dict(name=case.name, points=float(case.points), hidden=case.hidden)
    if missing:
        names = ", ".join(f"`{name}`" for name in missing)
        message = f"{names} is not defined: run the cell that defines it, then check again."
        return CaseOutcome(**outcome, passed=False, message=message)
    try:
        with quiet():
            body.test_func(**arguments)
    except AssertionError as error:
        message = str(error) or "assertion failed"
        return CaseOutcome(**outcome, passed=False, message=message + _where(error, body))
    except Exception as error:
        message = f"your code raised {type(error).__name__}: {error}"
        return CaseOutcome(**outcome, passed=False, message=message + _where(error, body))
    return CaseOutcome(**outcome, passed=True)


def _where(error: BaseException, body: Any) -> str:
    """Where in the test file the case failed, so a student can read the inputs it used."""
    code = body.test_func.__code__
    frames = traceback.extract_tb(error.__traceback__)
    line = next(
        (frame.lineno for frame in reversed(frames) if frame.filename == code.co_filename),
        code.co_firstlineno,
    )
    return f"\n(the test: {code.co_name} in {code.co_filename}, line {line})"


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow prints, warnings and raw writes to file descriptors 1 and 2."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    saved_fds = []
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        stack.enter_context(contextlib.redirect_stderr(io.StringIO()))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            for fd in (1, 2):
                saved_fds.append((fd, os.dup(fd)))
                os.dup2(devnull, fd)
            yield
        finally:
            for fd, saved in saved_fds:
                os.dup2(saved, fd)
                os.close(saved)
            os.close(devnull)


def _wrapped(line: str, width: int) -> list[str]:
    indent = line[: len(line) - len(line.lstrip())]
    wrapped = textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_long_words=False)
    return wrapped or [line]


def _fmt(points: float) -> str:
    return f"{points:g}"


def reported_outcomes(report: str) -> dict[str, bool]:
    """Whether each case passed, by its label, as a report (:meth:`CheckResult.report`)
    says: what a notebook's stored check output showed its student."""
    found = {}
    for line in report.splitlines():
        verdict, _, label = line.strip().partition("  ")
        if verdict in ("PASSED", "FAILED") and label:
            found[label.strip()] = verdict == "PASSED"
    return found


def _verdict(case: CaseOutcome) -> str:
    return "PASSED" if case.passed else "FAILED"


def _label(case: CaseOutcome) -> str:
    hidden = " [hidden]" if case.hidden else ""
    return f"{case.name}{hidden} ({_fmt(case.points)} pt{'s' if case.points != 1 else ''})"


def _shown_message(case: CaseOutcome) -> str:
    # A hidden case's message could quote its inputs or expected values: keep it out of
    # notebooks and feedback students receive.
    return "details withheld (hidden test)" if case.hidden else case.message
