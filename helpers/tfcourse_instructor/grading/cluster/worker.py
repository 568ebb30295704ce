"""What a cluster's worker runs: one submission's grading, from a bundle of grading inputs.

A task gets the bundle (sent once to each worker and kept there), one student's pre-flighted
notebooks and the limits; it grades them as one machine does
(:meth:`~tfcourse_instructor.grading.submission.workspace.Workspace.grade`: scratch course,
sandbox, trusted runner) and returns plain data: the executed notebooks as JSON text, the issues,
the digest of the inputs it graded from and the worker's environment signature, which the
coordinator checks before it keeps anything. Each worker process unpacks a bundle once, into a
folder named after the process, removed when the worker closes, or, if a signal ended it, when
the next worker starts on the machine
(:class:`~tfcourse_instructor.grading.cluster.plugin.Cleanup`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tfcourse_instructor.grading.cluster.bundle import (
    Bundle,
    environment_signature,
    signed_packages,
    unpack,
)
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission import sandbox
from tfcourse_instructor.grading.submission.folders import process_folder
from tfcourse_instructor.grading.submission.warm import WarmProcesses
from tfcourse_instructor.grading.submission.workspace import Limits, Workspace

STARTED_TOPIC = "tfcourse-grading-started"
"""The Dask event topic on which a task announces its key when it starts
(:class:`~tfcourse_instructor.grading.cluster.coordinator._Runs` counts them)."""


@dataclass(frozen=True)
class WorkerResult:
    """One submission graded on a worker, as it travels back to the coordinator."""

    student: str
    digest: str
    """Digest of the bundle the worker graded from."""
    environment: dict[str, str]
    notebooks: dict[str, str] | None
    """Executed notebooks by name (JSON text); None if grading failed altogether."""
    issues: list[tuple[str, str]]
    """(notebook, problem) pairs."""


@dataclass(frozen=True)
class WorkerReport:
    """What the coordinator checks of each worker before sending it any submission."""

    environment: dict[str, str]
    sandbox_problem: str | None


def report(packages: list[str]) -> WorkerReport:
    """This worker's environment signature (over ``packages``) and why it cannot sandbox a
    submission, if it cannot."""
    return WorkerReport(environment_signature(packages), sandbox.unavailable_reason())


def grade(
    bundle: Bundle,
    student: str,
    notebooks: dict[str, str],
    limits: Limits,
    sandboxed: bool,
) -> WorkerResult:
    """Grade ``student``'s pre-flighted ``notebooks`` (name -> JSON text) from ``bundle``."""
    _announce_start()
    workspace = _workspace(bundle, _with_worker_threads(limits), sandboxed)
    parsed = {name: nbformat.reads(text, as_version=4) for name, text in notebooks.items()}
    try:
        graded = workspace.grade(student, parsed)
        executed = None
        if graded.autograded is not None:
            executed = {
                path.stem: path.read_text(encoding="utf-8")
                for path in sorted(graded.autograded.glob("*.ipynb"))
            }
    finally:
        shutil.rmtree(workspace.scratch_folder(student), ignore_errors=True)
    return WorkerResult(
        student,
        bundle.digest,
        environment_signature(signed_packages(bundle.environment)),
        executed,
        [(issue.notebook, issue.problem) for issue in graded.issues],
    )


_workspaces: dict[tuple[str, Limits, bool], Workspace] = {}
_warm: dict[bool, WarmProcesses] = {}
"""The processes this worker's workspaces fork from, sandboxed or not."""
_lock = threading.Lock()


def _workspace(bundle: Bundle, limits: Limits, sandboxed: bool) -> Workspace:
    """This process's workspace for ``bundle``, unpacked on first use."""
    key = (bundle.digest, limits, sandboxed)
    with _lock:
        if key not in _workspaces:
            root = process_folder(Path(tempfile.gettempdir()), "worker-")
            unpack(bundle, root / "template")
            course = Course(root / "template", bundle.assignment)
            warm = _warm.setdefault(sandboxed, WarmProcesses(sandboxed))
            workspace = Workspace(course, root, limits, warm)
            workspace.open()
            _workspaces[key] = workspace
        return _workspaces[key]


def remove_workspaces() -> None:
    """Remove every workspace of this process."""
    with _lock:
        for workspace in _workspaces.values():
            workspace.close()
            shutil.rmtree(workspace.root, ignore_errors=True)
        _workspaces.clear()
        for warm in _warm.values():
            warm.close()
        _warm.clear()


def bundle_of(bundle: Bundle) -> Bundle:
    """The task that holds a bundle on the cluster: unlike scattered data, a task's result
    lost with every worker that held it is computed again, so grading goes on when workers
    die."""
    return bundle


def _announce_start() -> None:
    """Tell the coordinator this task now runs here (see :data:`STARTED_TOPIC`)."""
    from distributed import get_worker

    running = get_worker()
    running.log_event(STARTED_TOPIC, running.get_current_task())


def _with_worker_threads(limits: Limits) -> Limits:
    """``limits`` with each kernel's threads set to this machine's cores shared by the
    worker's threads (a grade never depends on it)."""
    threads = 1
    with contextlib.suppress(ImportError, ValueError):
        from distributed import get_worker

        threads = max(1, (os.cpu_count() or 1) // get_worker().state.nthreads)
    return dataclasses.replace(limits, threads=threads)
