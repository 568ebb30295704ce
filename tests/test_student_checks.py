"""Students' in-notebook checks on an untouched release notebook (the solved notebooks pass
every public check in tests/test_colab.py)."""

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import check_outputs

pytestmark = pytest.mark.slow


def test_untouched_release_reports_what_to_do(released_course, tmp_path):
    course = released_course.courses[0]
    name = course.assignment
    notebook = nbformat.read(course.release_dir / f"{name}.ipynb", as_version=4)
    folder = tmp_path / "student"
    shutil.copytree(course.release_dir, folder)
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
