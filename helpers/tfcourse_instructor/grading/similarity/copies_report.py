"""The copy report for the grader: a summary line, a CSV and a page per assignment.

Both files hold the two answers of every pair side by side. Answers are students' text:
the page escapes all of it and runs no script, and a CSV field that a spreadsheet would read
as a formula is prefixed with an apostrophe.
"""

from __future__ import annotations

import csv
import html
from collections import defaultdict
from pathlib import Path

import numpy as np
from copydetect.utils import highlight_overlap

from tfcourse_instructor.grading.classroom.scores import spreadsheet_safe
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.similarity.copies import Answer, Match, find_copies

COPIES_DIR = "copies"
"""Where the reports go, at the course root: ``copies/<assignment>.csv`` and ``.html``."""


def report_paths(course: Course) -> tuple[Path, Path]:
    """The CSV and the page of ``course``'s assignment."""
    folder = course.root / COPIES_DIR
    return folder / f"{course.assignment}.csv", folder / f"{course.assignment}.html"


def report_copies(course: Course, students: list[str], threshold: float) -> str:
    """Compare the answers of ``students`` (and the model solution) afresh, write the CSV and
    the page of :func:`report_paths`; return the summary line. If the comparison fails, the
    files of an earlier run are removed and the summary says so: the grades are written by
    then, and a stale report would mislead."""
    paths = report_paths(course)
    try:
        matches = find_copies(course, students, threshold)
    except Exception as error:
        for path in paths:
            path.unlink(missing_ok=True)
        return f"copies: not compared ({type(error).__name__}: {str(error)[:200]})"
    paths[0].parent.mkdir(exist_ok=True)
    write_copies_csv(matches, paths[0])
    write_copies_html(matches, threshold, paths[1])
    return format_copies(matches, threshold, *(path.relative_to(course.root) for path in paths))


def format_copies(
    matches: list[Match], threshold: float, csv_path: Path | str, page: Path | str
) -> str:
    """One summary line: how many pairs of owners share near-identical answers, the pair
    sharing most, and where to read them."""
    if not matches:
        return f"copies: no two answers to a question score {threshold:g} or more"
    by_pair: dict[tuple[str, str], list[Match]] = defaultdict(list)
    for match in matches:
        by_pair[match.first.owner, match.second.owner].append(match)
    (first, second), found = min(
        by_pair.items(), key=lambda item: (-len(item[1]), -item[1][0].score, item[0])
    )
    shared = f"{len(found)} answer{'s' if len(found) > 1 else ''}"
    return (
        f"copies: {len(by_pair)} pair(s) share answers scoring {threshold:g} or more (most: "
        f"{first} ~ {second}, {shared}); evidence to read, not a verdict, side by side in "
        f"{page} and {csv_path}"
    )


def write_copies_csv(matches: list[Match], path: Path) -> None:
    """One row per match: where, who, the score, then the two answers as submitted."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "notebook",
                "question",
                "student",
                "other",
                "score",
                "shared_chars",
                "answer",
                "other_answer",
            ]
        )
        for m in matches:
            writer.writerow(
                map(
                    spreadsheet_safe,
                    [
                        m.notebook,
                        m.question,
                        m.first.owner,
                        m.second.owner,
                        f"{m.score:.3f}",
                        str(m.shared_chars),
                        m.first.text,
                        m.second.text,
                    ],
                )
            )


def write_copies_html(matches: list[Match], threshold: float, path: Path) -> None:
    """A static page: per match, the two answers as compared, side by side, with the text
    they share highlighted."""
    rows = "\n".join(
        f"<h2>{_e(m.notebook)} {_e(m.question)}: {_e(m.first.owner)} ~ {_e(m.second.owner)}, "
        f"score {m.score:.2f} ({m.shared_chars} characters shared)</h2>\n"
        f'<div class="pair">{_highlighted(m.first)}{_highlighted(m.second)}</div>'
        for m in matches
    )
    body = rows or f"<p>No two answers to a question score {threshold:g} or more.</p>"
    path.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>Near-identical answers</title>"
        "<style>.pair{display:flex;gap:1em}pre{flex:1;background:#f6f6f6;padding:.5em;"
        "white-space:pre-wrap;overflow-wrap:anywhere}mark{background:#fcc}</style></head><body>\n"
        f"<h1>Near-identical answers (score {threshold:g} or more)</h1>\n"
        "<p>Answers as compared: names, strings and comments of code count as equal, prose as "
        "its words; text given in the release is left out. Highlighted: what the two share. "
        "Evidence to read, not a verdict.</p>\n"
        f"{body}\n</body></html>\n",
        encoding="utf-8",
    )


def _highlighted(answer: Answer) -> str:
    slices = np.array(answer.spans, dtype=np.int64).T
    text, _ = highlight_overlap(answer.compared, slices, "<mark>", "</mark>", escape_html=True)
    return f"<pre>{text}</pre>"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
