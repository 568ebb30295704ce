"""Build ``release/`` from ``source/``: nbgrader's student notebooks plus public test files."""

from __future__ import annotations

import shutil

from tfcourse.grading.course import Course
from tfcourse.grading.public_tests import public_test_source


def generate_release(course: Course) -> None:
    """Regenerate the release of ``course`` from scratch.

    ``nbgrader generate_assignment`` clears solutions and outputs, but copies every other
    file of the source folder verbatim, hidden tests included: each test file is then
    replaced by its public version. The gradebook is left alone, so a release can be
    rebuilt at any time, even after grading has started.
    """
    if course.release_dir.exists():
        shutil.rmtree(course.release_dir)
    course.nbgrader("generate_assignment", course.assignment, "--force", "--no-db")
    release_tests = course.release_dir / "tests"
    for test_file in sorted(course.source_tests_dir.glob("*.py")):
        public = public_test_source(test_file.read_text(encoding="utf-8"))
        (release_tests / test_file.name).write_text(public, encoding="utf-8")
