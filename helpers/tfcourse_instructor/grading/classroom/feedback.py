"""Feedback HTML per student, kept in step with the gradebook.

A student's feedback shows what the gradebook holds for their submission: every score
(automatic, by hand, extra credit), every comment and any late penalty. A digest of exactly
that is kept with the student's record, so a later run rewrites a student's feedback when a
grader scored or commented something in formgrader, and leaves every other page alone.

The pages render what students wrote, so they render it inert and unable to pass for the
kit's or nbgrader's own content: markdown through :func:`safe_markdown`
(``nbgrader_config.py`` installs it as the markdown filter of the feedback page and of
formgrader), outputs in safe types and sizes only
(:mod:`tfcourse_instructor.grading.submission.shown_outputs`).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import bleach
import nbformat
from bleach import html5lib_shim
from nbconvert.filters.markdown_mistune import MarkdownWithMath
from nbgrader.api import Gradebook, MissingEntry
from tqdm import tqdm

from tfcourse_instructor.grading.classroom.merge import EXCHANGE_FILES
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.rendering.mathml import (
    MATHML_CSS,
    MATHML_TAGS,
    MathMLRenderer,
    kept_mathml_attribute,
)
from tfcourse_instructor.grading.submission.execution import HIDDEN_FAILURES_METADATA

MARKDOWN_TAGS = frozenset(
    {"a", "abbr", "b", "blockquote", "br", "code", "del", "em", "hr", "i", "li", "ol", "p"}
    | {"pre", "span", "strong", "sub", "sup", "ul", "table", "thead", "tbody", "tr", "th"}
    | {"td", "h1", "h2", "h3", "h4", "h5", "h6", "div"}
)
"""Tags a student's markdown keeps; the others are dropped, their text kept."""
LINK_SCHEMES = frozenset({"http", "https", "mailto"})
"""Schemes of the links a student's markdown keeps, besides in-page anchors (``#name``)."""
MATHJAX_STYLING = frozenset(
    {"bbox", "class", "color", "colorbox", "cssId", "enclose", "fcolorbox", "href"}
    | {"mmlToken", "require", "style", "textcolor"}
)
"""MathJax's TeX commands that colour, frame, style, link or load extensions: made inert in
what students wrote (see :func:`safe_markdown`)."""

_MATHJAX_STYLING = re.compile(rf"\\(?=(?:{'|'.join(sorted(MATHJAX_STYLING))})(?![A-Za-z]))")
_INERT_BACKSLASH = "\u29f5"  # REVERSE SOLIDUS OPERATOR: reads as a backslash, is none to TeX
# What a browser ignores in a URL: tabs and newlines anywhere, controls and spaces at the ends.
_URL_IGNORED = re.compile(r"[\t\n\r]|^[\x00-\x20]+|[\x00-\x20]+$")


@functools.lru_cache(maxsize=4096)
def safe_markdown(source: str) -> str:
    """A student's markdown as HTML that can neither run nor pass for the page's own content.

    Kept: the tags rendered markdown needs (:data:`MARKDOWN_TAGS`), with no attributes but
    ``href`` and ``title`` on links and ``title`` on abbreviations. A link keeps its address
    only if the kit itself could have written it: a web address (``http``/``https`` with a
    host), a mail address or an in-page anchor; ``data:``, ``javascript:``, ``vbscript:``,
    ``file:`` and relative paths lose it. No ``class``, ``style``, ``id`` or ``name``: the
    page's CSS (Bootstrap's ``alert``, ``panel``, ``label``; nbgrader's ``score``,
    ``nbgrader_cell``; the kit's check reports, styled inline) would draw a student's text as
    a score box, and ids or anchor names could stand in for the page's own (``toc``,
    ``top``, each grade cell's anchor); so headings carry no anchors and code blocks no
    highlighting classes. No images: the kit's notebooks have none in markdown, a remote one
    would tell its server when the page is opened, and a pasted one (``attachment:``) or one
    embedded as data would need the size checks of
    :mod:`~tfcourse_instructor.grading.submission.shown_outputs` inside HTML; the alternative text
    stands in. Math is MathML with layout attributes only
    (:mod:`tfcourse_instructor.grading.rendering.mathml`). TeX left as text (math-core could
    not convert it) would be typeset by MathJax on a page that loads it (nbgrader's templates
    without the kit's), whose ``\\style``, ``\\bbox``, ``\\colorbox`` and the like
    (:data:`MATHJAX_STYLING`) draw coloured boxes even through its Safe extension: their
    backslash is replaced by a look-alike TeX ignores, in all text as the browser will read it
    (character references resolved, text joined across dropped tags).

    A page renders the same instructions for every student: results are cached.
    """
    renderer = _Renderer(escape=False, exclude_anchor_links=True)
    cleaner = bleach.Cleaner(  # a Cleaner is not thread-safe: one per call, as bleach.clean
        tags=MARKDOWN_TAGS | MATHML_TAGS,
        attributes=_kept_attribute,
        css_sanitizer=MATHML_CSS,
        protocols=LINK_SCHEMES,
        strip=True,
        strip_comments=True,
        filters=[_InertMathJax],
    )
    return cleaner.clean(MarkdownWithMath(renderer=renderer).render(source))


class _Renderer(MathMLRenderer):
    """nbconvert's markdown renderer, math as MathML, with an image's alternative text in its
    place (it would also fail on a pasted image, whose attachment the filter is not given)."""

    def image(self, text: str, url: str, title: str | None = None) -> str:
        return text


def _kept_attribute(tag: str, name: str, value: str) -> bool:
    """Whether ``tag`` keeps attribute ``name`` with ``value`` (see :func:`safe_markdown`)."""
    if tag in MATHML_TAGS:
        return kept_mathml_attribute(tag, name)
    if name == "title":
        return tag in {"a", "abbr"}
    return tag == "a" and name == "href" and _kit_link(value)


def _kit_link(url: str) -> bool:
    """Whether ``url``, as a browser reads it, is a web or mail address or an in-page anchor."""
    url = _URL_IGNORED.sub("", url)
    if url.startswith("#"):
        return True
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    return scheme == "mailto" or (scheme in LINK_SCHEMES and bool(parts.netloc))


class _InertMathJax(html5lib_shim.Filter):
    """The sanitised token stream with :data:`MATHJAX_STYLING` made inert in its text.

    MathJax reads the page's text nodes, where character references are resolved and text
    on either side of a dropped tag is one; so is the text checked here."""

    def __iter__(self) -> Iterator[dict[str, Any]]:
        text: list[str] = []
        for token in super().__iter__():
            if token["type"] in {"Characters", "SpaceCharacters"}:
                text.append(token["data"])
            elif token["type"] == "Entity":
                text.append(html.unescape(f"&{token['name']};"))
            else:
                if text:
                    yield _inert_text(text)
                    text = []
                yield token
        if text:
            yield _inert_text(text)


def _inert_text(parts: list[str]) -> dict[str, Any]:
    """One text token of ``parts`` joined, :data:`MATHJAX_STYLING` made inert (the serializer
    escapes it)."""
    return {"type": "Characters", "data": _MATHJAX_STYLING.sub(_INERT_BACKSLASH, "".join(parts))}


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


def write_feedback(
    course: Course, students: Sequence[str], jobs: int = 1, progress: bool = False
) -> None:
    """Feedback HTML of ``students`` into their :func:`feedback_folder`, by
    ``nbgrader generate_feedback`` over their autograded notebooks: up to ``jobs`` runs at
    once, each on its own share of the students (feedback only reads the gradebook), with a
    progress bar on standard error if ``progress``. Only the HTML and nbgrader's exchange
    files are kept: nbgrader would also copy the autograded folder's other files, the
    student's own among them."""
    runs = max(1, jobs)
    shares = [list(students[start::runs]) for start in range(runs)]
    shares = [share for share in shares if share]
    with (
        tempfile.TemporaryDirectory() as staging,
        ThreadPoolExecutor(max_workers=max(1, len(shares))) as pool,  # the work is subprocesses
        tqdm(
            total=len(students),
            desc="feedback",
            unit="student",
            file=sys.stderr,
            disable=not progress or not students,
        ) as bar,
    ):
        folders = [Path(staging, str(index)) for index in range(len(shares))]
        running = [
            pool.submit(_write_feedback_share, course, share, folder)
            for share, folder in zip(shares, folders, strict=True)
        ]
        while running:
            done, running = wait(running, timeout=PROGRESS_SECONDS)
            for finished in done:
                finished.result()
            # nbgrader writes one student's pages at a time: the pages so far are the count.
            pages = (folder / "feedback" for folder in folders)
            written = sum(1 for feedback in pages for _ in feedback.glob(f"*/{course.assignment}"))
            if written > bar.n:
                bar.update(written - bar.n)


PROGRESS_SECONDS = 1.0
"""How often the progress bar of :func:`write_feedback` counts the pages written."""


def _drop_grader_notes(path: Path) -> None:
    """Remove from the notebook at ``path`` every output's record for graders alone."""
    try:
        notebook = nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return  # nbgrader reports a notebook it cannot read
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            output.get("metadata", {}).pop(HIDDEN_FAILURES_METADATA, None)
    nbformat.write(notebook, path)


def _write_feedback_share(course: Course, students: Sequence[str], staging: Path) -> None:
    """One ``generate_feedback`` run for ``students``, staged in ``staging``, apart from the
    course."""
    autograded, feedback = staging / "autograded", staging / "feedback"
    for student in students:
        shutil.copytree(
            course.autograded_dir / student / course.assignment,
            autograded / student / course.assignment,
            ignore=shutil.ignore_patterns("tests"),
        )
    for path in autograded.glob("*/*/*.ipynb"):
        _drop_grader_notes(path)
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
