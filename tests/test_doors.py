"""Every nbgrader door an instructor or student can click gives the kit's result or stops with
a message naming the kit's command, and none of them hands out a hidden test, solution or
rubric.

The doors are driven for real in a copy of the graded sample class: formgrader's HTTP
endpoints (the requests its buttons send) and the student's Validate button on a running
Jupyter server, and the nbgrader commands. Afterwards the gradebook still holds the kit's
grades.
"""

import getpass
import json
import re
import shutil
import subprocess
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfcourse_instructor.grading.classroom.doors import LOG_WIDTH, USE_THE_KIT, log_text
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.selftest.samples import SAMPLES, UNSCALED, reference_notebooks

from conftest import (
    jupyter_server,
    one_notebook_course,
    run_kit,
    run_module,
    said,
    student_facing_leaks,
    tree,
)

pytestmark = pytest.mark.slow

NOTEBOOK = "01_attention"
REQUEST = 600  # seconds: a formgrader request runs nbgrader to the end before it answers
BUG = (UNSCALED.old, UNSCALED.new)  # scores not divided by sqrt(d_k)
STUDENTS = ("reference", "bug-unscaled", "untouched")
COURSE_ID = "transformers-course"  # nbgrader_config.py


def scores(course: Course) -> dict[tuple[str, str], tuple[float, float]]:
    """(student, question) -> (auto score, manual score) as the gradebook holds them."""
    found = {}
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        for submission in gradebook.assignment_submissions(course.assignment):
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    score = (grade.auto_score, grade.manual_score)
                    found[submission.student.id, grade.name] = score
    return found


@pytest.fixture(scope="module")
def doors(tmp_path_factory):
    """A class graded by the kit (notebook 1; a correct, a buggy and an untouched submission)
    whose nbgrader exchange is a scratch folder, with a running Jupyter server (formgrader and
    the student extensions) in it."""
    course = one_notebook_course(tmp_path_factory.mktemp("doors") / "course", NOTEBOOK)
    for sample in SAMPLES:
        if sample.student_id in STUDENTS:
            folder = course.submitted_dir / sample.student_id / course.assignment
            folder.mkdir(parents=True)
            nbformat.write(sample.make(course)[NOTEBOOK], folder / f"{NOTEBOOK}.ipynb")
    graded = run_kit(course, "grade", "--jobs", "2")
    assert graded.returncode == 0, graded.stdout + graded.stderr
    exchange = course.root.parent / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)  # nbgrader's exchange is shared by every user
    with (course.root / "nbgrader_config.py").open("a") as config:
        config.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    before = scores(course)
    assert before
    with jupyter_server(course.root, "server") as (base, token):
        yield course, exchange, before, base, token


def post(server, url: str, **fields: str) -> dict:
    """POST to the Jupyter server as formgrader's and the Validate button's scripts do."""
    base, token = server
    data = urllib.parse.urlencode(fields).encode() if fields else b""
    request = urllib.request.Request(
        f"{base}{url}", data=data, method="POST", headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(request, timeout=REQUEST) as response:
        return json.loads(response.read())


def get(server, url: str) -> str:
    base, token = server
    request = urllib.request.Request(f"{base}{url}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=REQUEST) as response:
        return response.read().decode()


def nbgrader(course: Course, *args: str) -> subprocess.CompletedProcess[str]:
    return run_module(course, "nbgrader", *args, timeout=REQUEST)


def solved(course: Course, folder: Path, bug: tuple[str, str] | None = None) -> Path:
    """Notebook 1 with the model answers (or one bug) in ``folder``, beside its public tests."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(course.release_dir / "tests", folder / "tests", dirs_exist_ok=True)
    notebook = reference_notebooks(course)[NOTEBOOK]
    if bug:
        cell = next(c for c in notebook.cells if bug[0] in c.source)
        cell.source = cell.source.replace(*bug)
    path = folder / f"{NOTEBOOK}.ipynb"
    nbformat.write(notebook, path)
    return path


def test_formgrader_generate_writes_the_release_without_hidden_tests(doors):
    course, _, _, base, token = doors
    released = tree(course.release_dir)  # written by the kit's `release`
    result = post((base, token), f"/formgrader/api/assignment/{course.assignment}/assign")
    assert result["success"], result
    assert tree(course.release_dir) == released
    assert student_facing_leaks(course.release_dir, course) == []


def test_release_fetch_submit_collect_through_the_buttons(doors):
    course, exchange, before, base, token = doors
    server = (base, token)
    result = post(server, f"/formgrader/api/assignment/{course.assignment}/release")
    assert result["success"], result
    assert student_facing_leaks(exchange, course) == []
    # The student's Assignments tab: fetch, answer, submit.
    fields = {"course_id": COURSE_ID, "assignment_id": course.assignment}
    assert post(server, "/assignments/fetch", **fields)["success"]
    fetched = course.root / course.assignment
    assert (fetched / f"{NOTEBOOK}.ipynb").is_file()
    solved(course, fetched)
    assert post(server, "/assignments/submit", **fields)["success"]
    result = post(server, f"/formgrader/api/assignment/{course.assignment}/collect")
    assert result["success"], result
    collected = course.submitted_dir / getpass.getuser() / course.assignment
    assert (collected / f"{NOTEBOOK}.ipynb").is_file()
    graded = run_kit(course, "grade")
    assert graded.returncode == 0, graded.stdout + graded.stderr
    assert getpass.getuser() in graded.stdout, graded.stdout
    before.update(scores(course))  # the kit's grades, now with the collected student's


def test_formgrader_autograde_stops_and_changes_nothing(doors):
    course, _, before, base, token = doors
    student = "reference"
    autograded = tree(course.autograded_dir / student)
    path = f"/formgrader/api/submission/{course.assignment}/{student}/autograde"
    result = post((base, token), path)
    # Answered by the kit's formgrader: the refusal as the log, no traceback ("error").
    assert result == {"success": False, "log": log_text(USE_THE_KIT)}, result
    assert max(len(line) for line in result["log"].splitlines()) <= LOG_WIDTH
    assert tree(course.autograded_dir / student) == autograded
    assert scores(course) == before


def test_formgrader_feedback_buttons_hand_out_no_secret(doors):
    course, exchange, _, base, token = doors
    server = (base, token)
    result = post(server, f"/formgrader/api/assignment/{course.assignment}/generate_feedback")
    assert result["success"], result
    feedback = course.root / "feedback"
    assert student_facing_leaks(feedback, course, holds_answers=True) == []
    for student in (*STUDENTS, getpass.getuser()):
        page = (feedback / student / course.assignment / f"{NOTEBOOK}.html").read_text()
        shown = float(re.search(r"\(Score: ([\d.]+) / ", page)[1])
        with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
            graded = gradebook.find_submission_notebook(NOTEBOOK, course.assignment, student)
            assert shown == pytest.approx(graded.score, abs=0.01), student
    # Feedback travels through the exchange for submissions that came through it.
    student = getpass.getuser()
    release = f"/formgrader/api/assignment/{course.assignment}/{student}/release_feedback"
    result = post(server, release)
    assert result["success"], result
    fields = {"course_id": COURSE_ID, "assignment_id": course.assignment}
    assert post(server, "/assignments/fetch_feedback", **fields)["success"]
    fetched = course.root / course.assignment / "feedback"
    assert list(fetched.rglob(f"{NOTEBOOK}.html"))
    assert student_facing_leaks(exchange, course, holds_answers=True) == []
    assert student_facing_leaks(fetched, course, holds_answers=True) == []


def test_formgrader_manual_grading_page_shows_no_hidden_test(doors):
    course, _, _, base, token = doors
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        submission = gradebook.find_submission_notebook(NOTEBOOK, course.assignment, "reference")
        submission_id = submission.id
    page = get((base, token), f"/formgrader/submissions/{submission_id}")
    assert "q1_sdpa" in page
    scratch = course.root.parent / "manual-page"
    scratch.mkdir()
    (scratch / "page.html").write_text(page)
    assert student_facing_leaks(scratch, course, holds_answers=True) == []


@pytest.mark.parametrize("bug", [None, BUG], ids=["correct", "buggy"])
def test_validate_button_passes_a_correct_notebook_and_names_a_failing_check(doors, bug):
    course, _, _, base, token = doors
    folder = course.root / f"validate-{'buggy' if bug else 'correct'}"
    path = solved(course, folder, bug)
    result = post((base, token), "/assignments/validate", path=str(path.relative_to(course.root)))
    assert result["success"], result
    value = json.dumps(result["value"])
    if bug:
        assert "q1_sdpa" in value and "FAILED" in value, value
        assert "Traceback" not in value and "checking.py" not in value, value
    else:
        assert not result["value"].get("failed") and "partial credit" not in value.lower(), value


@pytest.mark.parametrize("bug", [None, BUG], ids=["correct", "buggy"])
def test_command_line_validate_names_a_failing_check_and_warns_of_nothing(doors, bug):
    course, *_ = doors
    folder = course.root / f"validate-cli-{'buggy' if bug else 'correct'}"
    path = solved(course, folder, bug)
    done = nbgrader(course, "validate", str(path))
    printed = done.stdout + done.stderr
    assert "converted to a float" not in printed and "Traceback" not in printed, printed
    if bug:
        assert "VALIDATION FAILED ON" in printed and "q1_sdpa: " in printed, printed
    else:
        assert "Success! Your notebook passes all the tests." in printed, printed


def test_cli_generate_and_feedback_hand_out_no_secret(doors):
    course, _, _, _, _ = doors
    released = tree(course.release_dir)
    done = nbgrader(course, "generate_assignment", course.assignment, "--force")
    assert done.returncode == 0, done.stderr
    assert tree(course.release_dir) == released
    done = nbgrader(
        course, "generate_feedback", course.assignment, "--student=bug-unscaled", "--force"
    )
    assert done.returncode == 0, done.stderr
    assert student_facing_leaks(course.root / "feedback", course, holds_answers=True) == []


def test_cli_release_collect_and_release_feedback(doors):
    course, exchange, before, _, _ = doors
    done = nbgrader(course, "release_assignment", course.assignment, "--force")
    assert done.returncode == 0, done.stderr
    done = nbgrader(course, "collect", course.assignment, "--update")
    assert done.returncode == 0, done.stderr
    done = nbgrader(course, "release_feedback", course.assignment, f"--student={getpass.getuser()}")
    assert done.returncode == 0, done.stderr
    assert student_facing_leaks(exchange, course, holds_answers=True) == []
    assert scores(course) == before


def test_cli_autograde_stops_naming_the_kit(doors):
    course, _, before, _, _ = doors
    autograded = tree(course.autograded_dir)
    done = nbgrader(course, "autograde", course.assignment, "--force")
    assert done.returncode != 0
    assert said(USE_THE_KIT, done.stdout + done.stderr)
    assert tree(course.autograded_dir) == autograded
    assert scores(course) == before


@pytest.mark.parametrize("bug", [None, BUG], ids=["correct", "buggy"])
def test_cli_validate(doors, bug):
    course, _, _, _, _ = doors
    path = solved(course, course.root / f"cli-validate-{'buggy' if bug else 'correct'}", bug)
    done = nbgrader(course, "validate", str(path))
    if bug:
        assert "VALIDATION FAILED" in done.stdout and "q1_sdpa" in done.stdout, done.stdout
        assert "FAILED" in done.stdout.split("q1_sdpa", 1)[1]
    else:
        assert "Success! Your notebook passes all the tests." in done.stdout, done.stdout


def test_cli_zip_collect_stops_and_names_the_kits_intake(doors):
    course, _, before, _, _ = doors
    archive = course.root / "downloaded" / course.assignment / "archive"
    archive.mkdir(parents=True)
    notebook = solved(course, course.root / "lms")
    with zipfile.ZipFile(archive / "lms.zip", "w") as bundle:
        bundle.write(notebook, f"newcomer_{NOTEBOOK}.ipynb")
    done = nbgrader(course, "zip_collect", course.assignment, "--force")
    assert done.returncode != 0
    assert said("grade --zip", done.stdout + done.stderr)
    assert not (course.submitted_dir / "newcomer").exists()
    assert not (course.root / "downloaded" / course.assignment / "extracted").exists()
    assert scores(course) == before


def test_after_every_door_the_gradebook_holds_the_kits_grades(doors):
    course, _, before, _, _ = doors
    assert scores(course) == before
