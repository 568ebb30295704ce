"""Before handing in: what a saved notebook still lacks, cell by cell.

``check_submission("01_attention.ipynb")`` reads the notebook as last saved and reports what
``nbgrader validate`` would object to, without running it again: answer cells still holding
their stub, cells that raised (``NotImplementedError`` above all), cells never run or run out
of order, and checks that did not earn every public point. In Colab, where the notebook is not
a file beside the kernel, it asks Colab for the notebook instead.

A report on a file older than what the student sees would mislead (after *Restart & Run All*
without saving, it would list answers as missing that just ran and passed). So the kernel's
own record of what it ran (IPython's input history) is compared with the saved cells first:
when this kernel ran cells the file does not hold, the report only asks for a save.
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
DEFINITION = re.compile(r"^(?:async\s+)?(?:def|class)\s+(?P<name>\w+)")
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
    try:
        notebook = _load(path)
    except Exception as error:  # nbformat raises many kinds on a damaged file
        broken = (
            f"{path.name} as saved is not a notebook file the grader can read "
            f"({type(error).__name__}): it would be graded as the blank notebook, 0 points. "
            "Save it again from JupyterLab (File > Save Notebook) and run this cell again; if "
            "that fails, restore it (File > Revert Notebook to Checkpoint) or copy your "
            "answers into a fresh copy of the notebook."
        )
        return SubmissionReport(path.name, (broken,))
    if notebook is None:
        missing = (
            f"{path} is not in {Path.cwd()}: save the notebook under its original name, in the "
            "folder it came in, then run this cell again."
        )
        return SubmissionReport(path.name, (missing,))
    if path.is_file() and ran_since_saved(notebook, _kernel_inputs()):
        unsaved = (
            "The saved file is older than what this kernel ran: cells ran or changed after the "
            "last save. Save the notebook (Ctrl+S or Cmd+S), then run this cell again."
        )
        return SubmissionReport(path.name, (unsaved,))
    return SubmissionReport(path.name, tuple(find_problems(notebook)))


def ran_since_saved(notebook: nbformat.NotebookNode, inputs: list[str]) -> bool:
    """Whether the kernel whose input history is ``inputs`` (IPython's ``In``: entry ``k``
    is the source run as execution ``k``, entry 0 is empty, the last is this check) ran cells
    that ``notebook``, as saved, does not show."""
    check = inputs[-1].strip() if inputs else ""
    ran = {
        count: source.strip()
        for count, source in enumerate(inputs[:-1])
        if count and source.strip() != check
    }
    if not ran:  # a kernel that ran nothing else: the saved outputs are all the student sees
        return False
    saved = {
        cell.execution_count: cell.source.strip()
        for cell in notebook.cells
        if cell.cell_type == "code"
        and cell.get("execution_count")
        and cell.get("id") != SUBMIT_CELL_ID
    }
    if max(ran) > max(saved, default=0) or not ran.keys() & saved.keys():
        return True  # cells ran after the save, or the save is from another kernel's run
    # Counts the kernel ran but the file lacks are tolerated: cells run, then deleted.
    return any(ran.get(count, source) != source for count, source in saved.items())


def find_problems(notebook: nbformat.NotebookNode) -> list[str]:
    """What ``notebook`` lacks, in reading order within each kind of problem."""
    names = _cell_names(notebook)
    cells = [(names[index], cell) for index, cell in enumerate(notebook.cells)]
    cells = [(name, cell) for name, cell in cells if cell.get("id") != SUBMIT_CELL_ID]
    problems = [
        f"{name} is not answered yet: replace "
        f"`{CODE_STUB if cell.cell_type == 'code' else TEXT_STUB}` with your answer."
        for name, cell in cells
        if _is_unanswered(cell)
    ]
    code = [(name, cell) for name, cell in cells if cell.cell_type == "code"]
    for name, cell in code:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                problems.append(f"{name} raised {_error_name(output)}.")
    never_run = [
        name for name, cell in code if cell.source.strip() and cell.get("execution_count") is None
    ]
    if never_run:
        shown = ", ".join(never_run[:3])
        if len(never_run) > 3:
            shown += f" and {len(never_run) - 3} more"
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
    """The notebook as saved (None if there is none); raises if it is damaged."""
    if path.is_file():
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)  # what the grader requires of it
        return notebook
    try:  # Colab keeps the notebook in the browser and in Drive, not beside the kernel.
        from google.colab import _message  # type: ignore[import-not-found]
    except ImportError:
        return None
    notebook = _message.blocking_request("get_ipynb", timeout_sec=60)["ipynb"]
    return nbformat.from_dict(notebook)


def _kernel_inputs() -> list[str]:
    """IPython's raw input history of this kernel ([] outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return []
    shell = get_ipython()
    return list(shell.history_manager.input_hist_raw) if shell is not None else []


def _is_unanswered(cell: nbformat.NotebookNode) -> bool:
    if not cell.metadata.get("nbgrader", {}).get("solution"):
        return False
    return (CODE_STUB if cell.cell_type == "code" else TEXT_STUB) in cell.source


def _error_name(output: nbformat.NotebookNode) -> str:
    if output.ename == "NotImplementedError":
        return "NotImplementedError: a task above it is not done yet"
    value = output.evalue.strip().splitlines()[0] if output.evalue.strip() else ""
    return f"{output.ename}: {value}" if value else output.ename


def _incomplete_checks(code: list[tuple[str, nbformat.NotebookNode]]) -> list[str]:
    """Headlines like ``q1_sdpa: 2 / 3 points`` of grader.check outputs short of full marks."""
    short = []
    for _, cell in code:
        for output in cell.get("outputs", []):
            text = output.get("data", {}).get("text/plain", "")
            match = CHECK_HEADLINE.match(text)
            if match and float(match["score"]) < float(match["possible"]):
                short.append(f"{match['question']} earned {match['score']} / {match['possible']}")
    return short


def _cell_names(notebook: nbformat.NotebookNode) -> list[str]:
    """How the report names each cell: its number, and what a student recognises it by (the
    function or class an answer defines, the question a written answer answers)."""
    names, heading = [], ""
    for number, cell in enumerate(notebook.cells, 1):
        lines = [line.strip() for line in cell.source.splitlines() if line.strip()] or [""]
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution"):
            answers = f' (your answer to "{heading}")' if heading else ""
            names.append(f"Cell {number}{answers}")
            continue
        if cell.cell_type == "markdown":
            headings = [line.lstrip("#").strip() for line in lines if line.startswith("#")]
            # "Question 1.1 — why scale by ..." is named by what precedes the dash.
            heading = _shortened(headings[-1].split(" — ")[0]) if headings else heading
            names.append(f"Cell {number}")
            continue
        defined = next((m for line in lines if (m := DEFINITION.match(line))), None)
        if defined:
            names.append(f"Cell {number} (`{defined['name']}`)")
        else:  # the first line of code, past comments such as "# YOUR CODE HERE"
            first = next((line for line in lines if not line.startswith("#")), lines[0])
            names.append(f'Cell {number} ("{_shortened(first)}")')
    return names


def _shortened(text: str, width: int = 60) -> str:
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0] + "…"
