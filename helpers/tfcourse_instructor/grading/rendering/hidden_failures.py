"""The failed hidden cases of a test cell, for formgrader's manual grading page only.

Students' feedback names a failed hidden case and nothing more. A grader answering a regrade
request needs what the case checked: the kit records, in the output it writes in each test
cell, every failed hidden case's name and message
(:data:`~tfcourse_instructor.grading.submission.execution.HIDDEN_FAILURES_METADATA`), and the
kit's formgrade page shows them below the cell through the ``kit_hidden_failures`` filter. The
messages quote what the student's code returned: every text is escaped. Only a test cell's
outputs are read (the kit writes them; a student's own cell shows what it printed), and the
feedback template never calls the filter.
"""

from __future__ import annotations

import html
from typing import Any

from tfcourse_instructor.grading.submission.execution import (
    HIDDEN_FAILURES_METADATA,
    MAX_HIDDEN_MESSAGE,
)


def hidden_failures_html(cell: Any) -> str:
    """The failed hidden cases the kit recorded in test cell ``cell``, as escaped HTML (a
    list of names with their messages); empty for any other cell or when none failed."""
    meta = cell.get("metadata", {}).get("nbgrader", {})
    if cell.get("cell_type") != "code" or not meta.get("grade") or meta.get("solution"):
        return ""
    items = [
        _item(str(case.get("name"))[:200], str(case.get("message"))[:MAX_HIDDEN_MESSAGE])
        for output in cell.get("outputs", [])
        if isinstance(cases := output.get("metadata", {}).get(HIDDEN_FAILURES_METADATA), list)
        for case in cases
        if isinstance(case, dict)
    ]
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _item(name: str, message: str) -> str:
    """One case, escaped; the message wraps rather than scrolls."""
    pre = f'<pre style="white-space: pre-wrap">{html.escape(message)}</pre>'
    return f"<li><strong>{html.escape(name)}</strong>{pre}</li>"
