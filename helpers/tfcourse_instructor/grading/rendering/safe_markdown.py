"""Students' markdown as HTML that can neither run nor pass for the page's own content.

``nbgrader_config.py`` installs :func:`safe_markdown` as the markdown filter of the feedback
pages and of formgrader's pages; the rubrics formgrader shows go through it too
(:mod:`.rubrics`).
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import bleach
from bleach import html5lib_shim
from nbconvert.filters.markdown_mistune import MarkdownWithMath

from tfcourse_instructor.grading.rendering.mathml import (
    MATHML_CSS,
    MATHML_TAGS,
    MathMLRenderer,
    kept_mathml_attribute,
)

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
