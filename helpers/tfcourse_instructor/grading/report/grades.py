"""``grades.csv``: every student's score on every assignment graded so far, and the total.

Written from the gradebook, which holds every assignment, so grading one assignment never
drops another's column. A row per student of the gradebook, a column per assignment in the
course's teaching order (``course.toml``; an assignment graded but no longer listed comes
after, by name), then ``total``. The first row, :data:`MAX_ROW`, holds the points possible.
A score is nbgrader's after its late penalty (never below 0), written answers not yet graded
by hand adding nothing to it; a cell is empty where the student has no graded submission.
:class:`ClassGrades` also holds the points still pending per student, so that averages leave
out scores that are not final yet.
"""

from __future__ import annotations

import csv
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from nbgrader.api import Gradebook

from tfcourse_instructor.grading.classroom.scores import read_scores, spreadsheet_safe
from tfcourse_instructor.grading.course import GRADEBOOK, Course
from tfcourse_instructor.grading.schedule import assignment_names

GRADES_CSV = "grades.csv"
MAX_ROW = "(max)"
"""The ``student_id`` of the row of points possible: no student id can be this."""


@dataclass(frozen=True)
class ClassGrades:
    """Each student's score per graded assignment, and the points each assignment is worth."""

    assignments: tuple[str, ...]
    """The assignments with at least one graded submission, in teaching order."""
    max_scores: dict[str, float]
    scores: dict[str, dict[str, float]]
    """student -> assignment -> score after the late penalty (no entry: not graded)."""
    pending: dict[str, dict[str, float]]
    """student -> assignment -> points of written answers awaiting grading by hand (no
    entry: none)."""

    def final(self, assignment: str) -> list[float]:
        """The scores on ``assignment`` of the students graded in full (nothing pending)."""
        return [
            own[assignment]
            for student, own in self.scores.items()
            if assignment in own and assignment not in self.pending.get(student, {})
        ]

    def total(self, student: str) -> float:
        """The student's points over every graded assignment (one not graded counts 0)."""
        return sum(self.scores[student].values())

    @property
    def max_total(self) -> float:
        """The points possible over every graded assignment."""
        return sum(self.max_scores.values())


def read_grades(root: Path) -> ClassGrades:
    """The grades in the gradebook of the course at ``root``."""
    with Gradebook(f"sqlite:///{root / GRADEBOOK}") as gradebook:
        graded = {a.name: a for a in gradebook.assignments if a.submissions}
        scores: dict[str, dict[str, float]] = {s.id: {} for s in gradebook.students}
        for name, assignment in graded.items():
            for submission in assignment.submissions:
                penalty = submission.late_submission_penalty or 0.0
                scores[submission.student.id][name] = max(0.0, submission.score - penalty)
        order = teaching_order(root, graded)
        max_scores = {name: graded[name].max_score for name in order}
    pending: dict[str, dict[str, float]] = {}
    for name in order:
        students = [student for student, own in scores.items() if name in own]
        for score in read_scores(Course(root, name), students):
            if score.score is None:
                own = pending.setdefault(score.student, {})
                own[name] = own.get(name, 0.0) + score.max_score
    return ClassGrades(tuple(order), max_scores, dict(sorted(scores.items())), pending)


def teaching_order(root: Path, names: Collection[str]) -> list[str]:
    """The assignments ``names`` in the order ``course.toml`` lists them; any it does not
    list come after, by name."""
    listed = assignment_names(root)
    return [name for name in listed if name in names] + sorted(set(names) - set(listed))


def write_grades_csv(grades: ClassGrades, path: Path) -> None:
    """``grades`` as ``grades.csv`` (see the module's description)."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student_id", *grades.assignments, "total"])
        possible = [grades.max_scores[name] for name in grades.assignments]
        writer.writerow([MAX_ROW, *(f"{p:g}" for p in possible), f"{grades.max_total:g}"])
        for student, own in grades.scores.items():
            cells = ["" if name not in own else f"{own[name]:g}" for name in grades.assignments]
            writer.writerow(map(spreadsheet_safe, [student, *cells, f"{grades.total(student):g}"]))
