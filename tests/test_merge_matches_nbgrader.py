"""The merge writes what nbgrader's own autograde (only SaveAutoGrades and late penalties)
writes: the same gradebook rows and the same ``autograded/`` files, for a class of executed
notebooks built here without a kernel (every kind of test-cell output nbgrader scores,
answers left as released and written, early, late and undated hand-ins), merged in two
batches, the second re-merging students after a grader scored one of them by hand."""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_output
from nbgrader import utils
from nbgrader.api import Gradebook

from tfcourse_instructor.grading.classroom.merge import (
    EXCHANGE_FILES,
    TIMESTAMP,
    merge_grades,
    record_assignment,
)
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.schedule import read_schedule
from tfcourse_instructor.grading.selftest.samples import TIMESTAMP_FORMAT
from tfcourse_instructor.grading.submission.workspace import KIT_EXPORTER, GradedSubmission

from conftest import REPO, copy_course

ASSIGNMENT = "01_attention"
STUDENTS = [f"s{number}" for number in range(8)]
OUTPUTS = [
    [],  # nothing shown: full points
    [new_output("execute_result", {"text/plain": "1.5"}, execution_count=1)],
    [new_output("execute_result", {"text/plain": "0"}, execution_count=1)],
    [new_output("execute_result", {"text/plain": "'not a number'"}, execution_count=1)],
    [new_output("error", ename="AssertionError", evalue="no", traceback=[])],
    [new_output("stream", name="stderr", text="warning\n")],
    [new_output("display_data", {"text/plain": "report"})],
]
"""Test-cell outputs, one per kind nbgrader scores differently."""
LATE_HOURS = {"s1": 30, "s2": -5, "s3": 80, "s5": 1}


def executed_notebook(student: int) -> nbformat.NotebookNode:
    """The release notebook as grading might leave it for ``student``: test cells with
    outputs of every kind in turn, every other answer written."""
    notebook = nbformat.read(REPO / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    for index, cell in enumerate(notebook.cells):
        if utils.is_grade(cell) and not utils.is_solution(cell):
            cell.outputs = OUTPUTS[(index + student) % len(OUTPUTS)]
        elif utils.is_solution(cell) and (index + student) % 2:
            cell.source += "\nanswer = 42" if cell.cell_type == "code" else "\nMy answer."
    return notebook


def nbgrader_merge(course: Course, graded: Sequence[GradedSubmission]) -> None:
    """What the merge must equal: nbgrader's autograde of the executed notebooks, staged as
    submissions with their exchange files, sanitising and execution switched off."""
    with tempfile.TemporaryDirectory() as staging:
        for submission in graded:
            folder = Path(staging) / submission.student / course.assignment
            folder.mkdir(parents=True)
            for notebook in submission.autograded.glob("*.ipynb"):  # type: ignore[union-attr]
                shutil.copy(notebook, folder / notebook.name)
            for name in EXCHANGE_FILES:
                path = course.submitted_dir / submission.student / course.assignment / name
                if path.is_file():
                    shutil.copy(path, folder / name)
        course.nbgrader(
            "autograde",
            course.assignment,
            "--force",
            f"--CourseDirectory.submitted_directory={staging}",
            f"--Autograde.exporter_class={KIT_EXPORTER}",
            "--Autograde.sanitize_preprocessors=nbconvert.preprocessors.Preprocessor",
            "--Autograde.autograde_preprocessors=nbgrader.preprocessors.SaveAutoGrades",
            "--Autograde.autograde_preprocessors=nbgrader.preprocessors.AssignLatePenalties",
        )


def gradebook_rows(course: Course) -> dict[str, list[tuple]]:
    """Every row the merge writes, by table, without nbgrader's random ids."""
    queries = {
        "students": "SELECT id, first_name, last_name, email, lms_user_id FROM student",
        "submissions": "SELECT s.student_id, a.name, s.timestamp, s.extension "
        "FROM submitted_assignment s JOIN assignment a ON a.id = s.assignment_id",
        "notebooks": "SELECT s.student_id, n.name, sn.late_submission_penalty, sn.flagged "
        "FROM submitted_notebook sn JOIN notebook n ON n.id = sn.notebook_id "
        "JOIN submitted_assignment s ON s.id = sn.assignment_id",
        "grades": "SELECT s.student_id, n.name, c.name, c.type, g.auto_score, g.manual_score, "
        "g.extra_credit, g.needs_manual_grade FROM grade g JOIN base_cell c ON c.id = g.cell_id "
        "JOIN submitted_notebook sn ON sn.id = g.notebook_id "
        "JOIN notebook n ON n.id = sn.notebook_id "
        "JOIN submitted_assignment s ON s.id = sn.assignment_id",
        "comments": "SELECT s.student_id, n.name, c.name, c.type, m.auto_comment, "
        "m.manual_comment FROM comment m JOIN base_cell c ON c.id = m.cell_id "
        "JOIN submitted_notebook sn ON sn.id = m.notebook_id "
        "JOIN notebook n ON n.id = sn.notebook_id "
        "JOIN submitted_assignment s ON s.id = sn.assignment_id",
    }
    with sqlite3.connect(course.gradebook) as db:
        return {table: sorted(db.execute(query).fetchall()) for table, query in queries.items()}


def autograded_files(course: Course) -> dict[str, tuple[bytes, int]]:
    """Every file under ``autograded/``: its bytes and mode."""
    return {
        str(path.relative_to(course.autograded_dir)): (path.read_bytes(), path.stat().st_mode)
        for path in sorted(course.autograded_dir.rglob("*"))
        if path.is_file()
    }


def hand_in(course: Course, graded_root: Path, students: list[str], shift: int) -> list:
    """Executed notebooks of ``students`` under ``graded_root``, their hand-in times (late by
    :data:`LATE_HOURS` plus ``shift`` hours) and a submission secret for one; their results."""
    due = next(a.due for a in read_schedule(course.root) if a.name == ASSIGNMENT)
    graded = []
    for student in students:
        number = STUDENTS.index(student) + shift
        folder = graded_root / f"{student}-{shift}"
        folder.mkdir(parents=True)
        nbformat.write(executed_notebook(number), folder / f"{ASSIGNMENT}.ipynb")
        submitted = course.submitted_dir / student / ASSIGNMENT
        submitted.mkdir(parents=True, exist_ok=True)
        if student in LATE_HOURS:
            handed_in = due + timedelta(hours=LATE_HOURS[student] + shift)
            (submitted / TIMESTAMP).write_text(handed_in.strftime(TIMESTAMP_FORMAT) + "\n")
        if student == "s4":
            (submitted / "submission_secret.txt").write_text("secret\n")
        graded.append(GradedSubmission(student, [], folder))
    return graded


@pytest.fixture(scope="module")
def merged_both_ways(tmp_path_factory: pytest.TempPathFactory) -> tuple[Course, Course]:
    """The same class merged by nbgrader's autograde and by the kit, in two batches."""
    results = []
    for how, merge in (("nbgrader", nbgrader_merge), ("kit", merge_grades)):
        root = tmp_path_factory.mktemp(how)
        course = copy_course(root / "course", [ASSIGNMENT])[ASSIGNMENT]
        record_assignment(course)
        merge(course, hand_in(course, root / "graded", STUDENTS[:6], 0))
        with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
            cell = next(c for c in gradebook.find_notebook(ASSIGNMENT, ASSIGNMENT).grade_cells)
            grade = gradebook.find_grade(cell.name, ASSIGNMENT, ASSIGNMENT, "s1")
            grade.manual_score = 0.5
            gradebook.db.commit()
        for student in ("s1", "s2"):
            shutil.rmtree(course.submitted_dir / student)
        merge(course, hand_in(course, root / "graded", ["s1", "s2", "s3", "s6", "s7"], 1))
        results.append(course)
    return results[0], results[1]


def test_the_gradebook_holds_what_nbgrader_writes(merged_both_ways):
    nbgrader, kit = merged_both_ways
    expected = gradebook_rows(nbgrader)
    assert {s for s, *_ in expected["submissions"]} == set(STUDENTS)
    assert any(row[2] for row in expected["notebooks"]), "no late penalty was tested"
    assert gradebook_rows(kit) == expected


def test_autograded_holds_the_files_nbgrader_writes(merged_both_ways):
    nbgrader, kit = merged_both_ways
    expected = autograded_files(nbgrader)
    assert any(name.endswith("submission_secret.txt") for name in expected)
    assert autograded_files(kit) == expected
