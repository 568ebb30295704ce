"""Feedback HTML per student, kept in step with the gradebook.

A student's feedback shows what the gradebook holds for their submission: every score
(automatic, by hand, extra credit), every comment and any late penalty. A digest of exactly
that is kept with the student's record, so a later run rewrites a student's feedback when a
grader scored or commented something in formgrader, and leaves every other page alone.

The pages render what students wrote, so they render it inert: markdown through
:func:`safe_markdown` (``nbgrader_config.py`` installs it as the feedback template's
``markdown2html`` filter), outputs in safe types only
(:mod:`tfcourse_instructor.grading.shown_outputs`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bleach
from nbconvert.filters.markdown_mistune import markdown2html_mistune
from nbgrader.api import Gradebook, MissingEntry

from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.merge import EXCHANGE_FILES

MARKDOWN_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "br", "code", "del", "em", "hr", "i", "img", "li", "ol"}
    | {"p", "pre", "span", "strong", "sub", "sup", "ul", "table", "thead", "tbody", "tr"}
    | {"th", "td", "h1", "h2", "h3", "h4", "h5", "h6", "div"}
)
MARKDOWN_ATTRIBUTES = {"a": ["href", "title"], "img": ["src", "alt", "title"], "*": ["class"]}


def safe_markdown(source: str) -> str:
    """A student's markdown as HTML without scripts, event handlers, styles or frames: the
    tags rendered markdown needs, links to web and mail addresses, images embedded as data."""
    return bleach.clean(
        markdown2html_mistune(source),
        tags=MARKDOWN_TAGS,
        attributes=MARKDOWN_ATTRIBUTES,
        protocols={"http", "https", "mailto", "data"},
        strip=True,
        strip_comments=True,
    )


def feedback_folder(course: Course, student: str) -> Path:
    """Where the feedback pages of ``student`` go: ``feedback/<student>/<assignment>/``."""
    return course.root / "feedback" / student / course.assignment


def gradebook_digests(course: Course, students: Sequence[str]) -> dict[str, str]:
    """Per student with a graded submission, a digest of everything their feedback shows
    from the gradebook (students without one are left out)."""
    digests = {}
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        for student in students:
            try:
                submission = gradebook.find_submission(course.assignment, student)
            except MissingEntry:
                continue
            shown = sorted(
                (
                    notebook.name,
                    notebook.late_submission_penalty,
                    sorted(
                        (g.name, g.auto_score, g.manual_score, g.extra_credit)
                        for g in notebook.grades
                    ),
                    sorted((c.name, c.auto_comment, c.manual_comment) for c in notebook.comments),
                )
                for notebook in submission.notebooks
            )
            digests[student] = hashlib.sha256(json.dumps(shown).encode()).hexdigest()
    return digests


def write_feedback(course: Course, students: Sequence[str], jobs: int = 1) -> None:
    """Feedback HTML of ``students`` into their :func:`feedback_folder`, by
    ``nbgrader generate_feedback`` over their autograded notebooks: up to ``jobs`` runs at
    once, each on its own share of the students (feedback only reads the gradebook). Only
    the HTML and nbgrader's exchange files are kept: nbgrader would also copy the autograded
    folder's other files, the student's own among them."""
    runs = max(1, jobs)
    shares = [list(students[start::runs]) for start in range(runs)]
    with ThreadPoolExecutor(max_workers=len(shares)) as pool:  # the work runs in subprocesses
        for finished in [pool.submit(_write_feedback_share, course, s) for s in shares if s]:
            finished.result()


def _write_feedback_share(course: Course, students: Sequence[str]) -> None:
    """One ``generate_feedback`` run for ``students``, staged apart from the course."""
    with tempfile.TemporaryDirectory() as staging:
        autograded, feedback = Path(staging) / "autograded", Path(staging) / "feedback"
        for student in students:
            shutil.copytree(
                course.autograded_dir / student / course.assignment,
                autograded / student / course.assignment,
                ignore=shutil.ignore_patterns("tests"),
            )
        course.nbgrader(
            "generate_feedback",
            course.assignment,
            "--force",
            f"--CourseDirectory.autograded_directory={autograded}",
            f"--CourseDirectory.feedback_directory={feedback}",
        )
        for student in students:
            folder = feedback_folder(course, student)
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            for page in (feedback / student / course.assignment).glob("*.html"):
                shutil.copy(page, folder / page.name)
            for name in EXCHANGE_FILES:
                kept = course.autograded_dir / student / course.assignment / name
                if kept.is_file():
                    shutil.copy(kept, folder / name)
