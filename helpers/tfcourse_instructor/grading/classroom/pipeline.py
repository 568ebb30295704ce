"""Grading a class: every step, composed in one place.

    submitted/ ──pre-flight──▶ scratch course per submission ──autograde with limits──▶
    show submitted outputs ──▶ merge into the class gradebook (one writer) ──▶ feedback

Submissions are graded in parallel (``jobs``), each in a scratch course and a sandbox of its
own (:mod:`tfcourse_instructor.grading.submission.sandbox`), so a broken or hostile one costs only
its own points; its kernels are forked from a process in its sandbox that has done the imports once
(:mod:`tfcourse.grading_kernel.forkserver`). A submission whose files did not change since the last
run (same fingerprint, same source, release and limits) is not graded again; its feedback is
rewritten only when its gradebook entries changed (a grader scored or commented in formgrader) or
its pages are missing. Submissions whose notebooks are identical byte for byte (blank ones, copies,
the same file handed in twice) are graded once: each gets a copy of that grading, merged with its
own hand-in time.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import nbformat
from tqdm import tqdm

from tfcourse.declarations import shortcuts
from tfcourse_instructor.grading.classroom.feedback import (
    feedback_folder,
    gradebook_digests,
    write_feedback,
)
from tfcourse_instructor.grading.classroom.intake import (
    fingerprint,
    grading_inputs_digest,
    notebooks_digest,
    submitted_students,
)
from tfcourse_instructor.grading.classroom.merge import merge_grades, record_assignment
from tfcourse_instructor.grading.classroom.preflight import prepare_notebook
from tfcourse_instructor.grading.classroom.summary import Record, load_records, save_records
from tfcourse_instructor.grading.course import Course, NbgraderRun
from tfcourse_instructor.grading.submission import sandbox, timings
from tfcourse_instructor.grading.submission.folders import process_folder
from tfcourse_instructor.grading.submission.issues import Issue
from tfcourse_instructor.grading.submission.warm import WarmProcesses
from tfcourse_instructor.grading.submission.workspace import GradedSubmission, Limits, Workspace


class SandboxUnavailable(RuntimeError):
    """Submissions cannot be sandboxed here and the grader did not accept grading without."""


def default_jobs() -> int:
    """One job per core."""
    return os.cpu_count() or 1


def grade_class(
    course: Course,
    students: list[str] | None = None,
    *,
    jobs: int = 1,
    limits: Limits | None = None,
    force: bool = False,
    progress: bool = True,
    only_submitted: bool = False,
    feedback: bool = True,
    sandboxed: bool = True,
    scheduler: str | None = None,
    merge_every: int = 500,
    on_start: Callable[[Counts], None] | None = None,
    warm: WarmProcesses | None = None,
) -> dict[str, Record]:
    """Grade the submissions of ``students`` (default: all under ``submitted/``), write
    feedback and the class gradebook; return every student's record.

    Each submission runs in a sandbox unless ``sandboxed`` is False; where none can be made,
    :class:`SandboxUnavailable` is raised before anything is graded. Submissions are graded
    ``jobs`` at a time on this machine, or on the Dask cluster whose scheduler is at (or named
    by the scheduler file) ``scheduler``. Grades are merged into the gradebook in batches as
    they come (every ``merge_every`` submissions, or :data:`MERGE_EVERY_SECONDS`), each batch
    recorded, so that a run stopped half-way resumes with what it has not merged.
    ``only_submitted`` grades only the notebooks a submission holds (a missing one scores 0
    without being run) instead of grading it as the release; ``feedback=False`` writes no
    feedback pages. Both serve runs whose cost must follow the notebooks that matter
    (:mod:`tfcourse_instructor.grading.selftest.mutants`). ``on_start`` is told, before any
    grading, the :class:`Counts` of the run. ``warm``: the processes to fork nbgrader's runs
    and the fork servers from, started if need be and left running (a command that grades
    several assignments shares them); by default the run starts and ends its own."""
    if sandboxed and not scheduler and (reason := sandbox.unavailable_reason()):
        raise SandboxUnavailable(reason)
    if warm is not None and warm.sandboxed != sandboxed:
        raise ValueError("the warm processes serve sandboxed grading or not, as grading does")
    students = submitted_students(course) if students is None else students
    limits = limits or Limits(threads=max(1, default_jobs() // jobs))
    # What a grade depends on; the number of threads per kernel (set by --jobs) does not.
    salt = "|".join(
        map(
            str,
            (
                grading_inputs_digest(course),
                limits.cell_seconds,
                limits.notebook_seconds,
                limits.memory_mb,
                limits.submission_memory_mb,
                limits.grader_memory_mb,
                limits.processes,
                sandboxed,
            ),
        )
    )
    records = load_records(course)
    fingerprints = {
        s: fingerprint(course.submitted_dir / s / course.assignment, salt) for s in students
    }
    todo = [
        s
        for s in students
        if force or s not in records or records[s].fingerprint != fingerprints[s]
    ]
    identical = identical_submissions(course, todo)
    if on_start:
        on_start(Counts(len(students), len(identical), len(todo) - len(identical)))
    own = warm is None
    if warm is None:
        warm = warm_processes(sandboxed, scheduler)
    scratch, workspace = None, None
    try:
        if todo:
            # Named after this process: a run that was killed leaves it to the next to remove.
            scratch = process_folder(Path(tempfile.gettempdir()), "grading-")
            workspace = Workspace(course, scratch, limits, warm)
            with timings.phase("class set-up"):
                workspace.open()
                record_assignment(course, warm.nbgrader)
                workspace.prepare()
            preflight = _Preflight(course, only_submitted)
            if scheduler:
                graded = _grade_on_cluster(course, workspace, [*identical], preflight, scheduler)
            else:
                graded = _grade_here(workspace, [*identical], jobs, preflight)
            graded = _with_identical(graded, identical, scratch / "identical", course.assignment)
            with tqdm(
                total=len(todo),
                desc="grading",
                unit="submission",
                file=sys.stderr,
                disable=not progress,
            ) as bar:
                for batch in _batches(_counted(graded, bar), merge_every):
                    bar.set_postfix_str(f"merging {len(batch)} into the gradebook")
                    with timings.phase("merge"):
                        _merge(course, batch, records, fingerprints)
                    bar.set_postfix_str("")
        if feedback:
            with timings.phase("feedback"):
                _refresh_feedback(course, students, records, jobs, progress, warm.nbgrader)
    finally:
        if workspace is not None:
            workspace.close()
        if own:
            warm.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    save_records(course, records)
    return {s: records[s] for s in students}


def warm_processes(sandboxed: bool, scheduler: str | None) -> WarmProcesses:
    """The processes a grading run forks from, not yet started: with no zygote when a
    cluster grades (the coordinator runs no sandbox; each worker has its own processes)."""
    return WarmProcesses(sandboxed, zygote=not scheduler)


@dataclass(frozen=True)
class Counts:
    """What a run of :func:`grade_class` does with a class's submissions."""

    submissions: int
    graded: int
    """Submissions graded (one of each set of identical ones)."""
    identical: int
    """Submissions identical to one of those graded: they get a copy of its grading."""

    @property
    def unchanged(self) -> int:
        """Submissions unchanged since they were last graded: their grades are kept."""
        return self.submissions - self.graded - self.identical


def identical_submissions(course: Course, students: list[str]) -> dict[str, list[str]]:
    """``students`` grouped by identical notebooks: the first of each group (in the order
    of ``students``), which is graded, to the others."""
    groups: dict[str, list[str]] = {}
    for student in students:
        folder = course.submitted_dir / student / course.assignment
        groups.setdefault(notebooks_digest(folder), []).append(student)
    return {first: others for first, *others in groups.values()}


def _with_identical(
    graded: Iterable[GradedSubmission],
    identical: dict[str, list[str]],
    folder: Path,
    assignment: str,
) -> Iterator[GradedSubmission]:
    """``graded``, each preceded by a copy of its grading, written under ``folder``, for
    every submission identical to it (``identical``): before it, since it is merged, and
    its folder removed, as soon as it is passed on."""
    for submission in graded:
        for student in identical.get(submission.student, []):
            autograded = None
            if submission.autograded is not None:
                autograded = folder / student / assignment
                shutil.copytree(submission.autograded, autograded)
            yield GradedSubmission(student, list(submission.issues), autograded)
        yield submission


MERGE_EVERY_SECONDS = 300
"""Graded submissions wait at most this long to be merged into the gradebook: few nbgrader
runs, and little to grade again after a crash."""


def _merge(
    course: Course,
    batch: list[GradedSubmission],
    records: dict[str, Record],
    fingerprints: dict[str, str],
) -> None:
    """Merge ``batch`` into the class gradebook, then record it: a submission is recorded as
    graded only once its grades are in the gradebook."""
    merge_grades(course, batch)
    for submission in batch:
        records[submission.student] = Record(
            fingerprints[submission.student],
            submission.autograded is not None,
            submission.issues,
        )
        if submission.autograded is not None:
            shutil.rmtree(submission.autograded)
    save_records(course, records)


def _batches(graded: Iterable[GradedSubmission], size: int) -> Iterator[list[GradedSubmission]]:
    """``graded`` in batches to merge: of ``size``, or what came in
    :data:`MERGE_EVERY_SECONDS`."""
    batch: list[GradedSubmission] = []
    since = time.monotonic()
    for submission in graded:
        batch.append(submission)
        if len(batch) >= size or time.monotonic() - since >= MERGE_EVERY_SECONDS:
            yield batch
            batch, since = [], time.monotonic()
    if batch:
        yield batch


def _counted(graded: Iterable[GradedSubmission], bar: tqdm) -> Iterator[GradedSubmission]:
    """``graded``, counting each on ``bar`` as it comes."""
    for submission in graded:
        bar.update()
        yield submission


def _refresh_feedback(
    course: Course,
    students: list[str],
    records: dict[str, Record],
    jobs: int,
    progress: bool,
    run: NbgraderRun,
) -> None:
    """Write the feedback of every student in ``students`` whose gradebook entries differ
    from those their feedback was written from (a new record has none) or whose pages are
    missing, each nbgrader run by ``run``; note in their records what it was written from."""
    digests = gradebook_digests(course, students)
    stale = [
        student
        for student, digest in digests.items()
        if (course.autograded_dir / student / course.assignment).is_dir()
        and (
            records[student].feedback != digest
            or not any(feedback_folder(course, student).glob("*.html"))
        )
    ]
    write_feedback(course, stale, jobs, progress, run)
    for student in stale:
        records[student].feedback = digests[student]


def forbidden_rules(course: Course) -> dict[str, tuple[str, ...]]:
    """What each question of ``course`` forbids (question -> qualified names), read once per
    class: parsing in several threads at once trips CPython's AST constructor."""
    return {
        path.stem: shortcuts.forbidden_calls(path.read_text(encoding="utf-8"))
        for path in sorted(course.tests_dir.glob("*.py"))
    }


class _Preflight:
    """Pre-flight checks of a class's submissions, remembering what each found until its
    grading comes back."""

    def __init__(self, course: Course, only_submitted: bool) -> None:
        self.course = course
        self.only_submitted = only_submitted
        self.rules = forbidden_rules(course)
        self.releases = {
            name: nbformat.read(course.release_dir / f"{name}.ipynb", as_version=4)
            for name in course.notebook_names()
        }
        self._found: dict[str, tuple[list[Issue], set[str]]] = {}
        self._lock = threading.Lock()

    def __call__(self, student: str) -> dict[str, nbformat.NotebookNode]:
        """The notebooks of ``student``'s submission made safe to autograde (of those it
        holds only, with ``only_submitted``)."""
        folder = self.course.submitted_dir / student / self.course.assignment
        notebooks, issues, substituted = {}, [], set()
        for name, release in self.releases.items():
            if self.only_submitted and not (folder / f"{name}.ipynb").is_file():
                continue
            prepared = prepare_notebook(folder / f"{name}.ipynb", release, self.rules)
            notebooks[name] = prepared.notebook
            issues += prepared.issues
            if prepared.substituted:
                substituted.add(name)
        with self._lock:
            self._found[student] = (issues, substituted)
        return notebooks

    def finish(self, graded: GradedSubmission) -> GradedSubmission:
        """``graded`` with what pre-flight found first. A notebook graded as the release in
        place of an unreadable file is named once, by pre-flight: what its cells raise is the
        release's doing."""
        with self._lock:
            issues, substituted = self._found.pop(graded.student, ([], set()))
        graded.issues = issues + [i for i in graded.issues if i.notebook not in substituted]
        return graded


def _grade_here(
    workspace: Workspace, students: list[str], jobs: int, preflight: _Preflight
) -> Iterator[GradedSubmission]:
    """Grade ``students`` on this machine, ``jobs`` at a time (threads: the work runs in
    subprocesses), yielding each as it is done."""

    def grade_one(student: str) -> GradedSubmission:
        with timings.phase("pre-flight"):
            notebooks = preflight(student)
        return workspace.grade(student, notebooks)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_one, s): s for s in students}
        for future in as_completed(futures):
            try:
                graded = future.result()
            except Exception as error:  # one submission's failure must not stop the class
                issue = Issue("", f"not graded: {type(error).__name__}: {str(error)[-200:]}")
                graded = GradedSubmission(futures[future], [issue])
            yield preflight.finish(graded)


def _grade_on_cluster(
    course: Course,
    workspace: Workspace,
    students: list[str],
    preflight: _Preflight,
    scheduler: str,
) -> Iterator[GradedSubmission]:
    """Grade ``students`` on the Dask cluster of ``scheduler``
    (:mod:`tfcourse_instructor.grading.cluster`), yielding each as it comes back."""
    from tfcourse_instructor.grading.cluster import bundle, coordinator

    packages = bundle.pinned_packages(course.root / "requirements.txt")
    packed = bundle.pack(
        workspace.template, course.assignment, bundle.environment_signature(packages)
    )
    received = workspace.root / "received"
    with coordinator.connect(scheduler) as client:
        for graded in coordinator.grade_on_cluster(
            client,
            course,
            packed,
            students,
            preflight,
            workspace.limits,
            workspace.sandboxed,
            received,
        ):
            yield preflight.finish(graded)
