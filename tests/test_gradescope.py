"""Gradescope's otter autograders, generated from the same test files as nbgrader's, score the
sample submissions as nbgrader does, question by question (real otter generate and run)."""

import json
import shutil
import subprocess
import sys
import zipfile

import pytest

from tfcourse.runmode import AUTOGRADER_MARKER
from tfcourse_instructor.grading.build.gradescope import OUTPUT_DIR, notebook_questions
from tfcourse_instructor.grading.classroom.scores import read_scores

from conftest import REPO

pytestmark = pytest.mark.slow

# One submission per notebook, each with a bug there: full, partial and zero-point questions.
# Notebook 3 trains: its scores match nbgrader's only if the autograder runs it in quick mode.
SUBMISSIONS = {
    "bug-unscaled": "01_attention",
    "bug-unshifted-targets": "03_language_models",
    "bug-attention-cost": "04_theory",
    "bug-online-nan": "05_inference",
    "bug-rope-frequencies": "06_tokens_positions",
}


@pytest.fixture(scope="module")
def autograders(graded_samples):
    """The graded course, with the autograders of the notebooks above written by the command."""
    course, _ = graded_samples
    shutil.copy(REPO / "requirements.txt", course.root)  # the pins the zips carry
    module = "tfcourse_instructor.grading"
    command = [sys.executable, "-m", module, "gradescope", *SUBMISSIONS.values()]
    result = subprocess.run(command, cwd=course.root, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return course


@pytest.mark.parametrize("notebook", SUBMISSIONS.values())
def test_autograder_carries_every_test_hidden_included_and_the_helpers(autograders, notebook):
    course = autograders[notebook]
    with zipfile.ZipFile(course.root / OUTPUT_DIR / f"{notebook}.zip") as archive:
        names = set(archive.namelist())
        questions = notebook_questions(course, notebook)
        assert {name for name in names if name.startswith("tests/")} == {
            f"tests/{question}.py" for question in questions
        }
        for question in questions:
            source = (course.tests_dir / f"{question}.py").read_bytes()
            assert archive.read(f"tests/{question}.py") == source
        assert {"files/tfcourse/checking.py", "files/tfcourse/assertions.py"} <= names
        assert f"files/tfcourse/{AUTOGRADER_MARKER}" in names  # quick mode on Gradescope
        environment = archive.read("environment.yml").decode()
    assert "torch==" in environment and "otter-grader" in environment
    assert not list(course.release_dir.rglob("*.zip"))


@pytest.mark.parametrize(("student", "notebook"), SUBMISSIONS.items())
def test_otter_run_gives_nbgraders_score_for_every_question(
    autograders, student, notebook, tmp_path
):
    course = autograders[notebook]
    submission = course.submitted_dir / student / course.assignment / f"{notebook}.ipynb"
    command = [
        *(sys.executable, "-m", "otter", "run", str(submission)),
        *("-a", str(course.root / OUTPUT_DIR / f"{notebook}.zip"), "-o", str(tmp_path)),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    tests = json.loads((tmp_path / "results.json").read_text())["tests"]
    by_otter = {t["name"]: (t["score"], t["max_score"]) for t in tests if "max_score" in t}
    by_nbgrader = {
        s.question: (s.score, s.max_score)
        for s in read_scores(course, [student])
        if s.notebook == notebook and s.autograded
    }
    assert by_otter == by_nbgrader
    earned, possible = (sum(values) for values in zip(*by_otter.values(), strict=True))
    assert 0 < earned < possible
