"""nbgrader's Execute step with limits, and with test cells that a submission cannot rig.

:class:`GuardedExecute` replaces nbgrader's ``Execute`` in the autograde step of a
submission's scratch course (see :mod:`tfcourse_instructor.grading.submission.workspace`). Compared
with it:

- a notebook has a time budget (``notebook_timeout``) besides the limit per cell; once it
  is spent, the remaining cells are not run and say so;
- a cell that kills the kernel (``os._exit``, a crash) or keeps running after the
  timeout interrupted it scores 0, the kernel is restarted and the cells that ran before
  it are replayed, so that the rest of the notebook is graded as usual;
- a test cell (``grader.check("q…")``) is not run in the kernel at all: this process, which
  runs no student code, runs the question's test file (public and hidden cases, read from
  ``tests_dir``) against proxies of the notebook's globals
  (:mod:`tfcourse_instructor.grading.submission.remote`),
  and writes the cell's output itself: the points as ``text/plain`` (what nbgrader's
  SaveAutoGrades reads) and the report as ``text/html``. Nothing the kernel displays can
  be taken for points, and hidden tests never enter the kernel. A kernel that stops
  answering fails the rest of that question, and is restarted like after a crash;
- a message from the kernel larger than :data:`MAX_MESSAGE_BYTES` is dropped by zmq before
  it is read, which drops the connection too: this process sees the drop
  (:class:`ConnectionWatch`), names it, and a check whose answer was dropped fails at once.

Each limit leaves an error output in the cell it stopped, whose name is one of
:data:`~tfcourse_instructor.grading.submission.graded_outputs.LIMIT_ERRORS`: the feedback shows
it, and the summary reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client import AsyncKernelManager
from jupyter_client.asynchronous import AsyncKernelClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import Execute
from traitlets import Integer, Type, Unicode

from tfcourse.checking import CheckResult
from tfcourse.declarations import shortcuts
from tfcourse.declarations.shortcuts import checked_question
from tfcourse_instructor.grading.course import GIVEN_FOLDER, import_given
from tfcourse_instructor.grading.submission import remote, timings
from tfcourse_instructor.grading.submission.graded_outputs import (
    CASES_METADATA,
    CELL_TIMEOUT,
    HIDDEN_FAILURES_METADATA,
    KERNEL_DIED,
    KERNEL_FAILURE_METADATA,
    KERNEL_LOST,
    MAX_HIDDEN_MESSAGE,
    MAX_MESSAGE_BYTES,
    MESSAGE_DROPPED,
    NO_SCORE,
    NOTEBOOK_TIMEOUT,
    OUTCOMES_METADATA,
    SHORTCUT_METADATA,
    limit_notes,
)

_PROBE_SECONDS = 5
_TESTS: dict[Path, dict[str, str]] = {}


def read_tests(folder: Path) -> dict[str, str]:
    """The test files of ``folder`` (question -> text), read once per process: nbgrader
    grades a submission's notebooks in one process, so they are read before any of its code
    runs, and a notebook that rewrites them changes nothing for the next one."""
    folder = folder.resolve()
    if folder not in _TESTS:
        files = sorted(folder.glob("*.py")) if folder.is_dir() else []
        _TESTS[folder] = {path.stem: path.read_text(encoding="utf-8") for path in files}
    return _TESTS[folder]


def score_output(result: CheckResult, kernel_failure: str | None = None) -> NotebookNode:
    """The output the kit writes in a test cell: points as text, the report as HTML."""
    data = {"text/plain": f"{result.score:g}", "text/html": result._repr_html_()}
    metadata: dict[str, Any] = {
        OUTCOMES_METADATA: result.public_outcomes(),
        CASES_METADATA: result.outcomes(),
    }
    if result.shortcut:
        metadata[SHORTCUT_METADATA] = result.shortcut
    if kernel_failure:
        metadata[KERNEL_FAILURE_METADATA] = kernel_failure
    if failed := [case for case in result.cases if case.hidden and not case.passed]:
        metadata[HIDDEN_FAILURES_METADATA] = [
            {"name": case.name, "message": case.message[:MAX_HIDDEN_MESSAGE]} for case in failed
        ]
    return NotebookNode(
        output_type="execute_result", data=data, metadata=metadata, execution_count=None
    )


def notebook_shortcuts(
    nb: NotebookNode, question: str, forbidden: tuple[str, ...], tested: tuple[str, ...] = ()
) -> list[str]:
    """What the solution cells of ``question`` in ``nb`` reach of ``forbidden``, and the
    names ``tested`` that the notebook binds to one
    (:func:`tfcourse.declarations.shortcuts.find_shortcuts`)."""
    cells = [
        shortcuts.Cell(
            cell.source,
            code=cell.cell_type == "code",
            solution=utils.is_solution(cell),
            test=utils.is_grade(cell) and not utils.is_solution(cell),
        )
        for cell in nb.cells
    ]
    solution, context = shortcuts.solution_cells(cells, question)
    return shortcuts.find_shortcuts(solution, context, forbidden, tested)


class CappedKernelClient(AsyncKernelClient):
    """A kernel client on a zmq context of its own where a message from the kernel over
    :data:`MAX_MESSAGE_BYTES` is dropped (with its connection) before this process reads
    it: no submission makes the grader decode gigabytes."""

    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True  # ended with the client, as its default context is
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        return context

    async def wait_for_ready(self, timeout: float | None = None) -> None:  # type: ignore[override]
        """Return once the kernel has answered a ``kernel_info`` request on the shell channel
        and said on the iopub channel that it is idle again, which shows that iopub is
        connected too; RuntimeError if it dies first or ``timeout`` seconds pass. (jupyter_client's
        own wait then listens until iopub has been quiet for 0.2 s: at every kernel start.)"""
        deadline = monotonic() + (math.inf if timeout is None else timeout)
        asked: set[str] = set()  # an answer to any of them will do: a slow kernel is not late
        while True:
            asked.add(self.kernel_info())
            reply = await _message_for(self.shell_channel, asked, _READY_SECONDS)
            idle = reply and await _message_for(self.iopub_channel, asked, _READY_SECONDS, "idle")
            if reply and idle:
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")


_READY_SECONDS = 0.25
"""How long a kernel that is starting gets to answer before it is asked again: its first answer
on iopub is lost when it comes before the client's subscription does (three kernel starts of
four in a measured run)."""


async def _message_for(
    channel: Any, msg_ids: set[str], seconds: float, state: str | None = None
) -> dict[str, Any] | None:
    """The first message on ``channel`` in answer to one of the requests ``msg_ids`` (with
    ``state``: the status message of that execution state) within ``seconds``, or None; others
    are dropped."""
    deadline = monotonic() + seconds
    while (left := deadline - monotonic()) > 0:
        try:
            msg = await ensure_async(channel.get_msg(timeout=left))
        except Empty:
            return None
        if msg["parent_header"].get("msg_id") not in msg_ids:
            continue
        if state is None or msg["content"].get("execution_state") == state:
            return msg
    return None


class CappedKernelManager(AsyncKernelManager):
    """A kernel manager whose clients are :class:`CappedKernelClient`."""

    client_factory = Type(CappedKernelClient, klass=AsyncKernelClient)


class ConnectionWatch:
    """Connections of a kernel client's channels that dropped: zmq drops a connection that
    delivers a message over its size limit (or that the kernel closed)."""

    def __init__(self, channels: dict[str, Any]) -> None:
        self._monitors: dict[str, zmq.Socket] = {}
        for name, socket in channels.items():
            address = f"inproc://tfcourse-watch-{id(self)}-{name}"
            socket.monitor(address, zmq.EVENT_DISCONNECTED)
            monitor = zmq.Context.shadow(socket.context.underlying).socket(zmq.PAIR)
            monitor.connect(address)
            self._monitors[name] = monitor

    def close(self) -> None:
        """Close the monitors (before the client's context is ended: it waits for them)."""
        for monitor in self._monitors.values():
            monitor.close(linger=0)
        self._monitors.clear()

    def dropped(self) -> set[str]:
        """The channels whose connection dropped since the last call."""
        found = set()
        for name, monitor in self._monitors.items():
            while monitor.poll(0):
                monitor.recv_multipart()
                found.add(name)
        return found


def error_output(name: str, message: str) -> NotebookNode:
    """An error output as the kernel would have sent it."""
    return NotebookNode(
        output_type="error", ename=name, evalue=message, traceback=[f"{name}: {message}"]
    )


class GuardedExecute(Execute):
    """nbgrader's Execute with a notebook time budget, kernel recovery and checks run by the
    trusted runner."""

    notebook_timeout = Integer(
        1800, help="Seconds a whole notebook may run; later cells are not run."
    ).tag(config=True)
    tests_dir = Unicode(
        "grading_tests",
        help="Folder of the test files, public and hidden (relative: to where nbgrader runs).",
    ).tag(config=True)
    given_dir = Unicode(
        GIVEN_FOLDER,
        help="Folder of the modules the assignment gives, which the test files import.",
    ).tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> Any:
        self._deadline = monotonic() + self.notebook_timeout
        self._replayable: list[int] = []
        self._kernel_lost = False
        self._notes = limit_notes(self.timeout, self.notebook_timeout)
        self._tests = read_tests(Path(self.tests_dir))
        import_given(Path(self.given_dir))
        self.error_on_timeout = {
            "ename": CELL_TIMEOUT,
            "evalue": self._notes[CELL_TIMEOUT],
            "traceback": [f"{CELL_TIMEOUT}: {self._notes[CELL_TIMEOUT]}"],
        }
        self._spent = {"cells": 0.0, "checks": 0.0}
        self._round_trips = 0
        try:
            return super().preprocess(nb, resources, km)
        finally:
            timings.record("cells", self._spent["cells"])
            timings.record("checks", self._spent["checks"], round_trips=self._round_trips)

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
        if self._kernel_lost:
            cell.outputs = [error_output(KERNEL_LOST, self._notes[KERNEL_LOST])]
            return cell
        is_test = utils.is_grade(cell) and not utils.is_solution(cell)
        start = monotonic()
        try:
            if is_test:
                await self._check(cell)
            else:
                await self._execute_code_cell(cell, cell_index, execution_count, store_history)
        finally:
            self._spent["checks" if is_test else "cells"] += monotonic() - start
        return cell

    async def _execute_code_cell(
        self,
        cell: NotebookNode,
        cell_index: int,
        execution_count: int | None,
        store_history: bool,
    ) -> None:
        """Run a cell that is not a test cell in the kernel, within the limits."""
        try:
            await super().async_execute_cell(cell, cell_index, execution_count, store_history)
            healthy = await self._recover_if_stuck(cell)
            if await self._reconnect_if_dropped(cell):
                healthy = False  # replayed, it would drop the new connection as well
        except CellTimeoutError:  # its output never ended: a message dropped, or still running
            if not (healthy := await self._reconnect_if_dropped(cell)):
                cell.outputs.append(error_output(**_without_status(self.error_on_timeout)))
                await self._restart_and_replay()
        except DeadKernelError:
            cell.outputs.append(error_output(KERNEL_DIED, self._notes[KERNEL_DIED]))
            await self._restart_and_replay()
            healthy = False
        if healthy:
            self._replayable.append(cell_index)

    execute_cell = run_sync(async_execute_cell)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("kernel_manager_class", CappedKernelManager)  # nbgrader sets its own
        super().__init__(*args, **kwargs)

    async def async_start_new_kernel(self, **kwargs: Any) -> None:
        with timings.phase("kernel start"):
            await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self) -> Any:
        with timings.phase("kernel start"):
            client = await super().async_start_new_kernel_client()
        self._watch = self._watch_channels()
        return client

    def _watch_channels(self) -> ConnectionWatch:
        assert self.kc is not None
        names = ("shell", "iopub", "stdin")
        return ConnectionWatch({name: getattr(self.kc, f"{name}_channel").socket for name in names})

    async def _reconnect_if_dropped(self, cell: NotebookNode) -> bool:
        """If a connection to the kernel dropped (a message over the limit), say so in
        ``cell`` and connect again; True if so."""
        assert self.km is not None
        if not (self._watch.dropped() and await ensure_async(self.km.is_alive())):
            return False
        cell.outputs.append(error_output(MESSAGE_DROPPED, self._notes[MESSAGE_DROPPED]))
        try:
            await self._connect_again()
        except (RuntimeError, TimeoutError, OSError):
            await self._restart_and_replay()
        return True

    async def _connect_again(self) -> None:
        """A new client of the kernel: zmq does not make again a connection it dropped for a
        message over the limit."""
        assert self.km is not None and self.kc is not None
        self._watch.close()
        await ensure_async(self.kc.stop_channels())
        self.kc = self.km.client()
        self.kc.allow_stdin = False
        await ensure_async(self.kc.start_channels())
        self._watch = self._watch_channels()
        await ensure_async(self.kc.wait_for_ready(timeout=self.startup_timeout))

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def _async_cleanup_kernel(self) -> None:
        if watch := getattr(self, "_watch", None):
            watch.close()
        with timings.phase("kernel stop"):
            await super()._async_cleanup_kernel()

    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    async def _check(self, cell: NotebookNode) -> None:
        """Grade a test cell here, with the trusted runner; write its output."""
        question = checked_question(cell.source)
        source = self._tests.get(question or "")
        if source is None:
            what = f"no test file for {question!r}" if question else "not a grader.check call"
            cell.outputs = [error_output(NO_SCORE, f"this test cell cannot be graded: {what}")]
            return
        loop = asyncio.get_running_loop()

        def transport(
            content: dict[str, str], seconds: float, on_input: Callable[[str], str]
        ) -> str:
            ask = self._ask(content, seconds, on_input)
            future = asyncio.run_coroutine_threadsafe(ask, loop)
            try:
                return future.result(timeout=seconds + _PROBE_SECONDS)
            except TimeoutError:
                future.cancel()
                raise remote.KernelUnresponsive(f"no answer within {seconds:.0f} s") from None

        seconds = self._get_timeout(cell) or self.timeout
        forbidden = shortcuts.forbidden_calls(source)
        result, session = await asyncio.to_thread(
            remote.check_remotely, question, source, transport, seconds, forbidden
        )
        self._round_trips += session.round_trips
        tested = tuple(shortcuts.names_tested(source))
        found = notebook_shortcuts(self.nb, question, forbidden, tested) + session.called
        result = dataclasses.replace(result, shortcut=shortcuts.verdict(question, found))
        failure = session.broken
        if failure is None and self._watch.dropped():
            failure = self._notes[MESSAGE_DROPPED]
        cell.outputs = [score_output(result, failure)]
        if failure is not None:
            await self._restart_and_replay()

    async def _ask(
        self, content: dict[str, str], seconds: float, on_input: Callable[[str], str]
    ) -> str:
        """One request to the kernel's agent; its answer, or KernelUnresponsive. The kernel's
        input requests meanwhile are calls of the test's functions: ``on_input`` answers."""
        assert self.kc is not None
        msg_id = remote.send_request(self.kc, content)
        deadline = monotonic() + seconds
        while (left := deadline - monotonic()) > 0:
            with contextlib.suppress(Empty):
                wait = min(left, remote.POLL_SECONDS)
                msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=wait))
                if msg["parent_header"].get("msg_id") == msg_id:
                    return remote.answer_of(msg)
            if self._watch.dropped() & {"shell", "stdin"}:
                raise remote.KernelUnresponsive(self._notes[MESSAGE_DROPPED])
            while await ensure_async(self.kc.stdin_channel.msg_ready()):
                asked = await ensure_async(self.kc.stdin_channel.get_msg(timeout=0))
                self.kc.input(on_input(str(asked["content"].get("prompt", ""))))
        raise remote.KernelUnresponsive(f"no answer within {seconds:.0f} s")

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
        return await _message_for(self.kc.shell_channel, msg_id, _PROBE_SECONDS) is not None

    async def _restart_and_replay(self) -> None:
        """Restart the kernel and re-run, silently, the cells that had run without a hitch.
        A kernel that does not come back leaves the rest of the notebook not run."""
        assert self.km is not None and self.kc is not None
        try:
            await ensure_async(self.km.restart_kernel(now=True))
            await self._connect_again()  # fresh channels: the old ones may have been dropped
            await self._replay()
            if self._watch.dropped():  # a replayed cell's output over the limit, this time
                await self._connect_again()
        except (RuntimeError, TimeoutError, OSError):
            self._kernel_lost = True

    async def _replay(self) -> None:
        """Re-run, silently, the cells that had run without a hitch."""
        assert self.kc is not None
        for index in self._replayable:
            source = self.nb.cells[index].source
            msg_id = await ensure_async(self.kc.execute(source, silent=True, store_history=False))
            seconds = self._get_timeout(None) or 0
            if await _message_for(self.kc.shell_channel, msg_id, seconds) is None:
                return


def _without_status(error: dict[str, Any]) -> dict[str, str]:
    return {"name": error["ename"], "message": error["evalue"]}
