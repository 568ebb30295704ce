"""Grading written answers by hand, end to end, on notebook 4 (theory).

A copy of the main job's graded course is taken; for its model-solution submission a grader
enters scores and a comment for the written answers through nbgrader's Python API, the way
formgrader stores them, then runs the grade command again as the README says: the exported
grades must add the hand scores to the automatic ones, and that student's feedback, and no
one else's, must be rewritten to show them. The rubrics
graders read live in the solution regions of ``source/``: they must be there, and never in
``release/``.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfcourse_instructor.grading.classroom.scores import read_scores
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.report.grades import GRADES_CSV, MAX_ROW

from conftest import run_kit

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "04_theory"
STUDENT = "reference"  # the model solutions, graded by the main job
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def graded_cells(notebook: nbformat.NotebookNode) -> dict[str, tuple[bool, float]]:
    """grade_id -> (written answer graded by hand?, points) for every graded cell."""
    cells = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            by_hand = cell.cell_type == "markdown" and meta.get("solution", False)
            cells[meta["grade_id"]] = (by_hand, float(meta["points"]))
    return cells


def source_notebook() -> nbformat.NotebookNode:
    return nbformat.read(REPO / "source" / NOTEBOOK / f"{NOTEBOOK}.ipynb", as_version=4)


def test_every_written_answer_has_a_model_answer_and_rubric_inside_its_solution():
    manual = [
        cell
        for cell in source_notebook().cells
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("grade")
    ]
    assert len(manual) >= 5
    for cell in manual:
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        assert cell.metadata["nbgrader"]["solution"], grade_id
        assert cell.source.count(BEGIN) == 1 and cell.source.count(END) == 1, grade_id
        solution = cell.source.split(BEGIN)[1].split(END)[0]
        assert "**Model answer.**" in solution, grade_id
        points = cell.metadata["nbgrader"]["points"]
        assert f"**Rubric ({points:g} point" in solution, grade_id


@pytest.mark.slow
def test_hand_scores_reach_the_exported_grades_and_the_feedback(graded_samples, tmp_path):
    graded, _ = graded_samples
    course = Course(tmp_path / "course", NOTEBOOK)
    shutil.copytree(graded.root, course.root)  # a copy: other tests read the graded samples
    cells = graded_cells(source_notebook())
    manual_max = {name: points for name, (by_hand, points) in cells.items() if by_hand}
    auto_max = {name: points for name, (by_hand, points) in cells.items() if not by_hand}
    # Partial credit on every written answer, as a grader applying the rubric might give.
    entered = {name: points - 0.5 for name, points in manual_max.items()}
    comment = "Half a point off: the rubric asks for the warm-up, which is missing."

    release_text = (course.release_dir / f"{NOTEBOOK}.ipynb").read_text(encoding="utf-8")
    for leaked in ("Rubric", "Model answer", BEGIN):
        assert leaked not in release_text
    assert release_text.count("YOUR ANSWER HERE") >= len(manual_max)

    before = {s.question: s for s in read_scores(course, [STUDENT]) if s.notebook == NOTEBOOK}
    # The model solutions pass every test; written answers await a grader.
    assert {q: before[q].score for q in auto_max} == auto_max
    assert all(before[q].score is None for q in manual_max)
    total_before = sum(s.score or 0.0 for s in read_scores(course, [STUDENT]))
    pages = {p: p.read_bytes() for p in (course.root / "feedback").rglob("*.html")}
    own_page = course.root / "feedback" / STUDENT / course.assignment / f"{NOTEBOOK}.html"
    assert comment not in own_page.read_text()

    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        for name, score in entered.items():
            grade = gradebook.find_grade(name, NOTEBOOK, course.assignment, STUDENT)
            assert grade.needs_manual_grade and grade.auto_score is None
            # What formgrader's "save" does for one cell.
            grade.manual_score = score
            grade.needs_manual_grade = False
        first = next(iter(entered))
        gradebook.find_comment(first, NOTEBOOK, course.assignment, STUDENT).manual_comment = comment
        gradebook.db.commit()

    after = {s.question: s.score for s in read_scores(course, [STUDENT])}
    assert {q: after[q] for q in manual_max} == entered

    # README, manual grading: run the grade command again.
    result = run_kit(course, "grade")
    assert result.returncode == 0, result.stdout + result.stderr
    with (course.root / GRADES_CSV).open(newline="", encoding="utf-8") as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert float(rows[STUDENT][NOTEBOOK]) == pytest.approx(total_before + sum(entered.values()))
    possible = sum(s.max_score for s in read_scores(course, [STUDENT]))
    assert float(rows[MAX_ROW][NOTEBOOK]) == pytest.approx(possible)

    # The feedback of the student graded by hand is rewritten and shows the hand scores and
    # the comment; every other student's pages are left as they were.
    text = own_page.read_text()
    assert comment in text
    for name, score in entered.items():
        assert f"Score: {score} / {manual_max[name]}" in text, name
    changed = {p for p, data in pages.items() if p.read_bytes() != data}
    assert own_page in changed
    assert all(p.parent == own_page.parent for p in changed), changed
