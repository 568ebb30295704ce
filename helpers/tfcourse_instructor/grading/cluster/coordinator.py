"""The coordinator's side of grading on a Dask cluster (``grade --scheduler ADDRESS``).

It checks every worker before sending anything (same kit, same pinned packages, a sandbox),
sends the assignment's bundle once to each, then one task per submission, keeping a bounded
number in flight so that a class of any size is pre-flighted as it goes. A worker lost while it
holds a submission is Dask's to handle: the scheduler gives the task to another worker, up to its
``distributed.scheduler.allowed-failures``. Dask counts every task a lost worker held, the ones
waiting behind the running one too; so a submission is reported "not graded: killed N workers"
only once more workers than that died while running it (each task tells the coordinator when it
starts), and otherwise sent again, so that no student loses a grade to a neighbour's deaths.
Results are accepted only from the bundle that was sent
and from an equal environment; what a worker returns is written under the coordinator's scratch
folder by notebook names the course knows, never by names the result carries.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import nbformat

from tfcourse_instructor.grading.cluster import worker
from tfcourse_instructor.grading.cluster.bundle import Bundle, differences, signed_packages
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission.issues import Issue
from tfcourse_instructor.grading.submission.workspace import GradedSubmission, Limits

IN_FLIGHT_PER_THREAD = 2
"""Tasks queued per worker thread: enough to keep every worker busy, few enough that the
coordinator holds a bounded number of pre-flighted submissions."""
CONNECT_TIMEOUT = "30s"


class ClusterRefused(RuntimeError):
    """The cluster cannot grade this class as one machine would (the message says why)."""


def connect(address: str):  # -> distributed.Client
    """A client of the scheduler at ``address`` (``tcp://HOST:8786``, ``tls://…``) or named
    by the scheduler file ``address``; TLS and credentials come from Dask's configuration."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterRefused("grading on a cluster needs Dask: pip install '.[cluster]'") from None
    if "://" not in address and Path(address).is_file():
        return Client(scheduler_file=address, timeout=CONNECT_TIMEOUT)
    return Client(address, timeout=CONNECT_TIMEOUT)


def check_workers(client, bundle: Bundle, sandboxed: bool) -> int:
    """Refuse a cluster with no workers, or with one whose environment differs from the
    coordinator's or that cannot sandbox; return the number of worker threads."""
    reports = client.run(worker.report, signed_packages(bundle.environment))
    if not reports:
        raise ClusterRefused(f"no workers connected to {client.scheduler.address}")
    problems = []
    for address, found in sorted(reports.items()):
        if changed := differences(bundle.environment, found.environment):
            problems.append(f"{address}: other software: {', '.join(changed)}")
        if sandboxed and found.sandbox_problem:
            problems.append(f"{address}: cannot sandbox submissions: {found.sandbox_problem}")
    if problems:
        raise ClusterRefused(
            "these workers would not grade as this machine does:\n  " + "\n  ".join(problems)
        )
    return sum(client.nthreads().values())


def grade_on_cluster(
    client,
    course: Course,
    bundle: Bundle,
    students: Sequence[str],
    preflight: Callable[[str], dict[str, nbformat.NotebookNode]],
    limits: Limits,
    sandboxed: bool,
    received: Path,
) -> Iterator[GradedSubmission]:
    """Grade ``students`` on the cluster, yielding each as it comes back (in any order).
    ``preflight(student)`` returns the notebooks to grade; executed notebooks are written under
    ``received``."""
    from distributed import as_completed

    from tfcourse_instructor.grading.cluster.plugin import Cleanup

    threads = check_workers(client, bundle, sandboxed)
    client.register_plugin(Cleanup())
    bundle_key = f"bundle-{bundle.digest[:16]}-{uuid.uuid4().hex[:8]}"
    sent = client.submit(worker.bundle_of, bundle, key=bundle_key)
    runs = _Runs(client)
    queue, futures, done = iter(students), {}, as_completed()

    def submit(student: str, texts: dict[str, str], attempt: int = 0) -> None:
        key = f"grade-{course.assignment}-{student}-{uuid.uuid4().hex[:8]}"
        runs.expect(key, student)
        future = client.submit(
            worker.grade, sent, student, texts, limits, sandboxed, key=key, pure=False
        )
        futures[future] = (student, texts, attempt)
        done.add(future)

    def submit_next() -> None:
        student = next(queue, None)
        if student is not None:
            submit(student, {name: nbformat.writes(nb) for name, nb in preflight(student).items()})

    try:
        for _ in range(max(1, threads * IN_FLIGHT_PER_THREAD)):
            submit_next()
        for future in done:
            student, texts, attempt = futures.pop(future)
            allowed = _allowed_deaths(future)
            if allowed is None:
                graded = _outcome(future, course, bundle, student, received)
            elif runs.count(student) <= allowed and attempt < allowed:
                future.release()
                submit(student, texts, attempt + 1)  # its workers died while it waited
                continue
            else:
                graded = GradedSubmission(student, [Issue("", _killed(runs.count(student)))])
            future.release()
            submit_next()
            yield graded
    finally:
        runs.close()


class _Runs:
    """How many times each student's tasks started on a worker, as the workers report it
    (:func:`~tfcourse_instructor.grading.cluster.worker.grade`); a task that ends with its
    worker's death started as often as its workers died while running it."""

    def __init__(self, client) -> None:
        self._client = client
        self._students: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        # Events reach the client in order with the tasks' states: a start is counted
        # before the death that ends it is reported.
        client.subscribe_topic(worker.STARTED_TOPIC, self._started)

    def expect(self, key: str, student: str) -> None:
        with self._lock:
            self._students[key] = student

    def count(self, student: str) -> int:
        with self._lock:
            return self._counts[student]

    def close(self) -> None:
        self._client.unsubscribe_topic(worker.STARTED_TOPIC)

    def _started(self, event: tuple[float, str]) -> None:
        with self._lock:
            if (student := self._students.get(event[1])) is not None:
                self._counts[student] += 1


def _allowed_deaths(future) -> int | None:
    """The worker deaths Dask allows a task, if ``future``'s task ended by exceeding them."""
    from distributed import KilledWorker

    if future.status == "error" and isinstance(error := future.exception(), KilledWorker):
        return error.allowed_failures
    return None


def _killed(runs: int) -> str:
    """Why a submission whose workers kept dying is not graded."""
    return f"not graded: killed {runs} workers" if runs else "not graded: its workers kept dying"


def _outcome(
    future, course: Course, bundle: Bundle, student: str, received: Path
) -> GradedSubmission:
    """The graded submission a finished task stands for, or why it is not graded."""
    try:
        result = future.result()
    except Exception as error:  # one submission's failure must not stop the class
        problem = f"not graded: {type(error).__name__}: {str(error)[-200:]}"
        return GradedSubmission(student, [Issue("", problem)])
    return accept(result, course, bundle, student, received)


def accept(
    result: worker.WorkerResult, course: Course, bundle: Bundle, student: str, received: Path
) -> GradedSubmission:
    """Check ``result`` against what was sent and write its notebooks under ``received``."""
    refused = None
    if result.student != student or result.digest != bundle.digest:
        refused = "graded from other inputs than the coordinator's"
    elif changed := differences(bundle.environment, result.environment):
        refused = f"graded with other software: {', '.join(changed)}"
    if refused:
        problem = f"not graded: a worker's result was {refused}"
        return GradedSubmission(student, [Issue("", problem)])
    issues = [Issue(notebook, problem) for notebook, problem in result.issues]
    if result.notebooks is None:
        return GradedSubmission(student, issues)
    folder = received / student / course.assignment
    folder.mkdir(parents=True)
    for name in course.notebook_names():
        if name in result.notebooks:
            notebook = nbformat.reads(result.notebooks[name], as_version=4)
            nbformat.write(notebook, folder / f"{name}.ipynb")
    return GradedSubmission(student, issues, folder)
