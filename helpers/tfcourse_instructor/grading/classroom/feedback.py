"""Feedback HTML per student, kept in step with the gradebook.

A student's feedback shows what the gradebook holds for their submission: every score
(automatic, by hand, extra credit), every comment and any late penalty. A digest of exactly
that is kept with the student's record, so a later run rewrites a student's feedback when a
grader scored or commented something in formgrader, and leaves every other page alone.

The pages render what students wrote, so they render it inert and unable to pass for the
kit's or nbgrader's own content: markdown through
:func:`~tfcourse_instructor.grading.rendering.safe_markdown.safe_markdown`
(``nbgrader_config.py`` installs it as the markdown filter of the feedback page and of
formgrader), outputs in safe types and sizes only
(:mod:`tfcourse_instructor.grading.submission.shown_outputs`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry
from tqdm import tqdm

from tfcourse_instructor.grading.classroom.merge import EXCHANGE_FILES
from tfcourse_instructor.grading.course import Course, NbgraderRun
from tfcourse_instructor.grading.submission import graded_outputs
from tfcourse_instructor.grading.submission.graded_outputs import HIDDEN_FAILURES_METADATA


def feedback_folder(course: Course, student: str) -> Path:
    """Where the feedback pages of ``student`` go: ``feedback/<student>/<assignment>/``."""
    return course.root / "feedback" / student / course.assignment


def gradebook_digests(course: Course, students: Sequence[str]) -> dict[str, str]:
    """Per student with a graded submission, a digest of everything their feedback shows
    from the gradebook (students without one are left out)."""
    digests = {}
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(course.assignment, student)
            except MissingEntry:
                continue
            shown = sorted(
                (
                    notebook.name,
                    notebook.late_submission_penalty,
                    sorted(
                        (g.name, g.auto_score, g.manual_score, g.extra_credit)
                        for g in notebook.grades
                    ),
                    sorted((c.name, c.auto_comment, c.manual_comment) for c in notebook.comments),
                )
                for notebook in submission.notebooks
            )
            digests[student] = hashlib.sha256(json.dumps(shown).encode()).hexdigest()
    return digests


def write_feedback(
    course: Course,
    students: Sequence[str],
    jobs: int = 1,
    progress: bool = False,
    run: NbgraderRun = Course.nbgrader,
) -> None:
    """Feedback HTML of ``students`` into their :func:`feedback_folder`, by
    ``nbgrader generate_feedback`` over their autograded notebooks: up to ``jobs`` runs at
    once (each by ``run``), each on its own share of the students (feedback only reads the
    gradebook), with a progress bar on standard error if ``progress``. Only the HTML and
    nbgrader's exchange files are kept: nbgrader would also copy the autograded folder's
    other files, the student's own among them."""
    runs = max(1, jobs)
    shares = [list(students[start::runs]) for start in range(runs)]
    shares = [share for share in shares if share]
    with (
        tempfile.TemporaryDirectory() as staging,
        ThreadPoolExecutor(max_workers=max(1, len(shares))) as pool,  # the work is subprocesses
        tqdm(
            total=len(students),
            desc="feedback",
            unit="student",
            file=sys.stderr,
            disable=not progress or not students,
        ) as bar,
    ):
        folders = [Path(staging, str(index)) for index in range(len(shares))]
        running = [
            pool.submit(_write_feedback_share, course, share, folder, run)
            for share, folder in zip(shares, folders, strict=True)
        ]
        while running:
            done, running = wait(running, timeout=PROGRESS_SECONDS)
            for finished in done:
                finished.result()
            # nbgrader writes one student's pages at a time: the pages so far are the count.
            pages = (folder / "feedback" for folder in folders)
            written = sum(1 for feedback in pages for _ in feedback.glob(f"*/{course.assignment}"))
            if written > bar.n:
                bar.update(written - bar.n)


PROGRESS_SECONDS = 1.0
"""How often the progress bar of :func:`write_feedback` counts the pages written."""


def _drop_grader_notes(path: Path) -> None:
    """Remove from the notebook at ``path`` every output's record for graders alone."""
    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return  # nbgrader reports a notebook it cannot read
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            output.get("metadata", {}).pop(HIDDEN_FAILURES_METADATA, None)
    graded_outputs.rewrite(notebook, path)


def _write_feedback_share(
    course: Course, students: Sequence[str], staging: Path, run: NbgraderRun
) -> None:
    """One ``generate_feedback`` run for ``students``, staged in ``staging``, apart from the
    course."""
    autograded, feedback = staging / "autograded", staging / "feedback"
    for student in students:
        shutil.copytree(
            course.autograded_dir / student / course.assignment,
            autograded / student / course.assignment,
            ignore=shutil.ignore_patterns("tests"),
        )
    for path in autograded.glob("*/*/*.ipynb"):
        _drop_grader_notes(path)
    run(
        course,
        "generate_feedback",
        course.assignment,
        "--force",
        f"--CourseDirectory.autograded_directory={autograded}",
        f"--CourseDirectory.feedback_directory={feedback}",
    )
    for student in students:
        folder = feedback_folder(course, student)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for page in (feedback / student / course.assignment).glob("*.html"):
            shutil.copy(page, folder / page.name)
        for name in EXCHANGE_FILES:
            kept = course.autograded_dir / student / course.assignment / name
            if kept.is_file():
                shutil.copy(kept, folder / name)
