"""Build ``release/`` from ``source/``: nbgrader's student notebooks, public test files and the
modules an assignment gives."""

from __future__ import annotations

import shutil

from tfcourse_instructor.grading.build.public_tests import public_test_source
from tfcourse_instructor.grading.course import Course


def write_student_files(course: Course) -> None:
    """Write what ``source/`` hands out besides the notebook: the students' copy of every test
    file (:attr:`Course.public_tests_dir`) from the full ones (:attr:`Course.tests_dir`), and
    the given modules (:attr:`Course.given_dir`) beside the notebook; copies of files that no
    longer exist are removed."""
    target = course.public_tests_dir
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for test_file in sorted(course.tests_dir.glob("*.py")):
        public = public_test_source(test_file.read_text(encoding="utf-8"))
        (target / test_file.name).write_text(public, encoding="utf-8")
    for stale in course.source_dir.glob("*.py"):
        stale.unlink()
    course.copy_given_modules(course.source_dir)


def generate_release(course: Course) -> None:
    """Regenerate the release of ``course`` from scratch.

    The release is exactly what plain ``nbgrader generate_assignment`` (formgrader's Generate
    button) writes once ``source/`` holds the public test files, so either route gives the
    same files. The gradebook is left alone, so a release can be rebuilt at any time, even
    after grading has started.
    """
    write_student_files(course)
    if course.release_dir.exists():
        shutil.rmtree(course.release_dir)
    course.nbgrader("generate_assignment", course.assignment, "--force", "--no-db")
