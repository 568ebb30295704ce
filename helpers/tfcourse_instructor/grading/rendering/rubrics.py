"""The rubric of a written answer, for formgrader's manual grading page only.

A written question's model answer and rubric are its solution region in the instructor's
``source/`` notebook (between ``### BEGIN SOLUTION`` and ``### END SOLUTION``). The kit's
formgrade page (``templates/formgrade/kit_page.html.j2``) shows it beside the student's
answer through the ``kit_rubric`` filter (``nbgrader_config.py``): the text is read from
``source/`` when the page is rendered, never from the submission, whose cells and metadata a
student wrote. The student's notebook only says which question a cell answers (its grade id,
which nbgrader restores from the source when it autogrades), and a grade id that names no
written question of the source shows no rubric. The text goes through the same sanitiser as
students' markdown. The feedback template never calls the filter: no rubric reaches a student.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import nbformat

from tfcourse_instructor.grading.build.answers import BEGIN, END
from tfcourse_instructor.grading.course import find_root
from tfcourse_instructor.grading.rendering.safe_markdown import safe_markdown

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def page_question(grade_id: Any, resources: dict[str, Any]) -> tuple[str, str, str] | None:
    """(assignment, notebook, grade id) of question ``grade_id`` on the formgrader page
    ``resources`` renders, or None unless all three are plain names: they come from the
    submission and the gradebook, and name files of the course."""
    names = (resources.get("assignment_id"), resources.get("notebook_id"), grade_id)
    if not all(isinstance(name, str) and _NAME.fullmatch(name) for name in names):
        return None
    return names  # type: ignore[return-value]


def rubric_html(grade_id: Any, resources: dict[str, Any]) -> str:
    """The model answer and rubric of written question ``grade_id`` of the notebook a
    formgrader page shows (``resources``' assignment and notebook), as sanitised HTML; empty
    when the source has no written question of that id."""
    if (names := page_question(grade_id, resources)) is None:
        return ""
    assignment, notebook, question = names
    path = find_root() / "source" / assignment / f"{notebook}.ipynb"
    try:
        modified = path.stat().st_mtime_ns
    except OSError:
        return ""
    text = _solution_regions(path, modified).get(question)
    return safe_markdown(text) if text else ""


@functools.lru_cache(maxsize=64)
def _solution_regions(path: Path, modified: int) -> dict[str, str]:
    """grade id -> solution region of every written (markdown, hand-graded) question of the
    source notebook at ``path`` as it was at ``modified``."""
    regions = {}
    for cell in nbformat.read(path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        written = cell.cell_type == "markdown" and meta.get("solution") and meta.get("grade")
        if written and BEGIN in cell.source and END in cell.source:
            regions[meta["grade_id"]] = cell.source.split(BEGIN, 1)[1].split(END, 1)[0]
    return regions
