"""A term as an instructor runs it, from a copy of the repository, with the kit's commands:
notebook 1 released alone and graded while notebook 2 is not out; notebook 2 released later,
then graded with a late submission's penalty, notebook 1's grades left as they were."""

import csv

import nbformat
import pytest

from tfcourse_instructor.grading.classroom.merge import TIMESTAMP
from tfcourse_instructor.grading.report.grades import GRADES_CSV, MAX_ROW
from tfcourse_instructor.grading.schedule import COURSE_FILE, read_schedule
from tfcourse_instructor.grading.selftest.samples import (
    LATE_BY,
    TIMESTAMP_FORMAT,
    reference_notebooks,
)

from conftest import Tree, copy_course, run_kit

pytestmark = pytest.mark.slow

FIRST, SECOND = "01_attention", "02_encoder"


def release_second(tree: Tree) -> None:
    """Mark notebook 2 released in the course file, as the instructor does on its day."""
    schedule = (tree.root / COURSE_FILE).read_text(encoding="utf-8")
    second = schedule.index(f'name = "{SECOND}"')
    released = schedule[second:].replace("released = false", "released = true", 1)
    (tree.root / COURSE_FILE).write_text(schedule[:second] + released, encoding="utf-8")


def hand_in(tree: Tree, assignment: str, student: str, late: bool = False) -> None:
    """``student`` hands in the model solution of ``assignment``; late: 36 hours after it
    is due (nbgrader's timestamp file, as its exchange writes it)."""
    course = tree[assignment]
    folder = course.submitted_dir / student / assignment
    folder.mkdir(parents=True)
    for name, notebook in reference_notebooks(course).items():
        nbformat.write(notebook, folder / f"{name}.ipynb")
    if late:
        (due,) = [a.due for a in read_schedule(tree.root) if a.name == assignment]
        (folder / TIMESTAMP).write_text(f"{(due + LATE_BY).strftime(TIMESTAMP_FORMAT)}\n")


def grades(tree: Tree) -> dict[str, dict[str, str]]:
    with (tree.root / GRADES_CSV).open(newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_a_term_releases_and_grades_one_notebook_at_a_time(tmp_path):
    tree = copy_course(tmp_path / "course", [FIRST, SECOND])
    schedule = (tree.root / COURSE_FILE).read_text(encoding="utf-8")
    (tree.root / COURSE_FILE).write_text(
        schedule.replace("released = true", "released = false").replace(
            "released = false", "released = true", 1
        ),
        encoding="utf-8",
    )
    assert run_kit(tree, "release").returncode == 0
    published = run_kit(tree, "publish", "--out", "student")
    assert published.returncode == 0, published.stderr
    assert sorted(p.name for p in (tree.root / "student" / "release").iterdir()) == [FIRST]

    # Week 1: notebook 1 is handed in (once late) and graded; notebook 2 is not out.
    hand_in(tree, FIRST, "ada")
    hand_in(tree, FIRST, "bo", late=True)
    first = run_kit(tree, "grade")
    assert first.returncode == 0, first.stdout + first.stderr
    # Both hand in the same notebook: graded once, each merged with its own hand-in time.
    identical = "grading 1, 1 identical to one of those (graded with it) ..."
    assert f"{FIRST}: 2 submission(s), {identical}" in first.stdout
    assert SECOND not in first.stdout
    week1 = grades(tree)
    assert SECOND not in week1["ada"], "an unreleased assignment has no column yet"
    on_time = float(week1["ada"][FIRST])
    assert 0 < on_time <= float(week1[MAX_ROW][FIRST])
    assert float(week1["bo"][FIRST]) == pytest.approx(0.8 * on_time)  # two started days late

    # Week 3: notebook 2 is released, handed in (late by bo) and graded.
    release_second(tree)
    assert run_kit(tree, "release").returncode == 0
    published = run_kit(tree, "publish", "--out", "student")
    assert published.returncode == 0, published.stderr
    assert sorted(p.name for p in (tree.root / "student" / "release").iterdir()) == [FIRST, SECOND]
    hand_in(tree, SECOND, "ada")
    hand_in(tree, SECOND, "bo", late=True)
    second = run_kit(tree, "grade")
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{FIRST}: 2 submission(s), grading 0, 2 unchanged since last graded" in second.stdout
    assert f"{SECOND}: 2 submission(s), {identical}" in second.stdout
    week3 = grades(tree)
    for student in ("ada", "bo"):
        assert week3[student][FIRST] == week1[student][FIRST], student
    on_time = float(week3["ada"][SECOND])
    assert 0 < on_time <= float(week3[MAX_ROW][SECOND])
    assert float(week3["bo"][SECOND]) == pytest.approx(0.8 * on_time)
    assert f"{SECOND}: bo handed in 1.5 days late: -{0.2 * on_time:g} points" in second.stdout
    total = float(week3["bo"][FIRST]) + float(week3["bo"][SECOND])
    assert float(week3["bo"]["total"]) == pytest.approx(total)
