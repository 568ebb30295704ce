"""The main job, `python -m tfcourse_instructor.grading samples`, grades the bundled samples right.

Runs the real nbgrader autograde and feedback, and the class report, in a scratch copy of the
course.
"""

import csv
import json

import pytest

from tfcourse_instructor.grading.classroom.intake import submitted_students
from tfcourse_instructor.grading.classroom.scores import read_scores
from tfcourse_instructor.grading.report.class_report import (
    CASES_CSV,
    FIGURE,
    PAGE,
    QUESTIONS_CSV,
    REPORT_DIR,
)
from tfcourse_instructor.grading.report.grades import GRADES_CSV, MAX_ROW
from tfcourse_instructor.grading.selftest.samples import LATE, SAMPLES
from tfcourse_instructor.grading.similarity.copies import MODEL
from tfcourse_instructor.grading.similarity.copies_report import report_paths

from conftest import run_kit

pytestmark = pytest.mark.slow


def auto_scores(tree, student, notebook=None):
    """(earned, possible) over the autograded questions of ``student`` (in ``notebook``)."""
    scores = [
        s
        for course in tree.courses
        for s in read_scores(course, [student])
        if s.autograded and (notebook is None or s.notebook == notebook)
    ]
    return sum(s.score or 0.0 for s in scores), sum(s.max_score for s in scores)


def test_reference_earns_every_automatic_point(graded_samples):
    course, _ = graded_samples
    earned, possible = auto_scores(course, "reference")
    assert possible > 0 and earned == possible


def test_untouched_release_earns_nothing(graded_samples):
    course, _ = graded_samples
    assert auto_scores(course, "untouched")[0] == 0


@pytest.mark.parametrize(
    ("student", "notebook"),
    [
        ("bug-unscaled", "01_attention"),
        ("bug-head-split", "01_attention"),
        ("bug-prenorm-residual", "02_encoder"),
        ("bug-unshifted-targets", "03_language_models"),
        ("bug-attention-cost", "04_theory"),
        ("bug-online-nan", "05_inference"),
        ("bug-rope-frequencies", "06_tokens_positions"),
    ],
)
def test_a_realistic_bug_earns_something_in_between(graded_samples, student, notebook):
    course, _ = graded_samples
    earned, possible = auto_scores(course, student, notebook)
    assert 0 < earned < possible
    others = [c.assignment for c in course.courses if c.assignment != notebook]
    for other in others:
        assert auto_scores(course, student, other) == auto_scores(course, "reference", other)


def test_the_bug_costs_points_only_where_it_is(graded_samples):
    course, _ = graded_samples
    scores = read_scores(course["01_attention"], ["bug-head-split"])
    by_question = {s.question: s for s in scores if s.autograded}
    assert by_question["q1_sdpa"].score == by_question["q1_sdpa"].max_score
    assert by_question["q1_masks"].score == by_question["q1_masks"].max_score
    assert by_question["q1_heads"].score < by_question["q1_heads"].max_score


def test_stderr_and_warnings_from_correct_code_cost_nothing(graded_samples):
    course, _ = graded_samples
    assert auto_scores(course, "noisy-correct") == auto_scores(course, "reference")


def test_identical_submissions_are_graded_once(graded_samples):
    course, result = graded_samples
    for assignment in course.courses:
        made = {json.dumps(sample.make(assignment), sort_keys=True) for sample in SAMPLES}
        copies = len(SAMPLES) - len(made)
        header = f"{assignment.assignment}: {len(SAMPLES)} submission(s), grading {len(made)}"
        assert f"{header}, {copies} identical to one of those (graded with it) ..." in result.stdout


def test_progress_is_shown_for_grading_feedback_and_export(graded_samples):
    course, result = graded_samples
    students = len(submitted_students(course["01_attention"]))
    # tqdm redraws in place, and again when the bar's note changes: each bar ends at 100%
    # at least once.
    for bar in ("grading", "feedback"):
        assert result.stderr.count(f"{bar}: 100%") >= len(course.courses), bar
    assert "merging" in result.stderr
    assert f"{students}/{students} [" in result.stderr
    # Export: each assignment's copy report, the per-question CSV, the class report.
    steps = len(course.courses) + 2
    assert f"export: 100%|██████████| {steps}/{steps} [" in result.stderr
    for step in ("01_attention: near-identical answers", "grades per question", "class report"):
        assert step in result.stderr, step


def test_score_table_fits_a_terminal_with_a_column_per_notebook(graded_samples):
    course, result = graded_samples
    table = result.stdout[result.stdout.index("\nstudent ") + 1 :].split("\n\n")[0]
    lines = table.splitlines()
    names = [c.assignment for c in course.courses]
    numbers = [name.split("_")[0] for name in names]
    assert lines[0].split() == ["student", *numbers, "auto", "total", "by", "hand"]
    assert max(map(len, lines)) <= 100
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:]}
    for student in ("reference", "untouched", "bug-unscaled", "bug-head-split", "noisy-correct"):
        per_notebook = [auto_scores(course, student, name)[0] for name in names]
        expected = [f"{points:g}" for points in per_notebook] + [f"{sum(per_notebook):g}"]
        assert rows[student][: len(expected)] == expected, student


def grades_by_student(tree):
    """grades.csv's rows by student id (the points possible under MAX_ROW)."""
    with (tree.root / GRADES_CSV).open(newline="", encoding="utf-8") as handle:
        return {row["student_id"]: row for row in csv.DictReader(handle)}


def test_grades_csv_has_a_column_per_assignment_and_the_total_from_the_gradebook(graded_samples):
    course, _ = graded_samples
    rows = grades_by_student(course)
    names = [c.assignment for c in course.courses]
    for student in ("reference", "untouched", "bug-unscaled"):
        earned = [auto_scores(course, student, name)[0] for name in names]
        assert [float(rows[student][name]) for name in names] == pytest.approx(earned), student
        assert float(rows[student]["total"]) == pytest.approx(sum(earned)), student
    possible = [sum(s.max_score for s in read_scores(c, ["reference"])) for c in course.courses]
    assert [float(rows[MAX_ROW][name]) for name in names] == pytest.approx(possible)
    assert float(rows[MAX_ROW]["total"]) == pytest.approx(sum(possible))


def test_a_late_submission_loses_a_tenth_per_day_late_and_is_named(graded_samples):
    """The late sample hands in the model solutions 36 hours after each due date: two days
    (a part of a day counts), so 20 % of its points, in grades.csv and in the summary."""
    course, result = graded_samples
    rows = grades_by_student(course)
    for name in (c.assignment for c in course.courses):
        on_time = float(rows["reference"][name])
        assert on_time > 0
        assert float(rows[LATE][name]) == pytest.approx(0.8 * on_time)
        assert f"{name}: {LATE} handed in 1.5 days late: -{0.2 * on_time:g} points" in result.stdout


def test_the_class_report_covers_every_assignment_and_names_failed_cases(graded_samples):
    course, result = graded_samples
    assert f"class report: {REPORT_DIR}/{PAGE}" in result.stdout
    report = course.root / REPORT_DIR
    with (report / QUESTIONS_CSV).open(newline="", encoding="utf-8") as handle:
        questions = list(csv.DictReader(handle))
    assert {row["assignment"] for row in questions} == {c.assignment for c in course.courses}
    for row in questions:
        students = submitted_students(course[row["assignment"]])
        # A written answer no one has scored yet is pending, not a score of 0.
        graded, pending = int(row["students"]), int(row["pending"])
        assert graded + pending == len(students), row["question"]
        assert pending == 0 or row["written"] == "1", row["question"]
    with (report / CASES_CSV).open(newline="", encoding="utf-8") as handle:
        cases = list(csv.DictReader(handle))
    # The untouched release fails every case of every question.
    assert any(row["question"] == "q1_sdpa" for row in cases)
    assert (report / FIGURE).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (report / PAGE).is_file()


def test_the_copy_report_names_the_samples_that_share_the_model_solution(graded_samples):
    """Every sample but the untouched release is the model solution with at most one edit."""
    course, result = graded_samples
    assert "copies: " in result.stdout and "not a verdict" in result.stdout
    with report_paths(course["01_attention"])[0].open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    pairs = {(row["student"], row["other"]) for row in rows}
    assert {("reference", MODEL), ("bug-unscaled", "reference")} <= pairs
    assert not any("untouched" in pair for pair in pairs)


def test_feedback_is_html_only_and_shows_no_hidden_test(graded_samples):
    course, _ = graded_samples
    hidden_sources = [p.read_text() for c in course.courses for p in c.tests_dir.glob("*.py")]
    for student in ("reference", "bug-unscaled"):
        folder = course.root / "feedback" / student
        files = [p for p in folder.rglob("*") if p.is_file()]
        assert files and all(p.suffix == ".html" for p in files), files
        for page in files:
            text = page.read_text()
            assert "hidden=True" not in text and "def test_" not in text
            assert not any(source[:200] in text for source in hidden_sources)
    # The bug fails hidden cases of notebook 1: the feedback names them, without details.
    page = course.root / "feedback" / "bug-unscaled" / "01_attention" / "01_attention.html"
    assert "details withheld (hidden test)" in page.read_text()


def test_release_can_be_rebuilt_after_grading(graded_samples):
    course, _ = graded_samples
    before = [read_scores(c, ["reference"]) for c in course.courses]
    result = run_kit(course, "release")
    assert result.returncode == 0, result.stderr
    assert [read_scores(c, ["reference"]) for c in course.courses] == before
