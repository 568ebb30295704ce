"""Grader.check: per-case points, messages students can act on, and output nbgrader scores right."""

import sys
import textwrap
import warnings

import pytest
from nbformat.v4 import new_code_cell, new_output
from nbgrader.utils import determine_grade

from tfcourse.checking import (
    VALIDATION_WIDTH,
    CaseOutcome,
    CheckResult,
    Grader,
    progress_bars_off,
    reported_outcomes,
)

TEST_FILE = """
from otter.test_files import test_case
from tfcourse.assertions import expect

OK_FORMAT = False
name = "q_demo"

@test_case(name="doubles 2", points=2)
def test_two(double):
    expect(double(2) == 4, f"double(2): expected 4, got {double(2)}")

@test_case(name="doubles -1", points=1)
def test_negative(double):
    expect(double(-1) == -2, f"double(-1): expected -2, got {double(-1)}")

@test_case(name="secret case", points=1.5, hidden=True)
def test_secret(double):
    expect(double(10) == 20, "SECRET-INPUT 10 should give 20")
"""


@pytest.fixture
def grader(tmp_path):
    (tmp_path / "q_demo.py").write_text(TEST_FILE)
    return Grader(tmp_path)


def test_all_cases_pass(grader):
    result = grader.check("q_demo", {"double": lambda x: 2 * x})
    assert (result.score, result.possible, result.passed) == (4.5, 4.5, True)
    assert "q_demo: 4.5 / 4.5 points" in result.report()


def test_partial_credit_and_messages(grader):
    result = grader.check("q_demo", {"double": lambda x: 2 * x if x > 0 else x})
    assert result.score == 3.5
    report = result.report()
    assert "PASSED  doubles 2 (2 pts)" in report
    assert "FAILED  doubles -1 (1 pt)" in report
    assert "double(-1): expected -2, got -1" in report


def test_a_failure_points_to_the_line_of_the_test_that_failed(grader, tmp_path):
    def double(x):
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    lines = TEST_FILE.splitlines()
    line = 1 + next(i for i, text in enumerate(lines) if "double(-1) == -2" in text)
    expected = f"(the test: test_negative in {tmp_path / 'q_demo.py'}, line {line})"
    assert expected in grader.check("q_demo", {"double": lambda x: x}).report()
    assert expected in grader.check("q_demo", {"double": double}).report()


def test_hidden_failure_messages_are_withheld(grader):
    result = grader.check("q_demo", {"double": lambda x: 2 * x if x < 5 else 0})
    assert result.score == 3.0
    for text in (result.report(), result._repr_html_()):
        assert "secret case [hidden]" in text
        assert "SECRET-INPUT" not in text
        assert "details withheld" in text


def test_missing_definition_fails_with_a_hint(grader):
    result = grader.check("q_demo", {})
    assert result.score == 0
    assert "`double` is not defined: run the cell that defines it" in result.report()


def test_exceptions_in_student_code_fail_only_their_case(grader):
    def double(x):
        if x < 0:
            raise ValueError("negative")
        return 2 * x

    result = grader.check("q_demo", {"double": double})
    assert result.score == 3.5
    assert "your code raised ValueError: negative" in result.report()


def test_default_environment_is_the_callers_globals(grader, monkeypatch):
    monkeypatch.setitem(globals(), "double", lambda x: 2 * x)
    assert grader.check("q_demo").score == 4.5


def test_missing_test_file_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match="Keep the tests/ folder"):
        Grader(tmp_path).check("q_nowhere", {})


def test_public_file_reports_hidden_points(tmp_path):
    public = TEST_FILE.split('@test_case(name="secret case"')[0] + "\nhidden_points = 1.5\n"
    (tmp_path / "q_demo.py").write_text(public)
    result = Grader(tmp_path).check("q_demo", {"double": lambda x: 2 * x})
    assert result.report().startswith(
        "q_demo: 3 / 3 points (hidden tests worth 1.5 more run when graded)"
    )


def test_repr_is_the_report(grader):
    result = grader.check("q_demo", {"double": lambda x: 2 * x if x > 0 else x})
    assert repr(result).startswith("q_demo: 3.5 / 4.5 points")


def validated_cell(outputs):
    """A test cell as nbgrader's Validate reads it, holding ``outputs``."""
    cell = new_code_cell('grader.check("q_demo")', outputs=outputs)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "points": 6, "grade_id": "q"}
    return cell


def test_under_validate_a_passing_check_is_shown_not_returned(tmp_path, monkeypatch, capsys):
    """The cell's points include hidden cases the student's file lacks: a check whose public
    cases all pass must not read as partial credit, nor return a value nbgrader reads as
    points."""
    public = TEST_FILE.split('@test_case(name="secret case"')[0] + "\nhidden_points = 3\n"
    (tmp_path / "q_demo.py").write_text(public)
    monkeypatch.setenv("NBGRADER_VALIDATING", "1")  # what nbgrader's Validator sets
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert Grader(tmp_path).check("q_demo", {"double": lambda x: 2 * x}) is None
    out, err = capsys.readouterr()
    assert out.startswith("q_demo: 3 / 3 points") and err == ""
    shown = new_output("display_data", data={"text/plain": out})
    assert determine_grade(validated_cell([shown])) == (6, 6)


def test_under_validate_a_failing_check_reports_on_stderr(grader, monkeypatch, capsys):
    monkeypatch.setenv("NBGRADER_VALIDATING", "1")  # what nbgrader's Validator sets
    monkeypatch.setenv("NBGRADER_EXECUTION", "validate")
    assert grader.check("q_demo", {"double": lambda x: 2 * x if x > 0 else x}) is None
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("q_demo: 3.5 / 4.5 points") and "FAILED" in err
    failed = new_output("stream", name="stderr", text=err)
    assert determine_grade(validated_cell([failed])) == (0, 6)
    monkeypatch.delenv("NBGRADER_VALIDATING")
    assert not grader.check("q_demo", {"double": lambda x: 2 * x if x > 0 else x}).passed


def test_under_validate_a_long_failure_is_wrapped_not_cut(tmp_path, monkeypatch, capsys):
    """``nbgrader validate`` cuts a line past its width: the report's lines must fit, so that
    what was expected and what came back stay on the page."""
    long = "weights: values differ by up to 0.378 (tolerance 1e-05 + 0·|expected|); at index"
    long += " (0, 1, 0) expected 0.507657, got 0.885205"
    test_file = TEST_FILE.replace('f"double(2): expected 4, got {double(2)}"', repr(long))
    (tmp_path / "q_demo.py").write_text(test_file)
    monkeypatch.setenv("NBGRADER_VALIDATING", "1")  # what nbgrader's Validator sets
    assert Grader(tmp_path).check("q_demo", {"double": lambda x: x}) is None
    err = capsys.readouterr().err
    assert max(len(line) for line in err.splitlines()) <= VALIDATION_WIDTH, err
    assert " ".join(err.split()).count(long) == 1, err


def test_output_of_the_code_under_test_is_swallowed(grader, capfd):
    import os

    def noisy_double(x):
        print("debug print")
        print("to stderr", file=sys.stderr)
        warnings.warn("a warning from student code", stacklevel=1)
        os.write(2, b"raw write to fd 2\n")
        return 2 * x

    result = grader.check("q_demo", {"double": noisy_double})
    out, err = capfd.readouterr()
    assert result.score == 4.5
    assert (out, err) == ("", "")


def test_test_file_format_is_otters(tmp_path):
    """A test file that otter cannot parse is an error, not a silent pass."""
    (tmp_path / "q_bad.py").write_text(textwrap.dedent("OK_FORMAT = False\n"))
    with pytest.raises(ValueError, match="does not define 'name'"):
        Grader(tmp_path).check("q_bad", {})


def test_progress_bars_are_silenced_meanwhile_and_restored(capfd):
    def notebook_tqdm(iterable):
        return iterable

    with_bar, without_bar = {"tqdm": notebook_tqdm}, {}
    for env in (with_bar, without_bar):
        with progress_bars_off(env):
            assert list(env["tqdm"](range(3))) == [0, 1, 2]
    assert capfd.readouterr().err == ""
    assert with_bar == {"tqdm": notebook_tqdm} and without_bar == {}


def test_a_report_tells_which_public_cases_passed():
    """What the grader compares with: a stored report read back gives each public case's
    outcome as the check computed it."""
    cases = (
        CaseOutcome("shapes", 1, hidden=False, passed=True),
        CaseOutcome("values  with two spaces", 2, hidden=False, passed=False, message="a\nb"),
        CaseOutcome("hidden", 3, hidden=True, passed=True),
    )
    result = CheckResult("q9_demo", cases)
    assert reported_outcomes(result.report()) == {
        **result.public_outcomes(),
        "hidden [hidden] (3 pts)": True,
    }
    assert result.public_outcomes() == {
        "shapes (1 pt)": True,
        "values  with two spaces (2 pts)": False,
    }
