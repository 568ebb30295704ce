"""What went wrong with a submission, in words a grader can act on."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nbformat.notebooknode import NotebookNode

from tfcourse.grading.execution import LIMIT_ERRORS


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
    """The limits an executed notebook hit (time, kernel death, memory, unreported checks)."""
    issues = []
    for cell in notebook.cells:
        label = cell.metadata.get("nbgrader", {}).get("grade_id") or f"cell {cell.get('id', '?')}"
        for output in cell.get("outputs", []):
            if output.output_type != "error":
                continue
            text = f"{output.get('ename', '')}: {output.get('evalue', '')}"
            if output.ename in LIMIT_ERRORS:
                issues.append(Issue(notebook_name, f"{label}: {text}"))
            elif output.ename == "MemoryError" or "can't allocate memory" in text:
                issues.append(Issue(notebook_name, f"{label}: hit the memory limit ({text[:80]})"))
    return issues
