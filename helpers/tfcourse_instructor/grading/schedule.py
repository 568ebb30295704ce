"""The course's assignments, one per notebook: which are released, and when each is due.

``course.toml`` at the course root lists them in teaching order::

    [[assignment]]
    name = "01_attention"        # source/01_attention/01_attention.ipynb, its tests beside
    released = true              # in the student distribution, graded by default
    due = 2027-01-25T23:59:00Z   # late penalties count from here (a zone is required)

An assignment not yet released is built, tested and graded on request like the others, but
``publish`` leaves it out of the student distribution and ``grade`` grades it only when named.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tfcourse_instructor.grading.course import Course

COURSE_FILE = "course.toml"
SECONDS_PER_DAY = 24 * 3600
_NAME = re.compile(r"[0-9]{2}_[a-z0-9_]+")


@dataclass(frozen=True)
class Assignment:
    """One nbgrader assignment of the course: a notebook, its tests and its dates."""

    name: str
    released: bool = False
    due: datetime | None = None


class ScheduleError(ValueError):
    """``course.toml`` is missing or says something the kit cannot use."""


def read_schedule(root: Path) -> list[Assignment]:
    """The assignments ``course.toml`` at ``root`` lists, in its order."""
    path = root / COURSE_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ScheduleError(f"{path}: {error}") from None
    assignments = []
    for entry in data.get("assignment", []):
        name, due = entry.get("name", ""), entry.get("due")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ScheduleError(f"{path}: {name!r} is not an assignment name such as 01_attention")
        if due is not None and not (isinstance(due, datetime) and due.tzinfo):
            raise ScheduleError(f"{path}: {name}'s due date needs a time zone, e.g. ...T23:59:00Z")
        assignments.append(Assignment(name, bool(entry.get("released", False)), due))
    names = [a.name for a in assignments]
    if not names or len(set(names)) != len(names):
        raise ScheduleError(f"{path}: list each assignment once, as [[assignment]] tables")
    return assignments


def assignment_names(root: Path, released_only: bool = False) -> list[str]:
    """Names of the course's assignments (only those released, with ``released_only``)."""
    return [a.name for a in read_schedule(root) if a.released or not released_only]


def courses(root: Path, released_only: bool = False) -> list[Course]:
    """A :class:`Course` per assignment (per released one, with ``released_only``)."""
    return [Course(root, name) for name in assignment_names(root, released_only)]


def select(root: Path, names: list[str] | None, released_only: bool = False) -> list[str]:
    """``names``, checked against the course file, or by default every assignment (every
    released one, with ``released_only``)."""
    known = assignment_names(root)
    unknown = [name for name in names or [] if name not in known]
    if unknown:
        raise ScheduleError(
            f"not in {COURSE_FILE}: {', '.join(unknown)} (it lists {', '.join(known)})"
        )
    return list(names) if names else assignment_names(root, released_only)
