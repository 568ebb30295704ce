"""Which test cases of each question a student failed, as their autograded notebook records.

The kit writes every test cell's output itself
(:func:`~tfcourse_instructor.grading.submission.execution.score_output`): the points, the
report, and whether each case passed, by the label the feedback shows (hidden cases by name).
A test cell that shows an error instead was not checked to the end: a time or memory limit,
or a lost kernel, stopped it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader import utils

from tfcourse_instructor.grading.submission.graded_outputs import CASES_METADATA

MAX_LABEL = 200
"""Characters of a case label kept: the labels are the kit's, the notebook around them a
student's."""


@dataclass(frozen=True)
class CheckOutcome:
    """One test cell of one student's autograded notebook."""

    failed: tuple[str, ...]
    """Labels of the cases that failed, in the order of the report."""
    checked: bool
    """False when the cell shows an error: its check did not run to the end."""


def check_outcomes(path: Path) -> dict[str, CheckOutcome]:
    """The outcome of every test cell (by grade id) of the autograded notebook at ``path``;
    empty when there is no readable notebook there."""
    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return {}
    outcomes = {}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not (utils.is_grade(cell) and not utils.is_solution(cell) and grade_id):
            continue
        outputs = cell.get("outputs", [])
        failed = [
            str(label)[:MAX_LABEL]
            for output in outputs
            if isinstance(cases := output.get("metadata", {}).get(CASES_METADATA), dict)
            for label, passed in cases.items()
            if passed is False
        ]
        checked = not any(output.get("output_type") == "error" for output in outputs)
        outcomes[grade_id] = CheckOutcome(tuple(failed), checked)
    return outcomes
