"""What a graded notebook shows its student and its grader: the outputs the student submitted.

Outputs produced while grading come from code the student controls, at a time when the
kernel has seen the grader's test inputs: shown back, they could carry anything, including
what a hidden test asked. So after grading, every code cell that is not a test cell shows
again the outputs the student submitted (produced on the student's own machine, in the
student's own run: what written answers discuss), in safe types only, plus the kit's own
note when a limit stopped the cell while graded. Test cells keep what the grader wrote.
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader import utils

SAFE_TYPES = ("text/plain", "image/png", "image/jpeg")
"""Output types shown back; the others (HTML, JavaScript, SVG, widgets) can run code in a
browser, and each of them comes with a plain-text alternative."""


def show_submitted_outputs(
    graded: NotebookNode, submitted: NotebookNode, limit_notes: dict[str, str]
) -> None:
    """In ``graded``, replace the outputs of every non-test code cell by those of the cell
    with the same id in ``submitted``; keep, reworded as ``limit_notes`` says, the errors
    that a limit raised while graded (``limit_notes``: error name -> the kit's text)."""
    submitted_outputs = {
        cell.get("id"): cell.get("outputs", [])
        for cell in submitted.cells
        if cell.cell_type == "code"
    }
    for cell in graded.cells:
        if cell.cell_type != "code" or (utils.is_grade(cell) and not utils.is_solution(cell)):
            continue
        notes = [
            _note(name, limit_notes[name])
            for name in dict.fromkeys(
                output.get("ename") for output in cell.outputs if output.output_type == "error"
            )
            if name in limit_notes
        ]
        shown = [_safe(output) for output in submitted_outputs.get(cell.get("id"), [])]
        cell.outputs = [output for output in shown if output is not None] + notes


def _safe(output: NotebookNode) -> NotebookNode | None:
    """``output`` with only :data:`SAFE_TYPES` (None if nothing safe is left)."""
    if output.output_type not in ("display_data", "execute_result"):
        return output  # streams and errors are plain text, escaped when shown
    data = {kind: value for kind, value in output.get("data", {}).items() if kind in SAFE_TYPES}
    if not data:
        return None
    safe = NotebookNode(output_type=output.output_type, data=data, metadata={})
    if output.output_type == "execute_result":
        safe.execution_count = output.get("execution_count")
    return safe


def _note(name: str, text: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=name, evalue=text, traceback=[f"{name}: {text}"])
