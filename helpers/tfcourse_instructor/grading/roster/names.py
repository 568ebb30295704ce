"""Students' names in the gradebook, where formgrader reads them.

A roster's entries go in through nbgrader's own ``Gradebook.update_or_create_student``, what
``nbgrader db student import`` calls. A student of the gradebook with neither a first nor a
last name (not on any roster) would show in formgrader as "None, None": they get their id as
last name and :data:`NOT_ON_ROSTER` as first name, which a later roster replaces. A name a
grader typed in formgrader is never overwritten but by a roster that lists the student.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from nbgrader.api import Gradebook

from tfcourse_instructor.grading.roster.reading import Entry

NOT_ON_ROSTER = "(not on the roster)"


def name_students(gradebook_path: Path, roster: Sequence[Entry]) -> int:
    """Write ``roster`` into the gradebook at ``gradebook_path``, then name every student
    still without a name by their id; return how many roster entries were written."""
    with Gradebook(f"sqlite:///{gradebook_path}") as gradebook:
        for entry in roster:
            gradebook.update_or_create_student(entry.student, **entry.fields)
        for student in gradebook.students:
            if student.first_name is None and student.last_name is None:
                gradebook.update_or_create_student(
                    student.id, last_name=student.id, first_name=NOT_ON_ROSTER
                )
    return len(roster)
