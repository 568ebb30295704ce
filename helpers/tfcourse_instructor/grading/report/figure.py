"""``scores.png``: the distribution of the class's points on each question.

A horizontal bar per question, grouped by assignment: the shares of the students graded with
no points, under half, half or more, and full points (red to green); its label gives the mean
as a share of the points possible and the number of students graded on it (a written answer
still pending is not one of them). Within an assignment the
question with the lowest mean comes first, so what the class struggled with is at the top of
each group, in red.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tfcourse_instructor.grading.report.questions import QuestionStats

BANDS = (
    ("no points", "#cf222e"),
    ("under half", "#f0883e"),
    ("half or more", "#a6d96a"),
    ("full points", "#1a7f37"),
)
"""The bands of a question's bar, with their colours, from worst to best."""
_INCHES_PER_QUESTION = 0.3
_INCHES_PER_GROUP = 0.9


def band_shares(stats: QuestionStats) -> tuple[float, float, float, float]:
    """The shares of the students graded on a question in each of :data:`BANDS`."""
    if not stats.scores:
        return (0.0, 0.0, 0.0, 0.0)
    counts = [0, 0, 0, 0]
    for score in stats.scores:
        counts[_band(score / stats.max_score if stats.max_score else 1.0)] += 1
    total = len(stats.scores)
    return (counts[0] / total, counts[1] / total, counts[2] / total, counts[3] / total)


def _band(fraction: float) -> int:
    """The index in :data:`BANDS` of a score that is ``fraction`` of the points possible."""
    if fraction <= 0:
        return 0
    if fraction >= 1:
        return 3
    return 1 if fraction < 0.5 else 2


def draw_scores(stats: Sequence[QuestionStats], path: Path) -> None:
    """Draw the figure of ``stats`` into the PNG file ``path``."""
    groups: dict[str, list[QuestionStats]] = {}
    for question in stats:
        groups.setdefault(question.assignment, []).append(question)
    height = sum(_INCHES_PER_QUESTION * len(g) + _INCHES_PER_GROUP for g in groups.values())
    figure = Figure(figsize=(9, max(2.5, height)), layout="constrained")
    FigureCanvasAgg(figure)
    if not groups:
        figure.text(0.5, 0.5, "no autograded question graded yet", ha="center", va="center")
        figure.savefig(path, dpi=100)
        return
    axes = figure.subplots(
        len(groups), 1, sharex=True, squeeze=False, height_ratios=[len(g) for g in groups.values()]
    )[:, 0]
    for ax, (assignment, questions) in zip(axes, groups.items(), strict=True):
        ordered = sorted(questions, key=lambda q: q.mean_fraction)
        rows = range(len(ordered))
        left = [0.0] * len(ordered)
        for band, (label, colour) in enumerate(BANDS):
            widths = [band_shares(q)[band] for q in ordered]
            ax.barh(rows, widths, left=left, color=colour, label=label, height=0.8)
            left = [start + width for start, width in zip(left, widths, strict=True)]
        labels = [f"{q.question}: mean {q.mean_fraction:.0%}, n={q.students}" for q in ordered]
        ax.set_yticks(rows, labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_title(assignment, loc="left", fontsize=10)
    axes[-1].set_xlabel("share of the students graded")
    axes[0].legend(loc="lower left", bbox_to_anchor=(0, 1.12), ncol=4, fontsize=8, frameon=False)
    figure.savefig(path, dpi=100)
