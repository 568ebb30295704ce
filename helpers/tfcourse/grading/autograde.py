"""Autograde submissions with nbgrader, one student at a time, then feedback and grades CSV."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

from nbgrader.api import Gradebook

from tfcourse.grading.course import Course

GRADES_CSV = "grades.csv"


def submitted_students(course: Course) -> list[str]:
    """Ids of the students with a submission of the assignment under ``submitted/``."""
    if not course.submitted_dir.is_dir():
        return []
    return sorted(
        folder.parent.name
        for folder in course.submitted_dir.glob(f"*/{course.assignment}")
        if folder.is_dir()
    )


def record_assignment(course: Course) -> None:
    """Record the source notebooks and their grade cells in the gradebook, which autograde
    reads. nbgrader refuses when the set of notebooks changed after submissions were graded:
    the error then says how to proceed rather than losing grades."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            course.nbgrader(
                "generate_assignment",
                course.assignment,
                "--force",
                f"--CourseDirectory.release_directory={scratch}",
            )
        except RuntimeError as error:
            if "there are submissions associated with it" not in str(error):
                raise
            raise RuntimeError(
                f"{course.gradebook.name} holds grades for a version of {course.assignment!r} "
                "with other notebooks than source/ has now. Export the grades, then move "
                f"{course.gradebook.name} aside to grade the new version."
            ) from None


def forget_students(course: Course, students: Iterable[str]) -> None:
    """Remove ``students`` and all their grades from the gradebook, if they are in it."""
    if not course.gradebook.exists():
        return
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        known = {student.id for student in gradebook.students}
        for student in students:
            if student in known:
                gradebook.remove_student(student)


def prune_feedback(folder: Path) -> None:
    """Keep only the feedback HTML: nbgrader also copies the graded folder's other files,
    among them the hidden test files."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()
        elif path.is_file() and path.suffix != ".html":
            path.unlink()


def autograde_students(course: Course, students: Iterable[str]) -> Path:
    """Autograde and write feedback for each student, then export the grades CSV.

    Each student is a separate nbgrader run, so one student's run cannot stop another's.
    Returns the path of the grades CSV.
    """
    record_assignment(course)
    for student in students:
        course.nbgrader("autograde", course.assignment, f"--student={student}", "--force")
        course.nbgrader("generate_feedback", course.assignment, f"--student={student}", "--force")
        prune_feedback(course.root / "feedback" / student / course.assignment)
    csv_path = course.root / GRADES_CSV
    course.nbgrader("export", f"--to={csv_path}")
    return csv_path
