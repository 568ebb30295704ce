"""What went wrong with a submission, in words a grader can act on."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nbformat.notebooknode import NotebookNode
from nbgrader import utils

from tfcourse.checking import reported_outcomes
from tfcourse_instructor.grading.submission.graded_outputs import (
    KERNEL_FAILURE_METADATA,
    LIMIT_ERRORS,
    OUTCOMES_METADATA,
    SHORTCUT_METADATA,
)


@dataclass(frozen=True)
class Issue:
    """One problem found in one notebook of a submission (``notebook`` "" for all of it)."""

    notebook: str
    problem: str

    def to_dict(self) -> dict[str, str]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.notebook}: {self.problem}" if self.notebook else self.problem


def execution_issues(notebook_name: str, notebook: NotebookNode) -> list[Issue]:
    """The limits an executed notebook hit (time, kernel death, memory, unreported checks),
    the errors its cells raised (other than the release's NotImplementedError) and the
    questions that scored 0 for a forbidden shortcut."""
    issues = []
    for cell in notebook.cells:
        label = cell.metadata.get("nbgrader", {}).get("grade_id") or cell.get("id", "?")
        test = utils.is_grade(cell) and not utils.is_solution(cell)  # the kit wrote its outputs
        for output in cell.get("outputs", []):
            if test and (shortcut := output.get("metadata", {}).get(SHORTCUT_METADATA)):
                issues.append(Issue(notebook_name, str(shortcut)))
            if test and (failure := output.get("metadata", {}).get(KERNEL_FAILURE_METADATA)):
                issues.append(Issue(notebook_name, f"cell {label}: {str(failure)[:200]}"))
            if output.output_type != "error" or output.ename == "NotImplementedError":
                continue
            text = f"{output.ename}: {output.evalue}"[:160]
            if output.ename == "MemoryError" or "can't allocate memory" in text:
                text = f"hit the memory limit ({text})"
            elif output.ename not in LIMIT_ERRORS:
                text = f"raised {text}"
            issues.append(Issue(notebook_name, f"cell {label}: {text}"))
    return issues


def graded_better_than_stored(
    notebook_name: str, graded: NotebookNode, submitted: NotebookNode
) -> list[Issue]:
    """Questions whose public cases pass when graded but failed in the student's own run, as
    the stored check outputs show: code that behaves otherwise when graded (or a check not
    run again after a fix). ``python -m tfcourse_instructor.grading reproduce`` tells which."""
    stored = {
        cell.get("id"): "".join(_plain_text(output) for output in cell.get("outputs", []))
        for cell in submitted.cells
        if cell.cell_type == "code"
    }
    issues = []
    for cell in graded.cells:
        if not (utils.is_grade(cell) and not utils.is_solution(cell)):
            continue
        graded_outcomes = next(
            (o.get("metadata", {}).get(OUTCOMES_METADATA) for o in cell.get("outputs", [])), None
        )
        seen = reported_outcomes(stored.get(cell.get("id"), ""))
        if not isinstance(graded_outcomes, dict) or not seen:
            continue
        turned = sorted(
            label
            for label, passed in graded_outcomes.items()
            if passed and seen.get(label) is False
        )
        if turned:
            label = cell.metadata.get("nbgrader", {}).get("grade_id", "?")
            issues.append(
                Issue(
                    notebook_name,
                    f"{label}: public cases failed in the student's own run but pass when graded "
                    f"({'; '.join(turned)[:200]}): code that knows it is graded? Run "
                    "`reproduce` to compare",
                )
            )
    return issues


def _plain_text(output: NotebookNode) -> str:
    if output.get("output_type") == "stream":
        return str(output.get("text", ""))
    text = output.get("data", {}).get("text/plain", "")
    return "".join(text) if isinstance(text, list) else str(text)
