"""Before handing in: what a saved notebook still lacks, cell by cell.

``check_submission("01_attention.ipynb")`` reads the notebook as last saved and reports what
``nbgrader validate`` would object to, without running it again: answer cells still holding
their stub, cells that raised (``NotImplementedError`` above all), cells never run or run out
of order, and checks that did not earn every public point. In Colab, where the notebook is not
a file beside the kernel, it asks Colab for the notebook instead.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

# nbgrader's stubs for code and written answers (nbgrader_config.py, ClearSolutions).
CODE_STUB = "raise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
SUBMIT_CELL_ID = "submit_check"
CHECK_HEADLINE = re.compile(r"^(?P<question>\S+): (?P<score>[\d.]+) / (?P<possible>[\d.]+) points")


@dataclass(frozen=True)
class SubmissionReport:
    """The problems found in one notebook; displays as a list for the student."""

    notebook: str
    problems: tuple[str, ...]

    @property
    def ready(self) -> bool:
        """True when nothing is missing."""
        return not self.problems

    def report(self) -> str:
        """Plain text: a verdict, then one line per problem."""
        if self.ready:
            return (
                f"{self.notebook}: ready to submit. Every answer is filled in, every cell ran "
                "in order without an error and every check earned its public points."
            )
        lines = [f"{self.notebook}: {len(self.problems)} thing(s) to fix before you submit:"]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append("Fix them, restart the kernel, run all cells, save, and run this check again.")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.report()

    def _repr_html_(self) -> str:
        headline, *rest = self.report().splitlines()
        colour = "#1a7f37" if self.ready else "#cf222e"
        items = "".join(
            f"<li>{html.escape(line[4:])}</li>" for line in rest if line.startswith("  - ")
        )
        footer = html.escape(rest[-1]) if rest else ""
        return (
            f"<div><strong style='color:{colour}'>{html.escape(headline)}</strong>"
            f"<ul>{items}</ul>{footer}</div>"
        )


def check_submission(notebook_file: str | Path) -> SubmissionReport:
    """Check the saved notebook ``notebook_file`` (relative to the working directory)."""
    path = Path(notebook_file)
    notebook = _load(path)
    if notebook is None:
        missing = (
            f"{path} is not in {Path.cwd()}: save the notebook under its original name, in the "
            "folder it came in, then run this cell again."
        )
        return SubmissionReport(path.name, (missing,))
    return SubmissionReport(path.name, tuple(find_problems(notebook)))


def find_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """What ``notebook`` lacks, in reading order within each kind of problem."""
    cells = [
        (number, cell)
        for number, cell in enumerate(notebook.cells, 1)
        if cell.get("id") != SUBMIT_CELL_ID
    ]
    problems = [
        f"{_describe(number, cell)} is not answered yet: replace "
        f"`{CODE_STUB if cell.cell_type == 'code' else TEXT_STUB}` with your answer."
        for number, cell in cells
        if _is_unanswered(cell)
    ]
    code = [(number, cell) for number, cell in cells if cell.cell_type == "code"]
    for number, cell in code:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"{_describe(number, cell)} raised {_error_name(output)}.")
    never_run = [
        _describe(number, cell)
        for number, cell in code
        if cell.source.strip() and cell.get("execution_count") is None
    ]
    if never_run:
        shown = ", ".join(never_run[:3]) + (", ..." if len(never_run) > 3 else "")
        problems.append(f"{len(never_run)} cell(s) were not run: {shown}.")
    counts = [cell.execution_count for _, cell in code if cell.get("execution_count")]
    if counts != sorted(counts) or len(set(counts)) != len(counts):
        problems.append(
            "Cells ran out of order: restart the kernel and run all cells, so the saved outputs "
            "are what your code produces from the top."
        )
    problems += [f"Check {check} of the public tests." for check in _incomplete_checks(code)]
    return problems


def _load(path: Path) -> nbformat.NotebookNode | None:
    if path.is_file():
        return nbformat.read(path, as_version=4)
    try:  # Colab keeps the notebook in the browser and in Drive, not beside the kernel.
        from google.colab import _message  # type: ignore[import-not-found]
    except ImportError:
        return None
    notebook = _message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]
    return nbformat.from_dict(notebook)


def _is_unanswered(cell: nbformat.NotebookNode) -> bool:
    if not cell.metadata.get("nbgrader", {}).get("solution"):
        return False
    return (CODE_STUB if cell.cell_type == "code" else TEXT_STUB) in cell.source


def _error_name(output: nbformat.NotebookNode) -> str:
    if output.ename == "NotImplementedError":
        return "NotImplementedError: a task above it is not done yet"
    value = output.evalue.strip().splitlines()[0] if output.evalue.strip() else ""
    return f"{output.ename}: {value}" if value else output.ename


def _incomplete_checks(code: list[tuple[int, nbformat.NotebookNode]]) -> list[str]:
    """Headlines like ``q1_sdpa: 2 / 3 points`` of grader.check outputs short of full marks."""
    short = []
    for _, cell in code:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "")
            match = CHECK_HEADLINE.match(text)
            if match and float(match["score"]) < float(match["possible"]):
                short.append(f"{match['question']} earned {match['score']} / {match['possible']}")
    return short


def _describe(number: int, cell: nbformat.NotebookNode) -> str:
    lines = [line.strip() for line in cell.source.splitlines() if line.strip()] or [""]
    if cell.cell_type == "markdown":
        first = lines[0].lstrip("#").strip()
    else:  # the first line of code, past comments such as "# YOUR CODE HERE"
        first = next((line for line in lines if not line.startswith("#")), lines[0])
    shown = first if len(first) <= 60 else first[:57] + "..."
    return f'Cell {number} ("{shown}")'
