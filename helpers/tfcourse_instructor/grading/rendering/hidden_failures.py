"""The failed hidden cases of a test cell, for formgrader's manual grading page only.

Students' feedback names a failed hidden case and nothing more. A grader answering a regrade
request needs what the case checked: the kit records, in the output it writes in each test
cell, every failed hidden case's name and message
(:data:`~tfcourse_instructor.grading.submission.graded_outputs.HIDDEN_FAILURES_METADATA`), and the
kit's formgrade page shows them below the cell through the ``kit_hidden_failures`` filter.
Under each message goes the case's own source, its inputs with it: the function decorated
``@test_case(name=..., hidden=True)`` in the question's test file of the course
(:attr:`~tfcourse_instructor.grading.course.Course.tests_dir`), found by parsing that file
when the page is rendered, never by running it, and never read from the submission. A name
the file does not hold as a hidden case, or a missing file, adds nothing.

The messages quote what the student's code returned: every text is escaped. Only a test cell's
outputs are read (the kit writes them; a student's own cell shows what it printed), and the
feedback template never calls the filter.
"""

from __future__ import annotations

import functools
import html
from pathlib import Path
from typing import Any

from tfcourse_instructor.grading.build.public_tests import case_lines, case_name, hidden_cases
from tfcourse_instructor.grading.course import Course, find_root
from tfcourse_instructor.grading.rendering.rubrics import page_question
from tfcourse_instructor.grading.submission.graded_outputs import (
    HIDDEN_FAILURES_METADATA,
    MAX_HIDDEN_MESSAGE,
)


def hidden_failures_html(cell: Any, resources: dict[str, Any]) -> str:
    """The failed hidden cases the kit recorded in test cell ``cell`` of the notebook a
    formgrader page shows (``resources``' assignment and notebook), as escaped HTML: a list of
    names with their messages and the cases' sources; empty for any other cell or when none
    failed."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
        return ""
    failed = [
        (str(case.get("name"))[:200], str(case.get("message"))[:MAX_HIDDEN_MESSAGE])
        for output in cell.get("outputs", [])
        if isinstance(cases := output.get("metadata", {}).get(HIDDEN_FAILURES_METADATA), list)
        for case in cases
        if isinstance(case, dict)
    ]
    if not failed:
        return ""
    sources = _case_sources(meta.get("grade_id"), resources)
    items = [_item(name, message, sources.get(name)) for name, message in failed]
    return f"<ul>{''.join(items)}</ul>"


def _case_sources(grade_id: Any, resources: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Hidden case name -> (where it is, its source), from the course's test file of
    question ``grade_id``; empty when there is no such file."""
    if (names := page_question(grade_id, resources)) is None:
        return {}
    assignment, _, question = names
    root = find_root()
    path = Course(root, assignment).tests_dir / f"{question}.py"
    try:
        modified = path.stat().st_mtime_ns
        return _hidden_case_sources(path, path.relative_to(root).as_posix(), modified)
    except (OSError, SyntaxError, ValueError):
        return {}


@functools.lru_cache(maxsize=64)
def _hidden_case_sources(path: Path, shown_as: str, modified: int) -> dict[str, tuple[str, str]]:
    """Hidden case name -> (where it is, its source) in the test file at ``path`` as it was at
    ``modified``."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    found: dict[str, tuple[str, str]] = {}
    for case in hidden_cases(source):
        span = case_lines(case)
        name = case_name(case)
        if name is not None and name not in found:
            text = "\n".join(lines[span.start - 1 : span.stop - 1])
            found[name] = (f"{shown_as}, line {span.start}", text)
    return found


def _item(name: str, message: str, case: tuple[str, str] | None) -> str:
    """One case, escaped; the message and the source wrap rather than scroll."""
    pre = '<pre style="white-space: pre-wrap">{}</pre>'
    item = f"<strong>{html.escape(name)}</strong>{pre.format(html.escape(message))}"
    if case:
        where, source = case
        item += (
            f'<div class="kit-hidden-case">The case ({html.escape(where)}):'
            f"{pre.format(html.escape(source))}</div>"
        )
    return f"<li>{item}</li>"
