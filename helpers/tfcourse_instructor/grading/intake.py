"""Intake: submissions from an LMS download, or already in nbgrader's ``submitted/``.

An LMS (Canvas, Moodle, ...) hands graders one zip of every student's files. nbgrader's
``zip_collect`` unpacks it and files each notebook under ``submitted/<student>/<assignment>/``,
reading the student id from the file name with ``c.FileNameCollectorPlugin.named_regexp`` in
``nbgrader_config.py`` (the kit's expects ``<student>_<anything>_<notebook>.ipynb``, e.g.
Canvas's ``jdoe_12345_67890_01_attention.ipynb``; change it there for another LMS).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from tfcourse_instructor.grading.course import Course


def collect_lms_zip(course: Course, archive: Path) -> None:
    """Unpack ``archive`` into ``submitted/`` with ``nbgrader zip_collect``."""
    folder = course.root / "downloaded" / course.assignment / "archive"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copy(archive, folder / archive.name)
    course.nbgrader("zip_collect", course.assignment, "--force")


def submitted_students(course: Course) -> list[str]:
    """Ids of the students with a submission of the assignment under ``submitted/``."""
    if not course.submitted_dir.is_dir():
        return []
    return sorted(
        folder.parent.name
        for folder in course.submitted_dir.glob(f"*/{course.assignment}")
        if folder.is_dir()
    )


def fingerprint(folder: Path, salt: str = "") -> str:
    """A digest of a submission's notebooks and timestamp (and of ``salt``): it changes
    when, and only when, something that affects the grade changed."""
    digest = hashlib.sha256(salt.encode())
    for path in sorted(folder.glob("*.ipynb")) + sorted(folder.glob("timestamp.txt")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def grading_inputs_digest(course: Course) -> str:
    """A digest of what every grade depends on besides the submission: the source
    notebooks, the test files and the release."""
    digest = hashlib.sha256()
    for folder in (course.source_dir, course.release_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts:
                continue
            digest.update(str(path.relative_to(course.root)).encode() + path.read_bytes())
    return digest.hexdigest()
