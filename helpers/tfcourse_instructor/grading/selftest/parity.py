"""Does the trusted runner reach the verdicts a check inside the notebook reaches?

:func:`compare_notebook` runs a notebook's cells in a fresh kernel; at each test cell it
checks the question twice, inside the kernel (what ``grader.check`` does for a student) and
from this process through :mod:`tfcourse_instructor.grading.submission.remote`, and records both
outcomes of every case. ``python -m tfcourse_instructor.grading parity [SAMPLE ...]`` does so
for the sample submissions (:mod:`tfcourse_instructor.grading.selftest.samples`) and prints every
case whose outcomes differ.
"""

from __future__ import annotations

import ast
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from time import monotonic

import nbformat
from jupyter_client.manager import start_new_kernel

from tfcourse_instructor.grading.course import Course, import_given
from tfcourse_instructor.grading.selftest.samples import SAMPLES
from tfcourse_instructor.grading.submission import remote
from tfcourse_instructor.grading.submission.execution import checked_question

CELL_SECONDS = 300


@dataclass
class QuestionParity:
    """Per-case outcomes of one question, checked both ways: (case name, passed)."""

    question: str
    in_kernel: list[tuple[str, bool]]
    remote: list[tuple[str, bool]]
    messages: dict[str, str] = field(default_factory=dict)
    """Remote failure messages of the cases whose outcomes differ."""
    seconds: tuple[float, float] = (0.0, 0.0)
    round_trips: int = 0

    @property
    def same(self) -> bool:
        return self.in_kernel == self.remote


KERNEL_CLASS = "--IPKernelApp.kernel_class=tfcourse.grading_kernel.requests_kernel.GradingKernel"
"""What makes the installed ``python3`` kernel answer the trusted runner, as a grading kernel
does (without the grading kernel's limits and sandbox)."""


class Kernel:
    """A kernel started with jupyter_client in ``folder``, with the graded environment."""

    def __init__(self, folder: Path) -> None:
        env = {**os.environ, "NBGRADER_EXECUTION": "autograde", "OMP_NUM_THREADS": "1"}
        self.manager, self.client = start_new_kernel(
            kernel_name="python3", cwd=str(folder), env=env, extra_arguments=[KERNEL_CLASS]
        )

    def run(self, source: str) -> None:
        """Run a cell; its outputs are not kept."""
        self.client.execute_interactive(source, timeout=CELL_SECONDS, output_hook=lambda msg: None)

    def evaluate(self, expression: str) -> object:
        """The value of a literal-valued expression in the kernel."""
        reply = self.client.execute_interactive(
            "", user_expressions={"r": f"repr({expression})"}, output_hook=lambda msg: None
        )
        found = reply["content"]["user_expressions"]["r"]
        if found["status"] != "ok":
            raise RuntimeError(f"{expression}: {found.get('ename')}: {found.get('evalue')}")
        return ast.literal_eval(ast.literal_eval(found["data"]["text/plain"]))

    def stop(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=True)


def compare_notebook(
    notebook: nbformat.NotebookNode, course: Course, questions: set[str] | None = None
) -> list[QuestionParity]:
    """Run ``notebook`` (of ``course``'s assignment) cell by cell beside the modules the
    assignment gives; check its questions (all, or ``questions``) both ways."""
    results = []
    tests_dir = course.tests_dir
    import_given(course.given_dir)
    with tempfile.TemporaryDirectory(prefix="tfcourse-parity-") as scratch:
        folder = Path(scratch)
        shutil.copytree(tests_dir, folder / "tests")
        course.copy_given_modules(folder)
        kernel = Kernel(folder)
        try:
            for cell in notebook.cells:
                if cell.cell_type != "code":
                    continue
                question = checked_question(cell.source)
                if question is None:
                    kernel.run(cell.source)
                elif questions is None or question in questions:
                    source = (tests_dir / f"{question}.py").read_text(encoding="utf-8")
                    results.append(_compare(kernel, question, source))
        finally:
            kernel.stop()
    return results


def _compare(kernel: Kernel, question: str, source: str) -> QuestionParity:
    start = monotonic()
    call = (
        f"[(c.name, c.passed) for c in __import__('tfcourse.checking', fromlist=['x'])"
        f".check_source({question!r}, open('tests/{question}.py').read(), globals(), "
        f"'tests/{question}.py').cases]"
    )
    in_kernel = [tuple(case) for case in kernel.evaluate(call)]  # type: ignore[union-attr]
    middle = monotonic()
    transport = remote.blocking_transport(kernel.client)
    result, session = remote.check_remotely(question, source, transport, CELL_SECONDS)
    outcomes = [(case.name, case.passed) for case in result.cases]
    messages = {
        case.name: case.message
        for case, theirs in zip(result.cases, in_kernel, strict=True)
        if (case.name, case.passed) != theirs
    }
    return QuestionParity(
        question,
        in_kernel,  # type: ignore[arg-type]
        outcomes,
        messages,
        (middle - start, monotonic() - middle),
        session.round_trips,
    )


def report_parity(
    course: Course, students: Sequence[str] = (), questions: Sequence[str] = ()
) -> int:
    """Compare both ways for the sample submissions of ``course``'s assignment (those named,
    or all) and its questions (those named, or all); print a line per question and every case
    whose outcomes differ. Return 1 if any does, else 0."""
    differing = 0
    for sample in SAMPLES:
        if students and sample.student_id not in students:
            continue
        for notebook in sample.make(course).values():
            for found in compare_notebook(notebook, course, set(questions) or None):
                passed = sum(p for _, p in found.remote)
                print(
                    f"{sample.student_id:22} {found.question:18} "
                    f"{'same' if found.same else 'DIFFERENT':9} {passed}/{len(found.remote)} "
                    f"in kernel {found.seconds[0]:5.2f} s, remote {found.seconds[1]:5.2f} s "
                    f"({found.round_trips} round trips)",
                    flush=True,
                )
                for (case, mine), (_, theirs) in zip(found.remote, found.in_kernel, strict=True):
                    if mine != theirs:
                        differing += 1
                        print(f"    {case}: in kernel {theirs}, remote {mine}")
                        print(
                            "      " + found.messages.get(case, "")[:600].replace("\n", "\n      ")
                        )
    return 1 if differing else 0
