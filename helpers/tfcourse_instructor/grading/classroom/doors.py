"""What nbgrader's own autograde and zip_collect do in a course graded by the kit: they stop,
untouched.

Plain ``nbgrader autograde`` (the command, or formgrader's *Autograde* button) would run
students' code in the grader's own account, with no sandbox or limits, and check it against
the public test files alone, since the hidden ones are not in ``source/``. The course's
``nbgrader_config.py`` therefore makes :class:`KitGradesOnly` autograde's exporter: nbgrader
builds it before it opens any submission, so the refusal comes before anything is copied,
deleted or scored. The kit's own runs of nbgrader's autograde (in a scratch course, and when
grades are merged into the class gradebook) name nbconvert's exporter explicitly.

Plain ``nbgrader zip_collect`` would file notebooks under ids read from names inside the
download (nested archives included), with no limits; :class:`KitCollectsOnly`, its extractor
in the course's configuration, refuses before anything is unpacked and names the kit's
``grade --zip`` (:mod:`tfcourse_instructor.grading.classroom.intake`).

Formgrader's *Autograde* button is answered by the kit itself
(:mod:`tfcourse_instructor.grading.classroom.formgrader`): the refusal alone, in the lines of
:func:`log_text`, and no traceback. The exporter's refusal stays for the command, and for a
formgrader started without the kit's extension, whose dialog shows the same lines over
nbgrader's traceback.
"""

from __future__ import annotations

import textwrap
from typing import Any

from nbconvert.exporters import NotebookExporter
from nbgrader.converters.base import NbGraderException
from nbgrader.plugins import ExtractorPlugin
from traitlets.config import Config

USE_THE_KIT = (
    "This course is autograded by its kit, not by plain `nbgrader autograde`: run "
    "`python -m tfcourse_instructor.grading grade` (or `make grade`) in the course folder. "
    "It grades in a sandbox with the hidden tests and writes the grades into this gradebook. "
    "Nothing was changed."
)
USE_THE_KIT_INTAKE = (
    "This course collects LMS downloads with its kit, not with plain `nbgrader zip_collect`: "
    "run `python -m tfcourse_instructor.grading grade --zip FILE` (or `make grade ZIP=FILE`) in "
    "the course folder. It files each notebook under the student the download names, within "
    "limits, and refuses what could file it elsewhere. Nothing was changed."
)

LOG_WIDTH = 70
"""Characters per line of a refusal in the log (formgrader's box shows about 80)."""


def log_text(message: str) -> str:
    """``message`` in lines of at most :data:`LOG_WIDTH` characters: formgrader shows a log in
    a box that does not wrap."""
    return "\n".join(textwrap.wrap(message, LOG_WIDTH, break_on_hyphens=False))


def _refuse(message: str, parent: Any) -> NbGraderException:
    if parent is not None:  # nbgrader's apps exit silently, trusting the log to say why
        parent.log.error(log_text(message))
    return NbGraderException(message)


class KitGradesOnly(NotebookExporter):
    """An exporter that refuses to be built, with a message naming the kit's command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _refuse(USE_THE_KIT, kwargs.get("parent"))


def refuses_autograde(config: Config) -> bool:
    """Whether nbgrader configured by ``config`` stops autograde, as a course of the kit's
    ``nbgrader_config.py`` makes it: :class:`KitGradesOnly` is autograde's exporter."""
    exporter = config.get("Autograde", {}).get("exporter_class")
    return exporter is KitGradesOnly or exporter == f"{__name__}.{KitGradesOnly.__name__}"


class KitCollectsOnly(ExtractorPlugin):
    """An extractor that refuses to be built, with a message naming the kit's command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise _refuse(USE_THE_KIT_INTAKE, kwargs.get("parent"))
