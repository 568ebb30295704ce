"""nbgrader's Execute step with limits, and with test cells that a submission cannot rig.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` in the autograde step of a
submission's scratch course (see :mod:`tfcourse.grading.workspace`). Compared with it:

- a notebook has a time budget (``notebook_timeout``) besides the limit per cell; once it
  is spent, the remaining cells are not run and say so;
- a cell that kills the kernel (``os._exit``, a crash) or keeps running after the
  timeout interrupted it scores 0, the kernel is restarted and the cells that ran before
  it are replayed, so that the rest of the notebook is graded as usual;
- a test cell runs :func:`tfcourse.grading.guard.check` rather than the notebook's
  ``grader`` object, and must display its points: any other outcome scores 0 (nbgrader
  would give full points to a test cell whose output is not a number).

Each limit leaves an error output in the cell it stopped, whose name is one of
:data:`LIMIT_ERRORS`: the feedback shows it, and the summary reports it.
"""

from __future__ import annotations

import math
import re
from queue import Empty
from time import monotonic
from typing import Any

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Integer

CELL_TIMEOUT = "CellTimeoutError"
NOTEBOOK_TIMEOUT = "NotebookTimeoutError"
KERNEL_DIED = "KernelDiedError"
NO_SCORE = "CheckNotReportedError"
LIMIT_ERRORS = (CELL_TIMEOUT, NOTEBOOK_TIMEOUT, KERNEL_DIED, NO_SCORE)

_CHECK_CALL = re.compile(r"""^\s*grader\.check\(\s*(["'])(\w+)\1\s*\)\s*$""")
_PROBE_SECONDS = 5


def limit_notes(cell_seconds: int, notebook_seconds: int) -> dict[str, str]:
    """The kit's words for each limit a cell can hit while graded, by error name."""
    return {
        CELL_TIMEOUT: f"the cell ran longer than the limit of {cell_seconds} s per cell",
        NOTEBOOK_TIMEOUT: f"not run: the notebook used up its {notebook_seconds} s time limit",
        KERNEL_DIED: "the kernel died while this cell ran (os._exit, a crash or the memory "
        "limit); it was restarted and the cells above were run again",
        "MemoryError": "the cell ran out of memory while graded (the limit per kernel)",
    }


def trusted_source(source: str) -> str | None:
    """The code a test cell runs while graded: the guard's check of the same question."""
    match = _CHECK_CALL.match(source.strip())
    if match is None:
        return None
    question = match.group(2)
    guard = '__import__("tfcourse.grading.guard", fromlist=["check"])'
    return f"{guard}.check({question!r}, globals())"


def error_output(name: str, message: str) -> NotebookNode:
    """An error output as the kernel would have sent it."""
    return NotebookNode(
        output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"]
    )


class GuardedExecute(Execute):
    """nbgrader's Execute with a notebook time budget, kernel recovery and guarded checks."""

    notebook_timeout = Integer(
        1800, help="Seconds a whole notebook may run; later cells are not run."
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> Any:
        self._deadline = monotonic() + self.notebook_timeout
        self._replayable: list[int] = []
        self._notes = limit_notes(self.timeout, self.notebook_timeout)
        self.error_on_timeout = {
            "ename": CELL_TIMEOUT,
            "evalue": self._notes[CELL_TIMEOUT],
            "traceback": [f"{CELL_TIMEOUT}: {self._notes[CELL_TIMEOUT]}"],
        }
        return super().preprocess(nb, resources, km)

    def _get_timeout(self, cell: NotebookNode | None) -> int | None:
        remaining = max(1, math.ceil(self._deadline - monotonic()))
        return min(self.timeout, remaining) if self.timeout else remaining

    async def async_execute_cell(
        self,
        cell: NotebookNode,
        cell_index: int,
        execution_count: int | None = None,
        store_history: bool = True,
    ) -> NotebookNode:
        if cell.cell_type != "code" or not cell.source.strip():
            return cell
        if monotonic() >= self._deadline:
            cell.outputs = [error_output(NOTEBOOK_TIMEOUT, self._notes[NOTEBOOK_TIMEOUT])]
            return cell
        is_test = utils.is_grade(cell) and not utils.is_solution(cell)
        original = cell.source
        guarded = trusted_source(original) if is_test else None
        if guarded is not None:
            cell.source = guarded
        try:
            await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            healthy = await self._recover_if_stuck(cell)
        except CellTimeoutError:  # the interrupt did not stop the cell: its output never ended
            cell.outputs.append(error_output(**_without_status(self.error_on_timeout)))
            await self._restart_and_replay()
            healthy = False
        except DeadKernelError:
            cell.outputs.append(error_output(KERNEL_DIED, self._notes[KERNEL_DIED]))
            await self._restart_and_replay()
            healthy = False
        finally:
            cell.source = original
        if is_test and not _reports_points(cell):
            cell.outputs.append(error_output(NO_SCORE, "the check did not report its points"))
        if healthy and not is_test:
            self._replayable.append(cell_index)
        return cell

    execute_cell = run_sync(async_execute_cell)

    async def _recover_if_stuck(self, cell: NotebookNode) -> bool:
        """After a timeout, restart the kernel if the interrupt did not stop the cell.
        Returns False when the cell timed out (it is then not replayed later)."""
        if not any(out.get("ename") == CELL_TIMEOUT for out in cell.outputs):
            return True
        if not await self._responds():
            await self._restart_and_replay()
        return False

    async def _responds(self) -> bool:
        """True if the kernel answers an empty request within a few seconds."""
        assert self.kc is not None
        msg_id = await ensure_async(self.kc.execute("", silent=True, store_history=False))
        deadline = monotonic() + _PROBE_SECONDS
        while (left := deadline - monotonic()) > 0:
            try:
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                return False
            if msg["parent_header"].get("msg_id") == msg_id:
                return True
        return False

    async def _restart_and_replay(self) -> None:
        """Restart the kernel and re-run, silently, the cells that had run without a hitch."""
        assert self.km is not None and self.kc is not None
        await ensure_async(self.km.restart_kernel(now=True))
        await ensure_async(self.kc.wait_for_ready(timeout=self.startup_timeout))
        for index in self._replayable:
            source = self.nb.cells[index].source
            msg_id = await ensure_async(self.kc.execute(source, silent=True, store_history=False))
            timeout = self._get_timeout(None)
            deadline = monotonic() + (timeout or 0)
            while (left := deadline - monotonic()) > 0:
                try:
                    msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
                except Empty:
                    return
                if msg["parent_header"].get("msg_id") == msg_id:
                    break


def _without_status(error: dict[str, Any]) -> dict[str, str]:
    return {"name": error["ename"], "message": error["evalue"]}


def _reports_points(cell: NotebookNode) -> bool:
    """True if a test cell displayed a number and raised nothing."""
    if any(out.output_type == "error" for out in cell.outputs):
        return True  # an error already scores 0
    for out in cell.outputs:
        if out.output_type == "execute_result":
            try:
                float(out.get("data", {}).get("text/plain", ""))
            except ValueError:
                return False
            return True
    return False
