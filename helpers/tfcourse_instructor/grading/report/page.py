"""``index.html``: the class report as one static page, for a browser.

Per assignment, the students graded and the mean score of those graded in full, how many have
written answers still pending (left out of the mean, never counted as 0), then a row per
question in notebook order: points, students graded on it, mean (its cell coloured from red,
none of the points on average, to green, all of them), standard deviation, shares at full
points and at none, students a limit stopped, written answers pending, and the test cases
failed with how many students failed each. The
figure (:mod:`.figure`) comes first. Every text is escaped and the page has no script: case
labels come from notebooks that were a student's files.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from tfcourse_instructor.grading.report.grades import ClassGrades
from tfcourse_instructor.grading.report.questions import QuestionStats

_STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 70em; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: right; vertical-align: top; }
td.text, th.text { text-align: left; }
ul { margin: 0; padding-left: 1.2em; }
img { max-width: 100%; }
"""
_NUMBER_COLUMNS = (
    *("points", "students", "mean", "std", "full points", "no points", "not checked"),
    "pending",
)


def write_page(
    grades: ClassGrades, stats: Sequence[QuestionStats], path: Path, figure: str
) -> None:
    """The report of ``grades`` and ``stats`` as the page ``path``, showing the image file
    ``figure`` (a name beside it)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Class report</title>',
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Class report</h1>",
        f"<p>{len(grades.scores)} students; points per question, before late "
        "penalties. Scores per student and assignment (after late penalties): "
        "<code>grades.csv</code>.</p>",
        f'<img src="{html.escape(figure)}" alt="the distribution of points per question">',
    ]
    for assignment in grades.assignments:
        questions = [q for q in stats if q.assignment == assignment]
        parts.append(_assignment_section(grades, assignment, questions))
    parts.append("</body></html>")
    path.write_text("\n".join(parts) + "\n", encoding="utf-8")


def _assignment_section(
    grades: ClassGrades, assignment: str, questions: Sequence[QuestionStats]
) -> str:
    graded = sum(1 for own in grades.scores.values() if assignment in own)
    final = grades.final(assignment)
    mean = f"mean {sum(final) / len(final):.3g}" if final else "no mean yet"
    waiting = graded - len(final)
    header = "".join(f"<th>{title}</th>" for title in _NUMBER_COLUMNS)
    header = f'<th class="text">question</th>{header}<th class="text">failed cases</th>'
    rows = "\n".join(_question_row(q) for q in questions)
    return (
        f"<h2>{html.escape(assignment)}</h2>\n"
        f"<p>{graded} students graded; {mean} of {grades.max_scores[assignment]:g} points "
        f"over the {len(final)} graded in full; {waiting} with written answers still to grade "
        "by hand (pending: not in the mean).</p>\n"
        f"<table><tr>{header}</tr>\n{rows}</table>"
    )


def _question_row(q: QuestionStats) -> str:
    name = f"{q.question} (written)" if q.written else q.question
    cases = "".join(
        f"<li>{html.escape(label)}: {count} of {q.students}</li>" for label, count in q.failed_cases
    )
    hue = round(120 * min(1.0, max(0.0, q.mean_fraction)))  # red (0) to green (120)
    cells = [
        f'<td class="text">{html.escape(name)}</td>',
        f"<td>{q.max_score:g}</td>",
        f"<td>{q.students}</td>",
        f'<td style="background: hsl({hue}, 70%, 80%)">{q.mean:.3g}</td>',
        f"<td>{q.std:.3g}</td>",
        f"<td>{q.full:.0%}</td>",
        f"<td>{q.zero:.0%}</td>",
        f"<td>{q.unchecked}</td>",
        f"<td>{q.pending}</td>",
        f'<td class="text"><ul>{cases}</ul></td>' if cases else '<td class="text"></td>',
    ]
    return f"<tr>{''.join(cells)}</tr>"
