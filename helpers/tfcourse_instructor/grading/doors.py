"""What nbgrader's own autograde does in a course graded by the kit: it stops, untouched.

Plain ``nbgrader autograde`` (the command, or formgrader's *Autograde* button) would run
students' code in the grader's own account, with no sandbox or limits, and check it against
the public test files alone, since the hidden ones are not in ``source/``. The course's
``nbgrader_config.py`` therefore makes :class:`KitGradesOnly` autograde's exporter: nbgrader
builds it before it opens any submission, so the refusal comes before anything is copied,
deleted or scored. The kit's own runs of nbgrader's autograde (in a scratch course, and when
grades are merged into the class gradebook) name nbconvert's exporter explicitly.
"""

from __future__ import annotations

from typing import Any

from nbconvert.exporters import NotebookExporter
from nbgrader.converters.base import NbGraderException

KIT_EXPORTER = "nbconvert.exporters.NotebookExporter"
"""The exporter nbgrader's autograde uses by default, named where the kit runs it."""
USE_THE_KIT = (
    "This course is autograded by its kit, not by plain `nbgrader autograde`: run "
    "`python -m tfcourse_instructor.grading grade` (or `make grade`) in the course folder. "
    "It grades in a sandbox with the hidden tests and writes the grades into this gradebook. "
    "Nothing was changed."
)


class KitGradesOnly(NotebookExporter):
    """An exporter that refuses to be built, with a message naming the kit's command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        parent = kwargs.get("parent")
        if parent is not None:  # nbgrader's apps exit silently, trusting the log to say why
            parent.log.error(USE_THE_KIT)
        raise NbGraderException(USE_THE_KIT)
