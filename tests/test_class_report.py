"""The class report: grades.csv over every graded assignment, per-question statistics, the
failed test cases, the figure and the page, from a real nbgrader gradebook and autograded
notebooks built here for two assignments and a few students (one missing an assignment, one
late, one whose check hit the time limit, two with hostile ids).

Every expected value is computed from the same inputs the gradebook is built from.
"""

from __future__ import annotations

import csv
import math
import statistics
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import matplotlib.image
import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from nbgrader.api import Gradebook

from tfcourse.checking import CaseOutcome, CheckResult
from tfcourse_instructor.grading import cli
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.report.class_report import (
    CASES_CSV,
    FIGURE,
    PAGE,
    QUESTIONS_CSV,
    REPORT_DIR,
    write_report,
)
from tfcourse_instructor.grading.report.figure import BANDS, band_shares
from tfcourse_instructor.grading.report.grades import GRADES_CSV, MAX_ROW
from tfcourse_instructor.grading.report.questions import QuestionStats
from tfcourse_instructor.grading.submission.execution import error_output, score_output
from tfcourse_instructor.grading.submission.graded_outputs import CASES_METADATA, CELL_TIMEOUT

# nbgrader's own add_submission trips SQLAlchemy's autoflush warnings; nothing of the kit's.
pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SAWarning")

FORMULA = "=cmd|' /C calc'!A0"
SCRIPT = "<script>alert(1)</script>"
# Teaching order as course.toml gives it, unlike the names' order: 03 is never graded.
SCHEDULE = ("02_encoder", "01_attention", "03_language_models")
DUE = datetime(2027, 2, 1, 23, 59)
PENALTY_PER_DAY = 0.1  # nbgrader_config.py's PenaltyPerDay

# assignment -> test question -> its cases: (name, points, hidden)
CASES = {
    "01_attention": {
        "q1_sdpa": (
            ("shapes", 1.0, False),
            ("values <b>close</b>", 2.0, False),
            ("masks", 1.0, True),
        ),
        "q1_mask": (("=1+1 causal", 1.0, False),),
    },
    "02_encoder": {
        "q2_positions": (("table", 1.0, False), ("period", 2.0, True)),
        "q2_layer": (("post-norm", 2.0, False),),
    },
}
WRITTEN = {"01_attention": {}, "02_encoder": {"w2_norm": 2.0}}
"""Written answers graded by hand: question -> points."""
# assignment -> student -> question -> names of the failed cases (None: the time limit
# stopped the check). cyd handed in no 02_encoder.
FAILED: dict[str, dict[str, dict[str, list[str] | None]]] = {
    "01_attention": {
        "ada": {"q1_sdpa": [], "q1_mask": []},
        "bob": {"q1_sdpa": ["values <b>close</b>", "masks"], "q1_mask": ["=1+1 causal"]},
        "cyd": {"q1_sdpa": None, "q1_mask": []},
        FORMULA: {"q1_sdpa": ["masks"], "q1_mask": ["=1+1 causal"]},
        SCRIPT: {"q1_sdpa": ["shapes", "values <b>close</b>", "masks"], "q1_mask": []},
    },
    "02_encoder": {
        "ada": {"q2_positions": [], "q2_layer": []},
        "bob": {"q2_positions": ["period"], "q2_layer": ["post-norm"]},
        FORMULA: {"q2_positions": ["table", "period"], "q2_layer": []},
        SCRIPT: {"q2_positions": [], "q2_layer": ["post-norm"]},
    },
}
HAND = {("02_encoder", "ada"): {"w2_norm": 1.5}, ("02_encoder", FORMULA): {"w2_norm": 0.5}}
"""Written answers scored so far (the others await a grader: pending)."""
DAYS_LATE = {("01_attention", "bob"): 1.5}


def label(name: str, points: float, hidden: bool) -> str:
    """A case as the feedback names it."""
    return f"{name}{' [hidden]' if hidden else ''} ({points:g} pt{'s' if points != 1 else ''})"


def check_result(assignment: str, student: str, question: str) -> CheckResult | None:
    failed = FAILED[assignment][student][question]
    if failed is None:
        return None
    cases = tuple(
        CaseOutcome(name, points, hidden, passed=name not in failed)
        for name, points, hidden in CASES[assignment][question]
    )
    return CheckResult(question, cases)


def points_of(assignment: str, student: str, question: str) -> float:
    result = check_result(assignment, student, question)
    return 0.0 if result is None else result.score


def raw_score(assignment: str, student: str) -> float:
    tests = sum(points_of(assignment, student, q) for q in CASES[assignment])
    return tests + sum(HAND.get((assignment, student), {}).values())


def penalty(assignment: str, student: str) -> float:
    days = DAYS_LATE.get((assignment, student), 0)
    return raw_score(assignment, student) * PENALTY_PER_DAY * math.ceil(days)


def max_score(assignment: str) -> float:
    tests = sum(p for cases in CASES[assignment].values() for _, p, _ in cases)
    return tests + sum(WRITTEN[assignment].values())


def autograded_notebook(assignment: str, student: str) -> nbformat.NotebookNode:
    """The student's notebook as grading leaves it: each test cell shows the kit's score
    output, or a time-limit error."""
    cells = []
    for question, cases in CASES[assignment].items():
        answer = new_code_cell("answer = 42")
        answer.metadata["nbgrader"] = {
            "grade": False,
            "solution": True,
            "grade_id": f"a_{question}",
        }
        test = new_code_cell(f'grader.check("{question}")')
        points = sum(p for _, p, _ in cases)
        test.metadata["nbgrader"] = {
            "grade": True,
            "solution": False,
            "grade_id": question,
            "points": points,
            "locked": True,
        }
        result = check_result(assignment, student, question)
        test.outputs = [
            error_output(CELL_TIMEOUT, "the cell ran over its time limit")
            if result is None
            else score_output(result)
        ]
        cells += [answer, test]
    for question, points in WRITTEN[assignment].items():
        written = new_markdown_cell("My answer.")
        written.metadata["nbgrader"] = {
            "grade": True,
            "solution": True,
            "grade_id": question,
            "points": points,
        }
        cells.append(written)
    return new_notebook(cells=cells)


@pytest.fixture(scope="module")
def course_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A course graded in both assignments: gradebook and autograded notebooks."""
    root = tmp_path_factory.mktemp("course")
    (root / "nbgrader_config.py").write_text("", encoding="utf-8")
    (root / "course.toml").write_text(
        "".join(f'[[assignment]]\nname = "{name}"\nreleased = true\n\n' for name in SCHEDULE),
        encoding="utf-8",
    )
    gradebook_path = Course(root, SCHEDULE[0]).gradebook
    with Gradebook(f"sqlite:///{gradebook_path}") as gradebook:
        for student in ("ada", "bob", "cyd", FORMULA, SCRIPT):
            gradebook.add_student(student)
        for assignment in sorted(CASES):  # the gradebook's order is not the teaching order
            gradebook.add_assignment(assignment, duedate=DUE)
            gradebook.add_notebook(assignment, assignment)
            for question, cases in CASES[assignment].items():
                points = sum(p for _, p, _ in cases)
                gradebook.add_grade_cell(
                    question, assignment, assignment, max_score=points, cell_type="code"
                )
            for question, points in WRITTEN[assignment].items():
                gradebook.add_grade_cell(
                    question, assignment, assignment, max_score=points, cell_type="markdown"
                )
                gradebook.add_solution_cell(question, assignment, assignment)
            for student in FAILED[assignment]:
                late = timedelta(days=DAYS_LATE.get((assignment, student), -1))
                gradebook.add_submission(assignment, student, timestamp=DUE + late)
                for question in CASES[assignment]:
                    grade = gradebook.find_grade(question, assignment, assignment, student)
                    grade.auto_score = points_of(assignment, student, question)
                    grade.needs_manual_grade = False
                for question in WRITTEN[assignment]:  # as nbgrader's autograde leaves them
                    grade = gradebook.find_grade(question, assignment, assignment, student)
                    grade.needs_manual_grade = True
                for question, score in HAND.get((assignment, student), {}).items():
                    grade = gradebook.find_grade(question, assignment, assignment, student)
                    grade.manual_score = score
                    grade.needs_manual_grade = False
                notebook = gradebook.find_submission_notebook(assignment, assignment, student)
                notebook.late_submission_penalty = penalty(assignment, student)
                path = Course(root, assignment).autograded_dir / student / assignment
                path.mkdir(parents=True)
                nbformat.write(
                    autograded_notebook(assignment, student), path / f"{assignment}.ipynb"
                )
        gradebook.db.commit()
    write_report(root)
    return root


def read_csv(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_grades_csv_has_a_column_per_graded_assignment_in_teaching_order_and_the_total(
    course_root,
):
    rows = read_csv(course_root / GRADES_CSV)
    graded = [name for name in SCHEDULE if name in CASES]
    assert rows[0] == ["student_id", *graded, "total"]
    maxima = [max_score(name) for name in graded]
    assert rows[1] == [MAX_ROW, *(f"{m:g}" for m in maxima), f"{sum(maxima):g}"]
    by_student = {row[0]: row[1:] for row in rows[2:]}
    assert len(by_student) == len(rows) - 2 == 5
    for student in ("ada", "bob", "cyd"):
        expected = [
            max(0.0, raw_score(name, student) - penalty(name, student))
            if student in FAILED[name]
            else None
            for name in graded
        ]
        cells = by_student[student]
        assert cells[:-1] == ["" if e is None else f"{e:g}" for e in expected], student
        assert float(cells[-1]) == pytest.approx(sum(e or 0.0 for e in expected)), student


def test_a_late_submission_counts_after_its_penalty_and_a_missing_one_is_empty(course_root):
    rows = {row[0]: row for row in read_csv(course_root / GRADES_CSV)}
    column = rows["student_id"].index("01_attention")
    raw = raw_score("01_attention", "bob")
    assert raw > 0 and penalty("01_attention", "bob") == pytest.approx(0.2 * raw)
    assert float(rows["bob"][column]) == pytest.approx(0.8 * raw)
    assert rows["cyd"][rows["student_id"].index("02_encoder")] == ""


def test_student_ids_that_read_as_formulas_are_inert_in_grades_csv(course_root):
    ids = [row[0] for row in read_csv(course_root / GRADES_CSV)[2:]]
    assert f"'{FORMULA}" in ids and FORMULA not in ids
    assert SCRIPT in ids  # not a formula: kept as written, CSV is no page


def test_a_graded_test_cell_records_every_case_hidden_ones_by_their_label():
    result = check_result("01_attention", "bob", "q1_sdpa")
    assert result is not None
    recorded = score_output(result).metadata[CASES_METADATA]
    cases = CASES["01_attention"]["q1_sdpa"]
    failed = FAILED["01_attention"]["bob"]["q1_sdpa"] or []
    assert recorded == {label(n, p, h): n not in failed for n, p, h in cases}


def expected_stats(assignment: str, question: str) -> dict[str, object]:
    students = FAILED[assignment]
    scores = [points_of(assignment, s, question) for s in students]
    possible = sum(p for _, p, _ in CASES[assignment][question])
    labels = {name: label(name, p, h) for name, p, h in CASES[assignment][question]}
    failed = Counter(labels[name] for own in students.values() for name in own[question] or [])
    return {
        "students": len(scores),
        "mean": statistics.fmean(scores),
        "std": statistics.pstdev(scores),
        "full": sum(s == possible for s in scores) / len(scores),
        "zero": sum(s == 0 for s in scores) / len(scores),
        "unchecked": sum(own[question] is None for own in students.values()),
        "failed": dict(failed),
        "max": possible,
    }


def test_questions_csv_holds_each_questions_statistics(course_root):
    rows = read_csv(course_root / REPORT_DIR / QUESTIONS_CSV)
    header, rows = rows[0], rows[1:]
    found = {(row[0], row[2]): dict(zip(header, row, strict=True)) for row in rows}
    graded = [name for name in SCHEDULE if name in CASES]
    in_order = [(a, q) for a in graded for q in (*CASES[a], *WRITTEN[a])]
    assert [(row[0], row[2]) for row in rows] == in_order
    for (assignment, question), row in found.items():
        if question in WRITTEN[assignment]:
            continue
        expected = expected_stats(assignment, question)
        assert row["notebook"] == assignment
        assert float(row["max_score"]) == expected["max"]
        assert int(row["students"]) == expected["students"]
        for column, key in (
            ("mean", "mean"),
            ("std", "std"),
            ("full_share", "full"),
            ("zero_share", "zero"),
        ):
            assert float(row[column]) == pytest.approx(expected[key], abs=1e-3), (question, column)
        assert int(row["not_checked"]) == expected["unchecked"], question


def pending_students(assignment: str, question: str) -> list[str]:
    """The students whose written answer ``question`` no grader has scored yet."""
    return [s for s in FAILED[assignment] if question not in HAND.get((assignment, s), {})]


def test_a_written_answer_not_yet_graded_by_hand_is_pending_not_zero(course_root):
    rows = read_csv(course_root / REPORT_DIR / QUESTIONS_CSV)
    found = {(row[0], row[2]): dict(zip(rows[0], row, strict=True)) for row in rows[1:]}
    for assignment, written in WRITTEN.items():
        for question, points in written.items():
            row = found[assignment, question]
            scored = [HAND[assignment, s][question] for s in FAILED[assignment]
                      if question in HAND.get((assignment, s), {})]  # fmt: skip
            assert row["written"] == "1" and float(row["max_score"]) == points
            assert int(row["pending"]) == len(pending_students(assignment, question)) > 0
            assert int(row["students"]) == len(scored)
            assert float(row["mean"]) == pytest.approx(statistics.fmean(scored), abs=1e-3)
            assert float(row["zero_share"]) == 0  # no pending answer counted as 0
    assert all(row["written"] == "0" and row["pending"] == "0"
               for (a, q), row in found.items() if q in CASES[a])  # fmt: skip


def test_the_page_leaves_students_with_pending_answers_out_of_the_mean(course_root):
    page = (course_root / REPORT_DIR / PAGE).read_text(encoding="utf-8")
    for assignment in CASES:
        students = list(FAILED[assignment])
        waiting = {s for q in WRITTEN[assignment] for s in pending_students(assignment, q)}
        final = [
            max(0.0, raw_score(assignment, s) - penalty(assignment, s))
            for s in students
            if s not in waiting
        ]
        mean = f"mean {statistics.fmean(final):.3g}" if final else "no mean yet"
        assert (
            f"{len(students)} students graded; {mean} of {max_score(assignment):g} points over "
            f"the {len(final)} graded in full; {len(waiting)} with written answers still to "
            "grade by hand"
        ) in page, assignment
    assert ">w2_norm (written)<" in page


def test_cases_csv_counts_the_students_who_failed_each_case_hidden_ones_by_name(course_root):
    rows = read_csv(course_root / REPORT_DIR / CASES_CSV)
    assert rows[0] == ["assignment", "notebook", "question", "case", "failed_by", "students"]
    counted: dict[tuple[str, str], dict[str, int]] = {}
    for assignment, _, question, case, failed_by, students in rows[1:]:
        assert int(students) == len(FAILED[assignment])
        counted.setdefault((assignment, question), {})[case] = int(failed_by)
    for assignment, questions in CASES.items():
        for question in questions:
            expected = expected_stats(assignment, question)["failed"]
            safe = {f"'{k}" if k.startswith("=") else k: v for k, v in expected.items()}
            assert counted.get((assignment, question), {}) == safe, question
    assert counted["01_attention", "q1_sdpa"]["masks [hidden] (1 pt)"] == 3


def test_the_page_shows_every_question_escaped_and_no_student_id(course_root):
    page = (course_root / REPORT_DIR / PAGE).read_text(encoding="utf-8")
    for questions in CASES.values():
        for question in questions:
            assert f">{question}<" in page
    assert "values &lt;b&gt;close&lt;/b&gt; (2 pts): 2 of 5" in page
    assert "<b>close" not in page and "<script" not in page.lower()
    assert "calc" not in page and "alert" not in page
    assert f'src="{FIGURE}"' in page


def test_the_figure_is_a_png_with_a_band_per_share_of_the_points(course_root):
    path = course_root / REPORT_DIR / FIGURE
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > 500 and height > 200
    stats = QuestionStats("a", "a", "q", 4.0, (0.0, 1.0, 2.0, 4.0, 4.0), (), 0)
    assert len(BANDS) == 4
    assert band_shares(stats) == pytest.approx((1 / 5, 1 / 5, 1 / 5, 2 / 5))


def test_the_report_command_rewrites_the_report_from_the_gradebook(
    course_root, monkeypatch, capsys
):
    page = course_root / REPORT_DIR / PAGE
    grades = (course_root / GRADES_CSV).read_text(encoding="utf-8")
    page.unlink()
    (course_root / GRADES_CSV).unlink()
    monkeypatch.chdir(course_root)
    assert cli.main(["report"]) == 0
    assert f"class report: {REPORT_DIR}/{PAGE}" in capsys.readouterr().out
    assert page.is_file() and (course_root / GRADES_CSV).read_text(encoding="utf-8") == grades


def test_the_report_command_without_a_gradebook_says_to_grade_first(tmp_path, monkeypatch, capsys):
    (tmp_path / "nbgrader_config.py").write_text("", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["report"]) == 1
    assert "grade a class first" in capsys.readouterr().err
    assert not (tmp_path / "gradebook.db").exists()
