"""Grading a class: every step, composed in one place.

    submitted/ ──pre-flight──▶ scratch course per submission ──autograde with limits──▶
    show submitted outputs ──▶ merge into the class gradebook (one writer) ──▶ feedback

Submissions are graded in parallel (``jobs``), each in a scratch course and a sandbox of its
own (:mod:`tfcourse_instructor.grading.submission.sandbox`), so a broken or hostile one costs only
its own points; its kernels are forked from a process in its sandbox that has done the imports once
(:mod:`tfcourse.grading_kernel.forkserver`). A submission whose files did not change since the last
run (same fingerprint, same source, release and limits) is not graded again; its feedback is
rewritten only when its gradebook entries changed (a grader scored or commented in formgrader) or
its pages are missing.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
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
    submitted_students,
)
from tfcourse_instructor.grading.classroom.merge import merge_grades, record_assignment
from tfcourse_instructor.grading.classroom.preflight import prepare_notebook
from tfcourse_instructor.grading.classroom.summary import Record, load_records, save_records
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission import sandbox
from tfcourse_instructor.grading.submission.issues import Issue
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
    on_start: Callable[[int, int], None] | None = None,
) -> dict[str, Record]:
    """Grade the submissions of ``students`` (default: all under ``submitted/``), write
    feedback and the class gradebook; return every student's record.

    Each submission runs in a sandbox unless ``sandboxed`` is False; where none can be made,
    :class:`SandboxUnavailable` is raised before anything is graded. ``only_submitted``
    grades only the notebooks a submission holds (a missing one scores 0 without being run)
    instead of grading it as the release; ``feedback=False`` writes no feedback pages. Both
    serve runs whose cost must follow the notebooks that matter
    (:mod:`tfcourse_instructor.grading.selftest.mutants`). ``on_start`` is told, before any
    grading, how many submissions will be graded and how many are unchanged since they were
    last graded (their grades are kept)."""
    if sandboxed and (reason := sandbox.unavailable_reason()):
        raise SandboxUnavailable(reason)
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
    if on_start:
        on_start(len(todo), len(students) - len(todo))
    if todo:
        with tempfile.TemporaryDirectory(prefix="tfcourse-grading-") as scratch:
            record_assignment(course)
            workspace = Workspace(course, Path(scratch), limits, sandboxed)
            try:
                workspace.prepare()
                graded = _grade_all(course, workspace, todo, jobs, progress, only_submitted)
            finally:
                workspace.close()
            merge_grades(course, graded)  # reads the scratch courses: before cleanup
        for submission in graded:
            records[submission.student] = Record(
                fingerprints[submission.student],
                submission.autograded is not None,
                submission.issues,
            )
    if feedback:
        _refresh_feedback(course, students, records, jobs)
    save_records(course, records)
    return {s: records[s] for s in students}


def _refresh_feedback(
    course: Course, students: list[str], records: dict[str, Record], jobs: int
) -> None:
    """Write the feedback of every student in ``students`` whose gradebook entries differ
    from those their feedback was written from (a new record has none) or whose pages are
    missing; note in their records what it was written from."""
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
    write_feedback(course, stale, jobs)
    for student in stale:
        records[student].feedback = digests[student]


def forbidden_rules(course: Course) -> dict[str, tuple[str, ...]]:
    """What each question of ``course`` forbids (question -> qualified names), read once per
    class: parsing in several threads at once trips CPython's AST constructor."""
    return {
        path.stem: shortcuts.forbidden_calls(path.read_text(encoding="utf-8"))
        for path in sorted(course.tests_dir.glob("*.py"))
    }


def grade_submission(
    course: Course,
    workspace: Workspace,
    student: str,
    rules: dict[str, tuple[str, ...]],
    only_submitted: bool = False,
) -> GradedSubmission:
    """Pre-flight checks (``rules``: :func:`forbidden_rules`), then autograde of one
    submission in its scratch course (of the notebooks it holds only, with
    ``only_submitted``). A notebook graded as the release in place of an unreadable file is
    named once, by pre-flight: what its cells raise is the release's doing."""
    folder = course.submitted_dir / student / course.assignment
    notebooks, issues, substituted = {}, [], set()
    for name in course.notebook_names():
        if only_submitted and not (folder / f"{name}.ipynb").is_file():
            continue
        release = nbformat.read(course.release_dir / f"{name}.ipynb", as_version=4)
        prepared = prepare_notebook(folder / f"{name}.ipynb", release, rules)
        notebooks[name] = prepared.notebook
        issues += prepared.issues
        if prepared.substituted:
            substituted.add(name)
    graded = workspace.grade(student, notebooks)
    graded.issues = issues + [i for i in graded.issues if i.notebook not in substituted]
    return graded


def _grade_all(
    course: Course,
    workspace: Workspace,
    students: list[str],
    jobs: int,
    progress: bool,
    only_submitted: bool,
) -> list[GradedSubmission]:
    """Grade ``students`` with ``jobs`` workers (threads: the work runs in subprocesses)."""
    results, rules = [], forbidden_rules(course)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {
            pool.submit(grade_submission, course, workspace, s, rules, only_submitted): s
            for s in students
        }
        bar = tqdm(
            as_completed(futures),
            total=len(futures),
            desc="grading",
            unit="submission",
            file=sys.stderr,
            disable=not progress,
        )
        for future in bar:
            student = futures[future]
            try:
                results.append(future.result())
            except Exception as error:  # one submission's failure must not stop the class
                issue = Issue("", f"not graded: {type(error).__name__}: {str(error)[-200:]}")
                results.append(GradedSubmission(student, [issue]))
    return sorted(results, key=lambda result: result.student)
