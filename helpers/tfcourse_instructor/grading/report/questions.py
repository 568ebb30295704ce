"""Per-question statistics of the class: how each question went.

For every graded cell of every graded assignment (test cells and written answers), over the
students with a graded submission: the mean and standard deviation of the points (before late
penalties, which nbgrader takes per notebook), the shares at full points and at none, how many
students failed each test case, and how many a limit stopped before their check ended. A
written answer not yet graded by hand is pending: it is counted as such and left out of the
figures, never counted as 0. Written to ``questions.csv`` (a row per question) and
``cases.csv`` (a row per question and failed case).
"""

from __future__ import annotations

import csv
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfcourse_instructor.grading.classroom.scores import read_scores, spreadsheet_safe
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.report.cases import check_outcomes
from tfcourse_instructor.grading.report.grades import ClassGrades

QUESTION_COLUMNS = (
    *("assignment", "notebook", "question", "max_score", "students", "mean", "std"),
    *("full_share", "zero_share", "not_checked", "written", "pending"),
)
"""The columns of ``questions.csv``."""


@dataclass(frozen=True)
class QuestionStats:
    """How the class did on one question."""

    assignment: str
    notebook: str
    question: str
    max_score: float
    scores: tuple[float, ...]
    """One per student graded on it (a pending written answer has none)."""
    failed_cases: tuple[tuple[str, int], ...]
    """(case label, students who failed it), most failed first."""
    unchecked: int
    """Students whose check a limit or a lost kernel stopped (they score what it reached)."""
    written: bool = False
    """A written answer, graded by hand."""
    pending: int = 0
    """Students whose written answer awaits grading by hand."""

    @property
    def students(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores) if self.scores else 0.0

    @property
    def std(self) -> float:
        """The population standard deviation: the class is all there is."""
        return statistics.pstdev(self.scores) if self.scores else 0.0

    @property
    def mean_fraction(self) -> float:
        """The mean as a share of the points possible (1 for a question worth nothing)."""
        return self.mean / self.max_score if self.max_score else 1.0

    @property
    def full(self) -> float:
        """The share of students at full points."""
        return self._share(lambda score: score >= self.max_score)

    @property
    def zero(self) -> float:
        """The share of students with no points."""
        return self._share(lambda score: score <= 0)

    def _share(self, counted: Callable[[float], bool]) -> float:
        hits = sum(1 for score in self.scores if counted(score))
        return hits / len(self.scores) if self.scores else 0.0


def read_question_stats(root: Path, grades: ClassGrades) -> list[QuestionStats]:
    """Statistics of every question of the assignments ``grades`` holds (in its order, each
    in notebook order), over the students it has graded in each, from the gradebook and the
    autograded notebooks of the course at ``root``."""
    stats = []
    for name in grades.assignments:
        course = Course(root, name)
        students = [student for student, own in grades.scores.items() if name in own]
        possible: dict[tuple[str, str], float] = {}
        written: set[tuple[str, str]] = set()
        points: dict[tuple[str, str], dict[str, float]] = {}
        pending: Counter[tuple[str, str]] = Counter()
        for score in read_scores(course, students):
            key = (score.notebook, score.question)
            possible[key] = score.max_score
            if not score.autograded:
                written.add(key)
            if score.score is None:
                pending[key] += 1
            else:
                points.setdefault(key, {})[score.student] = score.score
        outcomes = {
            (student, notebook): check_outcomes(
                course.autograded_dir / student / name / f"{notebook}.ipynb"
            )
            for student in students
            for notebook in {notebook for notebook, _ in possible}
        }
        for (notebook, question), max_score in possible.items():
            scored = points.get((notebook, question), {})
            checks = [
                check for student in scored if (check := outcomes[student, notebook].get(question))
            ]
            failed = Counter(label for check in checks for label in dict.fromkeys(check.failed))
            stats.append(
                QuestionStats(
                    name,
                    notebook,
                    question,
                    max_score,
                    tuple(scored.values()),
                    tuple(sorted(failed.items(), key=lambda item: (-item[1], item[0]))),
                    sum(1 for check in checks if not check.checked),
                    (notebook, question) in written,
                    pending[notebook, question],
                )
            )
    return stats


def write_questions_csv(stats: Sequence[QuestionStats], path: Path) -> None:
    """A row per question: its points, students graded, mean, standard deviation, shares at
    full points and at none, students a limit stopped, whether it is written, and how many
    written answers are pending."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(QUESTION_COLUMNS)
        for q in stats:
            figures = (f"{n:.4g}" for n in (q.mean, q.std, q.full, q.zero))
            row = [q.assignment, q.notebook, q.question, f"{q.max_score:g}", q.students]
            kind = [q.unchecked, int(q.written), q.pending]
            writer.writerow(map(spreadsheet_safe, [*row, *figures, *kind]))


def write_cases_csv(stats: Sequence[QuestionStats], path: Path) -> None:
    """A row per question and test case that any student failed: how many did, of how many."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["assignment", "notebook", "question", "case", "failed_by", "students"])
        for q in stats:
            for label, count in q.failed_cases:
                row = [q.assignment, q.notebook, q.question, label, count, q.students]
                writer.writerow(map(spreadsheet_safe, row))
