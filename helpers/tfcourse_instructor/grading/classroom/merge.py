"""Write the grades of submissions graded in scratch courses into the class gradebook.

The coordinator alone writes the class gradebook (SQLite, one writer), however many
submissions were graded in parallel or elsewhere: what nbgrader's ``autograde`` would record
with sanitising and execution switched off, only ``SaveAutoGrades`` and late penalties
(:class:`PenaltyPerDay`) running, which score each test cell from its output exactly as a
normal autograde would (:mod:`.autogrades` writes it, a batch per transaction).
``autograded/`` then holds the executed notebooks, which formgrader shows for manual grading.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from datetime import UTC

from nbgrader.api import Gradebook
from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

from tfcourse_instructor.grading.classroom.autogrades import TIMESTAMP, Executed, save_autogrades
from tfcourse_instructor.grading.course import Course, NbgraderRun
from tfcourse_instructor.grading.schedule import SECONDS_PER_DAY, read_schedule
from tfcourse_instructor.grading.submission.workspace import GradedSubmission

EXCHANGE_FILES = (TIMESTAMP, "submission_secret.txt")
"""What nbgrader's exchange stores beside a collected submission: its time, and the secret by
which the student's *Fetch Feedback* finds the feedback released to them. ``autograded/`` and
``feedback/`` keep both, so formgrader's *Release Feedback* works after the kit graded."""


class PenaltyPerDay(LateSubmissionPlugin):
    """nbgrader's late penalty as the kit sets it (``nbgrader_config.py``): a notebook handed
    in after its assignment's due date loses :attr:`per_day` of the points it earned for
    each day, or part of a day, it is late, down to 0."""

    per_day = Float(0.1, help="share of the points earned lost per day late").tag(config=True)

    def late_submission_penalty(
        self, student_id: str, score: float, total_seconds_late: float
    ) -> float:
        days = math.ceil(total_seconds_late / SECONDS_PER_DAY)
        return min(score, score * self.per_day * days)


def record_assignment(course: Course, run: NbgraderRun = Course.nbgrader) -> None:
    """Record the source notebooks and their grade cells in the gradebook, which autograde
    reads, and the assignment's due date from the course file; ``run`` runs nbgrader.
    nbgrader refuses when the set of notebooks changed after submissions were graded: the
    error then says how to proceed rather than losing grades."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            run(
                course,
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
    due = next(a.due for a in read_schedule(course.root) if a.name == course.assignment)
    if due is not None:  # nbgrader keeps times as naive UTC
        due = due.astimezone(UTC).replace(tzinfo=None)
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        gradebook.update_or_create_assignment(course.assignment, duedate=due)


def merge_grades(course: Course, graded: Sequence[GradedSubmission]) -> None:
    """Save the scores of ``graded`` in the class gradebook (submissions that could not be
    graded are left out), in one transaction; raise, after saving the others, if any could
    not be saved."""
    executed = [
        Executed(
            submission.student,
            submission.autograded,
            tuple(
                path
                for name in EXCHANGE_FILES
                if (
                    path := course.submitted_dir / submission.student / course.assignment / name
                ).is_file()
            ),
        )
        for submission in graded
        if submission.autograded is not None
    ]
    if failures := save_autogrades(course, executed):
        raise RuntimeError("could not save in the gradebook: " + "; ".join(failures))
