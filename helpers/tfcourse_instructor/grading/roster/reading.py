"""A roster CSV, read and checked whole before anything is graded or written.

The columns are those of ``nbgrader db student import``: ``id`` (required), ``first_name``,
``last_name``, ``email``, ``lms_user_id``; other columns are ignored, as nbgrader ignores
them. The ids are the LMS's, the same the kit files submissions under
(:data:`~tfcourse_instructor.grading.classroom.intake.STUDENT_ID`). Every problem is reported
with its line, and none of the roster is used if there is one.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

from tfcourse_instructor.grading.classroom.intake import STUDENT_ID

NAME_COLUMNS = ("first_name", "last_name", "email", "lms_user_id")
"""The optional columns taken from a roster, as nbgrader's student table names them."""
MAX_BYTES = 8 * 2**20
MAX_FIELD = 200
"""Characters of a name, e-mail address or LMS id."""
_UNFIT = re.compile(r"[\x00-\x1f\x7f<>]")  # controls, and markup where a name is shown


class RosterError(ValueError):
    """A roster that cannot be imported, with every reason."""


@dataclass(frozen=True)
class Entry:
    """One student of the roster."""

    student: str
    fields: dict[str, str | None]
    """first_name, last_name, email, lms_user_id present in the file (empty: None)."""


def read_roster(path: Path) -> list[Entry]:
    """The students of the roster at ``path``; raises :class:`RosterError` listing every
    problem (unreadable file, no ``id`` column, invalid or repeated ids, unfit names)."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise RosterError(f"{path}: larger than {MAX_BYTES // 2**20} MiB")
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise RosterError(f"{path}: cannot read it ({error.strerror})") from error
    except UnicodeDecodeError as error:
        raise RosterError(f"{path}: not UTF-8 text") from error
    reader = csv.DictReader(io.StringIO(text, newline=""))
    columns = [name.strip() for name in reader.fieldnames or []]
    if "id" not in columns:
        raise RosterError(f"{path}: no 'id' column (columns: id, {', '.join(NAME_COLUMNS)})")
    reader.fieldnames = columns
    kept = [name for name in NAME_COLUMNS if name in columns]
    entries, problems, seen = [], [], set()
    for row in reader:
        line = f"{path}, line {reader.line_num}"
        student = (row.get("id") or "").strip()
        if not STUDENT_ID.fullmatch(student):
            problems.append(f"{line}: {student[:MAX_FIELD]!r} is not a valid student id")
            continue
        if student in seen:
            problems.append(f"{line}: {student} is listed twice")
        seen.add(student)
        fields = {name: (row.get(name) or "").strip() or None for name in kept}
        for name, value in fields.items():
            if value is not None and (len(value) > MAX_FIELD or _UNFIT.search(value)):
                problems.append(
                    f"{line}: {name} of {student} is over {MAX_FIELD} characters or holds "
                    "control characters, '<' or '>'"
                )
        entries.append(Entry(student, fields))
    if problems:
        raise RosterError("\n".join(problems))
    return entries
