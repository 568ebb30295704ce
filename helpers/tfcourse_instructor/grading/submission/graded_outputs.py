"""What grading writes into a graded notebook for the rest of the kit to read: the names of
the errors a limit leaves in the cell it stopped (and the kit's words for each), and the
metadata of the outputs the kit writes in test cells.

:mod:`tfcourse_instructor.grading.submission.execution` writes them, in the nbgrader process
that runs a submission's checks; the issues, the feedback, formgrader's pages and the class
report read them, in processes that need not load torch.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

from tfcourse.grading_kernel.sizes import MAX_BYTES

CELL_TIMEOUT = "CellTimeoutError"
NOTEBOOK_TIMEOUT = "NotebookTimeoutError"
KERNEL_DIED = "KernelDiedError"
KERNEL_LOST = "KernelLostError"
NO_SCORE = "CheckNotReportedError"
MESSAGE_DROPPED = "MessageDroppedError"
LIMIT_ERRORS = (CELL_TIMEOUT, NOTEBOOK_TIMEOUT, KERNEL_DIED, KERNEL_LOST, NO_SCORE, MESSAGE_DROPPED)

MAX_MESSAGE_BYTES = MAX_BYTES + 2**20
"""The largest message a kernel may send: an agent's largest answer, and its envelope."""


def limit_notes(cell_seconds: int, notebook_seconds: int) -> dict[str, str]:
    """The kit's words for each limit a cell can hit while graded, by error name."""
    return {
        CELL_TIMEOUT: f"the cell ran longer than the limit of {cell_seconds} s per cell",
        NOTEBOOK_TIMEOUT: f"not run: the notebook used up its {notebook_seconds} s time limit",
        KERNEL_DIED: "the kernel died while this cell ran (os._exit, a crash or the memory "
        "limit); it was restarted and the cells above were run again",
        KERNEL_LOST: "not run: the kernel could not be started again after it died (what the "
        "notebook's code left in its sandbox stopped it)",
        MESSAGE_DROPPED: "the kernel sent a message larger than the grader reads "
        f"({MAX_MESSAGE_BYTES // 2**20} MiB) or dropped its connection: the message was not read",
        "MemoryError": "the cell ran out of memory while graded (the limit per kernel)",
    }


SHORTCUT_METADATA = "tfcourse_shortcut"
"""Output metadata of a test cell whose question scored 0 for a forbidden shortcut: the line."""

OUTCOMES_METADATA = "tfcourse_public_outcomes"
"""Output metadata of a test cell: whether each public case passed when graded, by label."""

CASES_METADATA = "tfcourse_case_outcomes"
"""Output metadata of a test cell: whether each case, hidden ones included, passed when graded,
by label (what the class report counts; the kit's feedback shows the same labels)."""

KERNEL_FAILURE_METADATA = "tfcourse_kernel_failure"
"""Output metadata of a test cell whose check the kernel stopped answering: why."""

HIDDEN_FAILURES_METADATA = "tfcourse_hidden_failures"
"""Output metadata of a test cell, for graders only: each failed hidden case's name and
message (expected vs got, and where in the test file, whose inputs it names). Formgrader's page
shows it (:mod:`tfcourse_instructor.grading.rendering.hidden_failures`); feedback pages are
rendered from copies without it. The message quotes values the student's code returned."""
MAX_HIDDEN_MESSAGE = 4000
"""Characters of a hidden case's message kept."""


def rewrite(notebook: nbformat.NotebookNode, path: Path) -> None:
    """Write ``notebook`` in place of the graded notebook at ``path``, which nbgrader leaves
    read-only: replaced, not opened for writing, which binds a grader who is not root."""
    path.unlink()
    nbformat.write(notebook, path)
