"""Per-student, per-question scores from nbgrader's gradebook: a table and a CSV.

Every CSV the kit writes goes through :func:`spreadsheet_safe`: student ids and answers are
students' text, and a spreadsheet runs a cell that starts like a formula.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry

from tfcourse_instructor.grading.course import Course

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
    """Scores of ``students`` on every graded cell of the assignment, in notebook order."""
    scores = []
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        assignment = gradebook.find_assignment(course.assignment)
        for student in students:
            for notebook in assignment.notebooks:
                for cell in notebook.grade_cells:
                    scores.append(_score(gradebook, course, student, notebook.name, cell.name))
    return scores


def _score(
    gradebook: Gradebook, course: Course, student: str, notebook: str, question: str
) -> QuestionScore:
    try:
        grade = gradebook.find_grade(question, notebook, course.assignment, student)
    except MissingEntry:
        max_score = gradebook.find_grade_cell(question, notebook, course.assignment).max_score
        autograded = not _is_answer_cell(gradebook, course, notebook, question)
        return QuestionScore(student, notebook, question, 0.0, max_score, autograded)
    autograded = not _is_answer_cell(gradebook, course, notebook, question)
    pending = grade.needs_manual_grade and grade.manual_score is None
    score = None if pending else grade.score
    return QuestionScore(student, notebook, question, score, grade.max_score, autograded)


def _is_answer_cell(gradebook: Gradebook, course: Course, notebook: str, question: str) -> bool:
    """True for a "manually graded answer" cell: graded and also a solution cell."""
    try:
        gradebook.find_solution_cell(question, notebook, course.assignment)
    except MissingEntry:
        return False
    return True


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
    """A text table: a row per student, a column per autograded question, then totals."""
    auto_questions = list(dict.fromkeys(s.question for s in scores if s.autograded))
    students = list(dict.fromkeys(s.student for s in scores))
    by_key = {(s.student, s.question): s for s in scores}
    maxima = {s.question: s.max_score for s in scores}
    auto_max = sum(maxima[q] for q in auto_questions)
    manual_max = sum(m for q, m in maxima.items() if q not in auto_questions)

    header = ["student", *auto_questions, "auto total", "by hand"]
    limits = ["", *(f"/{maxima[q]:g}" for q in auto_questions)]
    limits += [f"/{auto_max:g}", f"/{manual_max:g}"]
    rows = [header, limits]
    for student in students:
        own = [s for s in scores if s.student == student]
        auto_total = sum(s.score or 0.0 for s in own if s.autograded)
        manual = [s for s in own if not s.autograded]
        pending = any(s.score is None for s in manual)
        manual_total = "pending" if pending else f"{sum(s.score or 0.0 for s in manual):g}"
        cells = [f"{by_key[(student, q)].score or 0.0:g}" for q in auto_questions]
        rows.append([student, *cells, f"{auto_total:g}", manual_total])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True))
        for row in rows
    ]
    return "\n".join(lines)
