"""Per-student, per-question scores from nbgrader's gradebook: a table and a CSV.

Every CSV the kit writes goes through :func:`spreadsheet_safe`: student ids and answers are
students' text, and a spreadsheet runs a cell that starts like a formula.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import (
    Grade,
    Gradebook,
    GradeCell,
    MissingEntry,
    Notebook,
    SubmittedAssignment,
    SubmittedNotebook,
)

from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.schedule import SECONDS_PER_DAY

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


@dataclass(frozen=True)
class QuestionScore:
    """One graded cell of one student's submission (score None: awaiting manual grading)."""

    student: str
    notebook: str
    question: str
    score: float | None
    max_score: float
    autograded: bool


def read_scores(course: Course, students: list[str]) -> list[QuestionScore]:
    """Scores of ``students`` on every graded cell of the assignment, in notebook order (a
    cell without a grade scores 0). The grades are read in one query: a class can be large."""
    scores = []
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        assignment = gradebook.find_assignment(course.assignment)
        grades = _grades(gradebook, assignment.id)
        for student in students:
            for notebook in assignment.notebooks:
                answers = {cell.name for cell in notebook.solution_cells}
                for cell in notebook.grade_cells:
                    autograded = cell.name not in answers
                    grade = grades.get((student, notebook.name, cell.name))
                    if grade is None:
                        scores.append(
                            QuestionScore(
                                student, notebook.name, cell.name, 0.0, cell.max_score, autograded
                            )
                        )
                        continue
                    pending = grade.needs_manual_grade and grade.manual_score is None
                    score = None if pending else grade.score
                    scores.append(
                        QuestionScore(
                            student, notebook.name, cell.name, score, cell.max_score, autograded
                        )
                    )
    return scores


def _grades(gradebook: Gradebook, assignment_id: str) -> dict[tuple[str, str, str], Grade]:
    """Every grade of a grade cell of the assignment, by (student, notebook, cell)."""
    rows = (
        gradebook.db.query(Grade, SubmittedAssignment.student_id, Notebook.name, GradeCell.name)
        .join(GradeCell, GradeCell.id == Grade.cell_id)
        .join(SubmittedNotebook, SubmittedNotebook.id == Grade.notebook_id)
        .join(Notebook, Notebook.id == SubmittedNotebook.notebook_id)
        .join(SubmittedAssignment, SubmittedAssignment.id == SubmittedNotebook.assignment_id)
        .filter(SubmittedAssignment.assignment_id == assignment_id)
    )
    return {(student, notebook, cell): grade for grade, student, notebook, cell in rows}


def late_lines(course: Course, students: list[str]) -> list[str]:
    """A line per submission of ``students`` handed in after the assignment's due date:
    how late, and the points its late penalty took."""
    lines = []
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(course.assignment, student)
            except MissingEntry:
                continue
            if submission.total_seconds_late > 0:
                days = submission.total_seconds_late / SECONDS_PER_DAY
                penalty = submission.late_submission_penalty or 0.0
                lines.append(
                    f"{course.assignment}: {student} handed in {days:.1f} days late: "
                    f"-{penalty:g} points"
                )
    return lines


def write_csv(scores: list[QuestionScore], path: Path) -> None:
    """One row per student and question: notebook, question, score (blank if pending), max."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "notebook", "question", "score", "max_score", "autograded"])
        for s in scores:
            score = "" if s.score is None else f"{s.score:g}"
            row = [s.student, s.notebook, s.question, score, f"{s.max_score:g}", s.autograded]
            writer.writerow(map(spreadsheet_safe, row))


def spreadsheet_safe(value: object) -> str:
    """``value`` as a CSV cell that no spreadsheet reads as a formula: text that starts with
    ``=``, ``+``, ``-``, ``@``, a tab or a carriage return gets a leading ``'``; a plain
    number (a negative score) is left as it is."""
    text = str(value)
    if text.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(text):
        return f"'{text}"
    return text


def format_table(scores: list[QuestionScore]) -> str:
    """A text table narrow enough for a terminal: a row per student, a column per notebook
    (its autograded points), then the autograded total and the points graded by hand. The
    per-question scores are in the CSV (:func:`write_csv`)."""
    notebooks = list(dict.fromkeys(s.notebook for s in scores))
    students = list(dict.fromkeys(s.student for s in scores))
    questions = {(s.notebook, s.question): s for s in scores}.values()
    auto_max = {
        n: sum(q.max_score for q in questions if q.autograded and q.notebook == n)
        for n in notebooks
    }
    manual_max = sum(q.max_score for q in questions if not q.autograded)

    header = ["student", *(_short(n) for n in notebooks), "auto total", "by hand"]
    limits = ["", *(f"/{auto_max[n]:g}" for n in notebooks)]
    limits += [f"/{sum(auto_max.values()):g}", f"/{manual_max:g}"]
    rows = [header, limits]
    for student in students:
        own = [s for s in scores if s.student == student]
        per_notebook = [
            sum(s.score or 0.0 for s in own if s.autograded and s.notebook == n) for n in notebooks
        ]
        manual = [s for s in own if not s.autograded]
        pending = any(s.score is None for s in manual)
        manual_total = "pending" if pending else f"{sum(s.score or 0.0 for s in manual):g}"
        cells = [f"{points:g}" for points in per_notebook]
        rows.append([student, *cells, f"{sum(per_notebook):g}", manual_total])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


def _short(notebook: str) -> str:
    """A notebook's column title: its number (``01`` for ``01_attention``), or its name."""
    number = notebook.split("_", 1)[0]
    return number if number.isdigit() else notebook
