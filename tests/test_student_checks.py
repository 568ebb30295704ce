"""Students' in-notebook checks: the release notebooks with otter's public tests, offline."""

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from tfcourse.grading.authoring import quick_env
from tfcourse.grading.samples import reference_notebooks

from conftest import check_outputs

pytestmark = pytest.mark.slow


def run_in_release_copy(course, tmp_path, notebook):
    folder = tmp_path / "student"
    shutil.copytree(course.release_dir, folder)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute(env=quick_env())  # notebooks that train do so at their graded size
    return check_outputs(notebook)


def test_solved_release_passes_every_public_check(released_course, tmp_path):
    solved = reference_notebooks(released_course)
    for name, notebook in solved.items():
        outputs = run_in_release_copy(released_course, tmp_path / name, notebook)
        assert outputs
        for question, text in outputs.items():
            assert "FAILED" not in text and "PASSED" in text, (question, text)
            assert "[hidden]" not in text
            assert "hidden tests worth" in text, text


def test_untouched_release_reports_what_to_do(released_course, tmp_path):
    name = released_course.notebook_names()[0]
    notebook = nbformat.read(released_course.release_dir / f"{name}.ipynb", as_version=4)
    folder = tmp_path / "student"
    shutil.copytree(released_course.release_dir, folder)
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    ).execute()
    outputs = check_outputs(notebook)
    assert outputs
    for question, text in outputs.items():
        assert text.startswith(f"{question}: 0 / "), text
        assert "your code raised NotImplementedError" in text, text
