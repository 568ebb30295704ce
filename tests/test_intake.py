"""Intake from an LMS download: `nbgrader zip_collect` files each notebook under submitted/."""

from __future__ import annotations

import shutil
import zipfile

import pytest

from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.intake import collect_lms_zip, fingerprint, submitted_students

pytestmark = pytest.mark.slow


def test_an_lms_zip_lands_in_submitted(released_course, tmp_path):
    course = Course(tmp_path / "course")
    shutil.copytree(released_course.root, course.root)
    notebook = (course.release_dir / "01_attention.ipynb").read_bytes()
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("jdoe_12345_67890_01_attention.ipynb", notebook)  # Canvas style
        bundle.writestr("asmith_01_attention.ipynb", notebook)
        bundle.writestr("asmith_notes.txt", "not a notebook")

    collect_lms_zip(course, archive)

    assert submitted_students(course) == ["asmith", "jdoe"]
    for student in ("asmith", "jdoe"):
        folder = course.submitted_dir / student / course.assignment
        assert (folder / "01_attention.ipynb").read_bytes() == notebook
        assert not (folder / "asmith_notes.txt").exists()


def test_a_fingerprint_changes_only_with_the_notebooks(tmp_path):
    (tmp_path / "01_attention.ipynb").write_text("{}")
    (tmp_path / "scratch.txt").write_text("ignored")
    first = fingerprint(tmp_path)
    (tmp_path / "scratch.txt").write_text("still ignored")
    assert fingerprint(tmp_path) == first
    (tmp_path / "01_attention.ipynb").write_text('{"changed": true}')
    assert fingerprint(tmp_path) != first
    assert fingerprint(tmp_path, "other limits") != fingerprint(tmp_path)
