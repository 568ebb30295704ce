"""Grading written answers by hand, end to end, on notebook 4 (theory).

A submission of the model solutions is autograded in a scratch copy of the course; a grader
then enters scores for the written answers through nbgrader's Python API, the way formgrader
stores them, and the exported grades must add the two up. The rubrics graders read live in
the solution regions of ``source/``: they must be there, and never in ``release/``.
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfcourse.grading.course import Course
from tfcourse.grading.pipeline import grade_class
from tfcourse.grading.release import generate_release
from tfcourse.grading.samples import reference_notebooks
from tfcourse.grading.scores import read_scores

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "04_theory"
STUDENT = "hand-graded"
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
    return nbformat.read(REPO / "source" / "transformers" / f"{NOTEBOOK}.ipynb", as_version=4)


def course_with_one_notebook(root: Path) -> Course:
    """A scratch course: the repository's nbgrader configuration and source, reduced to
    notebook 4, so that only it is released and graded."""
    shutil.copy(REPO / "nbgrader_config.py", root / "nbgrader_config.py")
    shutil.copytree(
        REPO / "source",
        root / "source",
        ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".OTTER_LOG"),
    )
    course = Course(root)
    for notebook in course.source_dir.glob("*.ipynb"):
        if notebook.stem != NOTEBOOK:
            notebook.unlink()
    return course


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
def test_hand_scores_add_to_autograded_scores_in_the_exported_grades(tmp_path):
    course = course_with_one_notebook(tmp_path)
    cells = graded_cells(source_notebook())
    manual_max = {name: points for name, (by_hand, points) in cells.items() if by_hand}
    auto_max = {name: points for name, (by_hand, points) in cells.items() if not by_hand}
    # Partial credit on every written answer, as a grader applying the rubric might give.
    entered = {name: points - 0.5 for name, points in manual_max.items()}

    generate_release(course)
    release_text = (course.release_dir / f"{NOTEBOOK}.ipynb").read_text(encoding="utf-8")
    for leaked in ("Rubric", "Model answer", BEGIN):
        assert leaked not in release_text
    assert release_text.count("YOUR ANSWER HERE") >= len(manual_max)

    submission = course.submitted_dir / STUDENT / course.assignment
    shutil.copytree(course.release_dir, submission)
    nbformat.write(reference_notebooks(course)[NOTEBOOK], submission / f"{NOTEBOOK}.ipynb")
    grade_class(course, [STUDENT], progress=False)

    before = {s.question: s.score for s in read_scores(course, [STUDENT])}
    assert {q: before[q] for q in auto_max} == auto_max  # the model solutions pass every test
    assert all(before[q] is None for q in manual_max)  # written answers await a grader

    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        for name, score in entered.items():
            grade = gradebook.find_grade(name, NOTEBOOK, course.assignment, STUDENT)
            assert grade.needs_manual_grade and grade.auto_score is None
            # What formgrader's "save" does for one cell.
            grade.manual_score = score
            grade.needs_manual_grade = False
        gradebook.db.commit()

    after = {s.question: s.score for s in read_scores(course, [STUDENT])}
    assert {q: after[q] for q in manual_max} == entered

    grades_csv = tmp_path / "grades.csv"
    course.nbgrader("export", f"--to={grades_csv}")
    with grades_csv.open(newline="", encoding="utf-8") as handle:
        (row,) = [r for r in csv.DictReader(handle) if r["student_id"] == STUDENT]
    assert float(row["score"]) == pytest.approx(sum(auto_max.values()) + sum(entered.values()))
    assert float(row["max_score"]) == pytest.approx(
        sum(auto_max.values()) + sum(manual_max.values())
    )
