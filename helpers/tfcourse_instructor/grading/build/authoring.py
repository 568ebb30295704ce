"""Build source notebooks from their text twins (jupytext percent format).

An instructor edits ``authoring/<assignment>/NN_name.py``; the build writes
``source/<assignment>/NN_name.ipynb``: nbgrader metadata completed, a test cell's points
taken from its test file (the single place they are written), and outputs stored by running
the notebook, so nbval can later prove they are reproducible. Notebooks run in quick mode
(:data:`QUICK_ENV`): one that trains for minutes stores the outputs of its graded size.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from nbclient import NotebookClient
from otter.test_files.exception_test import ExceptionTestFile

from tfcourse.runmode import QUICK_VARIABLE
from tfcourse_instructor.grading.build.cells import add_course_cells
from tfcourse_instructor.grading.build.release import write_student_files
from tfcourse_instructor.grading.course import Course, import_given

NBGRADER_DEFAULTS = {
    "grade": False,
    "locked": False,
    "schema_version": 3,
    "solution": False,
    "task": False,
}
QUICK_ENV = {QUICK_VARIABLE: "1"}
"""Turns on :func:`tfcourse.runmode.quick_mode` (``QUICK`` in notebook 3) like nbgrader's
``NBGRADER_EXECUTION``, but without changing what ``grader.check`` displays."""
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def build_notebook(twin: Path, tests_dir: Path) -> nbformat.NotebookNode:
    """The source notebook described by ``twin``, without outputs, with the set-up and
    submit cells every notebook of the course shares."""
    notebook = jupytext.read(twin)
    course = Course(twin.parents[2], twin.parent.name)  # twins: <root>/authoring/<assignment>/
    import_given(course.given_dir)  # the test files, read for their points, import them
    given = [module.name for module in course.given_modules()]
    add_course_cells(notebook, course.assignment, f"{twin.stem}.ipynb", given)
    notebook.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    for index, cell in enumerate(notebook.cells):
        nbgrader = cell.metadata.get("nbgrader")
        # Tags carry nbval's per-cell settings; other jupytext metadata is dropped.
        cell.metadata = {"tags": cell.metadata["tags"]} if "tags" in cell.metadata else {}
        cell.id = f"cell-{index:03d}"
        if nbgrader is not None:
            cell.metadata["nbgrader"] = _complete_metadata(cell, nbgrader, tests_dir)
            cell.id = nbgrader["grade_id"]
    nbformat.validate(notebook)
    return notebook


def execute(notebook: nbformat.NotebookNode, cwd: Path, timeout: int = 600) -> None:
    """Run ``notebook`` in place with ``cwd`` as its working directory, in quick mode."""
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        store_widget_state=False,  # progress bars: their text fallback is enough in files
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env=quick_env())


def quick_env() -> dict[str, str]:
    """The environment the kit executes its notebooks in (build, nbval, its own checks):
    ``QUICK_ENV`` on top of this process's. Notebooks that train then train at the size they
    are graded at, and their stored outputs are those of that size."""
    return {**os.environ, **QUICK_ENV}


def build_all(course: Course, run: bool = True, names: Sequence[str] = ()) -> list[Path]:
    """Write the source notebooks of ``course`` from their twins (all, or those in ``names``);
    return the paths written."""
    twins = sorted(course.authoring_dir.glob("*.py"))
    unknown = set(names) - {twin.stem for twin in twins}
    if unknown:
        raise FileNotFoundError(f"no twin in {course.authoring_dir} for {sorted(unknown)}")
    write_student_files(course)
    written = []
    for twin in twins:
        if names and twin.stem not in names:
            continue
        notebook = build_notebook(twin, course.tests_dir)
        if run:
            execute(notebook, course.source_dir)
        target = course.source_dir / f"{twin.stem}.ipynb"
        nbformat.write(notebook, target)
        written.append(target)
    return written


def question_points(test_file: Path) -> float:
    """Total points of all test cases, public and hidden, in an otter test file."""
    cases = ExceptionTestFile.from_file(str(test_file)).test_cases
    return float(sum(case.points for case in cases))


def _complete_metadata(cell: Any, given: dict[str, Any], tests_dir: Path) -> dict[str, Any]:
    metadata = {**NBGRADER_DEFAULTS, **given}
    grade_id = metadata.get("grade_id")
    if not grade_id:
        raise ValueError(f"an nbgrader cell has no grade_id:\n{cell.source[:200]}")
    if metadata["grade"] and not metadata["solution"]:
        expected = f'grader.check("{grade_id}")'
        if cell.source.strip() != expected:
            raise ValueError(f"test cell {grade_id!r} must contain exactly {expected}")
        metadata["points"] = question_points(tests_dir / f"{grade_id}.py")
    elif metadata["grade"] and "points" not in metadata:
        raise ValueError(f"manually graded cell {grade_id!r} does not state its points")
    return dict(sorted(metadata.items()))
