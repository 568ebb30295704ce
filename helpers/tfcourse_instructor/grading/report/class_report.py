"""The class report, composed in one place: every file it writes, from what grading left.

    gradebook.db ──▶ grades per student ─────────────────────────────▶ grades.csv
          │                  │
          └──▶ statistics per question ◀── autograded notebooks (failed cases)
                             └──▶ report/: questions.csv, cases.csv, scores.png, index.html

It reads what grading left and changes nothing of it, so ``grade`` writes it after every run
and ``report`` writes it again without grading (after hand grading in formgrader, say).
"""

from __future__ import annotations

from pathlib import Path

from tfcourse_instructor.grading.report.figure import draw_scores
from tfcourse_instructor.grading.report.grades import GRADES_CSV, read_grades, write_grades_csv
from tfcourse_instructor.grading.report.page import write_page
from tfcourse_instructor.grading.report.questions import (
    read_question_stats,
    write_cases_csv,
    write_questions_csv,
)

REPORT_DIR = "report"
QUESTIONS_CSV = "questions.csv"
CASES_CSV = "cases.csv"
FIGURE = "scores.png"
PAGE = "index.html"


def write_report(root: Path) -> Path:
    """Write ``grades.csv`` and the class report of the course at ``root`` from its
    gradebook (which must exist) and autograded notebooks; return the report's page."""
    grades = read_grades(root)
    write_grades_csv(grades, root / GRADES_CSV)
    stats = read_question_stats(root, grades)
    folder = root / REPORT_DIR
    folder.mkdir(exist_ok=True)
    write_questions_csv(stats, folder / QUESTIONS_CSV)
    write_cases_csv(stats, folder / CASES_CSV)
    draw_scores(stats, folder / FIGURE)
    write_page(grades, stats, folder / PAGE, FIGURE)
    return folder / PAGE
