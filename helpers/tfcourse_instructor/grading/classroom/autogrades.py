"""Save executed notebooks in the class gradebook as nbgrader's autograde would, a batch of
submissions per transaction.

What the merge needs of ``nbgrader autograde`` is its bookkeeping with only
``SaveAutoGrades`` and ``AssignLatePenalties``: the student and submission rows (with the
submission's time), every grade cell's score and every answer's "No response." comment,
each notebook's late penalty, and ``autograded/<student>/<assignment>/`` holding the
executed notebooks, the source folder's files and the exchange files, read-only. nbgrader
does it one cell at a time, opening the gradebook several times per notebook and committing
after every cell: about a quarter of a second per submission, most of an hour for a class
of 10,000. This module writes the same rows through nbgrader's own database classes, scores
cells with nbgrader's own functions (:func:`nbgrader.utils.determine_grade`, its
checksums) and takes late penalties from the plugin the course configures
(``nbgrader_config.py``), but reads a batch's rows at once and commits once per batch.
``tests/test_merge_matches_nbgrader.py`` proves the gradebook and the folders equal to what
nbgrader's autograde writes.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nbformat
from nbconvert.exporters import NotebookExporter
from nbgrader import utils
from nbgrader.api import (
    Assignment,
    Comment,
    Grade,
    Gradebook,
    Notebook,
    Student,
    SubmittedAssignment,
    SubmittedNotebook,
)
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import AssignLatePenalties
from sqlalchemy.orm import selectinload
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from tfcourse_instructor.grading.course import Course

TIMESTAMP = "timestamp.txt"
"""Where nbgrader's exchange records when a submission was handed in."""
NO_RESPONSE = "No response."
"""nbgrader's automatic comment on an answer cell left as released."""
READ_ONLY = 0o444
"""The mode nbgrader gives the files it writes under ``autograded/`` (no shared group)."""
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Executed:
    """One graded submission to save: its student, its folder of executed notebooks, and the
    files nbgrader's exchange keeps beside it (``timestamp.txt`` gives its time)."""

    student: str
    notebooks: Path
    exchange_files: tuple[Path, ...] = ()


@dataclass
class _Rows:
    """A submission's rows that scoring writes, by (notebook, cell name) as nbgrader finds
    them: a grade or comment of a grade or solution cell before one of a task cell."""

    submission: SubmittedAssignment
    notebooks: dict[str, SubmittedNotebook] = field(default_factory=dict)
    grades: dict[tuple[str, str], Grade] = field(default_factory=dict)
    comments: dict[tuple[str, str], Comment] = field(default_factory=dict)


@dataclass(frozen=True)
class _Writes:
    """What scoring writes for one submission: auto scores of grades and automatic comments,
    by (notebook, cell name)."""

    scores: list[tuple[tuple[str, str], float | None]]
    comments: list[tuple[tuple[str, str], str | None]]


def course_config(root: Path) -> Config:
    """The nbgrader configuration of the course at ``root`` (its ``nbgrader_config.py``)."""
    return PyFileConfigLoader("nbgrader_config.py", path=str(root)).load_config()


def save_autogrades(course: Course, executed: Sequence[Executed]) -> list[str]:
    """Save each of ``executed`` in the gradebook and ``autograded/`` as
    ``nbgrader autograde --force`` with ``SaveAutoGrades`` and ``AssignLatePenalties`` would;
    return a line per submission that could not be saved (its rows and folder are left out,
    as nbgrader leaves out a submission it fails on)."""
    config = course_config(course.root)
    coursedir = CourseDirectory(config=config, root=str(course.root))
    penalties = AssignLatePenalties(config=config)
    penalties.init_plugin()
    # nbgrader's converter replaces the exporter's own preprocessors (all disabled, each
    # followed by a validation of the notebook) with its own: none here.
    exporter = NotebookExporter(config=config, default_preprocessors=[])
    overwrite = config.get("Autograde", {}).get("exclude_overwriting", {})
    kept = set(overwrite.get(course.assignment, []))
    failures = []
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        assignment = _load_assignment(gradebook, course.assignment)
        cells = _cell_names(assignment)
        done = [e for e in executed if any(e.notebooks.glob("*.ipynb"))]  # as nbgrader finds them
        rows = _submission_rows(gradebook, assignment, [e.student for e in done])
        scored: list[tuple[SubmittedAssignment, SubmittedNotebook]] = []
        for submission in done:
            dest = course.autograded_dir / submission.student / course.assignment
            if dest.exists():
                shutil.rmtree(dest)
            try:
                pages = _exported(exporter, submission.notebooks, set(cells))
                writes = _planned_writes(pages, cells)
                timestamp = _timestamp(coursedir, submission.exchange_files)
            except (OSError, ValueError, KeyError) as error:
                failures.append(f"{submission.student}: {type(error).__name__}: {error}")
                continue
            own = rows.get(submission.student) or _new_rows(
                gradebook, assignment, submission.student, rows
            )
            if timestamp:
                own.submission.timestamp = utils.parse_utc(timestamp)
            for name in set(cells) - set(pages):  # not handed in: no points
                for key, grade in own.grades.items():
                    if key[0] == name:
                        grade.auto_score, grade.needs_manual_grade = 0, False
            for key, score in writes.scores:
                grade = own.grades[key]
                grade.auto_score = score
                grade.needs_manual_grade = grade.manual_score is not None or score is None
            for key, comment in writes.comments:
                own.comments[key].auto_comment = comment
            scored += [(own.submission, own.notebooks[name]) for name in pages]
            _write_folder(course, coursedir, dest, submission.exchange_files, pages, kept)
        _assign_late_penalties(gradebook, penalties, scored)
        gradebook.db.commit()
    return failures


def _load_assignment(gradebook: Gradebook, name: str) -> Assignment:
    """The assignment with its notebooks and cells, loaded once for the batch."""
    return (
        gradebook.db.query(Assignment)
        .options(selectinload(Assignment.notebooks).selectinload(Notebook._base_cells))
        .filter(Assignment.name == name)
        .one()
    )


def _submission_rows(
    gradebook: Gradebook, assignment: Assignment, students: list[str]
) -> dict[str, _Rows]:
    """The existing submissions of ``students`` to ``assignment``, with their rows."""
    found: dict[str, _Rows] = {}
    for start in range(0, len(students), 500):  # within SQLite's limit on bound parameters
        submissions = (
            gradebook.db.query(SubmittedAssignment)
            .options(
                selectinload(SubmittedAssignment.notebooks).selectinload(SubmittedNotebook.grades),
                selectinload(SubmittedAssignment.notebooks).selectinload(
                    SubmittedNotebook.comments
                ),
            )
            .filter(
                SubmittedAssignment.assignment_id == assignment.id,
                SubmittedAssignment.student_id.in_(students[start : start + 500]),
            )
        )
        for submission in submissions:
            found[submission.student_id] = _indexed(assignment, submission)
    return found


def _new_rows(
    gradebook: Gradebook, assignment: Assignment, student: str, rows: dict[str, _Rows]
) -> _Rows:
    """A new submission of ``student`` (and the student, if new) mirroring the structure of
    ``assignment``, as :meth:`nbgrader.api.Gradebook.add_submission` makes it, without its
    commit per submission."""
    owner = gradebook.db.get(Student, student) or Student(id=student)
    submission = SubmittedAssignment(assignment=assignment, student=owner)
    for notebook in assignment.notebooks:
        submitted = SubmittedNotebook(notebook=notebook, assignment=submission)
        for cell in notebook.grade_cells:
            Grade(cell_id=cell.id, notebook=submitted)
        for cell in notebook.solution_cells:
            Comment(cell_id=cell.id, notebook=submitted)
        for cell in notebook.task_cells:
            Comment(cell_id=cell.id, notebook=submitted)
            Grade(cell_id=cell.id, notebook=submitted)
    gradebook.db.add(submission)
    rows[student] = _indexed(assignment, submission)
    return rows[student]


def _indexed(assignment: Assignment, submission: SubmittedAssignment) -> _Rows:
    """``submission``'s rows by (notebook, cell name), in the order nbgrader looks them up."""
    indexed = _Rows(submission)
    names = {notebook.id: notebook.name for notebook in assignment.notebooks}
    by_notebook = {names[nb.notebook_id or nb.notebook.id]: nb for nb in submission.notebooks}
    for notebook in assignment.notebooks:
        submitted = indexed.notebooks[notebook.name] = by_notebook[notebook.name]
        grades = {grade.cell_id: grade for grade in submitted.grades}
        comments = {comment.cell_id: comment for comment in submitted.comments}
        for cell in [*notebook.grade_cells, *notebook.task_cells]:
            indexed.grades.setdefault((notebook.name, cell.name), grades[cell.id])
        for cell in [*notebook.solution_cells, *notebook.task_cells]:
            indexed.comments.setdefault((notebook.name, cell.name), comments[cell.id])
    return indexed


def _exported(
    exporter: NotebookExporter, folder: Path, known: set[str]
) -> dict[str, tuple[str, nbformat.NotebookNode]]:
    """The notebooks of ``folder`` that the gradebook knows, by name: the text nbgrader's
    exporter writes for each, and the notebook that text holds."""
    pages = {}
    for path in sorted(folder.glob("*.ipynb")):
        if path.stem in known:
            text, _ = exporter.from_filename(str(path))
            pages[path.stem] = (text, nbformat.reads(text, as_version=4))
    return pages


def _cell_names(assignment: Assignment) -> dict[str, tuple[set[str], set[str]]]:
    """Per notebook of ``assignment``, the names of the cells that have a grade (grade and
    task cells) and those that have a comment (solution and task cells)."""
    return {
        notebook.name: (
            {cell.name for cell in [*notebook.grade_cells, *notebook.task_cells]},
            {cell.name for cell in [*notebook.solution_cells, *notebook.task_cells]},
        )
        for notebook in assignment.notebooks
    }


def _planned_writes(
    pages: dict[str, tuple[str, nbformat.NotebookNode]],
    cells: dict[str, tuple[set[str], set[str]]],
) -> _Writes:
    """What ``SaveAutoGrades`` writes for each cell of ``pages``, in its order; a
    :class:`KeyError` names a cell the gradebook has no entry for."""
    writes = _Writes([], [])
    for name, (_, notebook) in pages.items():
        graded, commented = cells[name]
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if utils.is_grade(cell):
                if grade_id not in graded:
                    raise KeyError(f"{name}: {grade_id}")
                writes.scores.append(((name, grade_id), utils.determine_grade(cell, _log)[0]))
            for answer in (utils.is_solution(cell), utils.is_task(cell)):
                if answer:
                    if grade_id not in commented:
                        raise KeyError(f"{name}: {grade_id}")
                    checksum = cell.metadata.nbgrader.get("checksum")
                    empty = checksum == utils.compute_checksum(cell) and not utils.is_task(cell)
                    writes.comments.append(((name, grade_id), NO_RESPONSE if empty else None))
    return writes


def _timestamp(coursedir: CourseDirectory, exchange_files: tuple[Path, ...]) -> datetime | None:
    """The time the exchange files record (nbgrader's reading of ``timestamp.txt``), or None."""
    folders = {path.parent for path in exchange_files if path.name == TIMESTAMP}
    return coursedir.get_existing_timestamp(str(folders.pop())) if folders else None


def _assign_late_penalties(
    gradebook: Gradebook,
    penalties: AssignLatePenalties,
    scored: list[tuple[SubmittedAssignment, SubmittedNotebook]],
) -> None:
    """What ``AssignLatePenalties`` writes for each scored notebook: no penalty, or the
    course's plugin's for a late submission, from the notebook's score as the gradebook
    sums it."""
    gradebook.db.flush()
    for submission, notebook in scored:
        notebook.late_submission_penalty = None
        if submission.total_seconds_late > 0:
            gradebook.db.refresh(notebook, ["score"])
            penalty = penalties.plugin_inst.late_submission_penalty(
                submission.student_id, notebook.score, submission.total_seconds_late
            )
            if penalty is not None:
                # nbgrader's own clamp (to between 0 and the score), with its warnings
                notebook.late_submission_penalty = penalties._check_late_penalty(notebook, penalty)


def _write_folder(
    course: Course,
    coursedir: CourseDirectory,
    dest: Path,
    exchange_files: tuple[Path, ...],
    pages: dict[str, tuple[str, nbformat.NotebookNode]],
    kept: set[str],
) -> None:
    """``autograded/<student>/<assignment>/`` as nbgrader leaves it: the exchange files, the
    source folder's files over them (but those the course keeps from overwriting), the
    exported notebooks; all read-only."""
    dest.mkdir(parents=True)
    for path in exchange_files:
        shutil.copy(path, dest / path.name)
    source = course.source_dir
    for filename in utils.find_all_files(str(source), [*coursedir.ignore, "*.ipynb"]):
        relative = os.path.relpath(filename, source)
        if relative in kept:
            continue
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        shutil.copy(filename, target)
    for name, (text, _) in pages.items():
        (dest / f"{name}.ipynb").write_text(text, encoding="utf-8")
    for folder, _, files in os.walk(dest):
        for filename in files:
            os.chmod(os.path.join(folder, filename), READ_ONLY)
