"""Math in markdown as MathML Core, written with the page.

nbgrader's feedback and formgrader templates would typeset ``$...$`` in the reader's browser
with MathJax from a CDN: offline, every formula stays raw LaTeX. Instead each formula that
nbconvert's markdown parser finds (``$...$``, ``$$...$$``, ``\\(...\\)``, ``\\[...\\]``,
``\\begin{env}...\\end{env}``) is converted by math-core when the page is written, into MathML
that browsers lay out themselves (Chromium since 109, Firefox, Safari). A formula it cannot
convert keeps its TeX, as nbconvert writes it.

The page is sanitised after rendering, and students write the markdown: the MathML kept is
MathML Core's elements and layout attributes only (:data:`MATHML_TAGS`,
:data:`MATHML_ATTRIBUTES`), a table cell's alignment and padding the only style
(:data:`MATHML_CSS`). Colours, backgrounds, borders, links, classes, ids and sizes are
dropped, so no formula can draw a look-alike of a score box; ``\\boxed``'s ``menclose`` (not
MathML Core) keeps its content without the box.
"""

from __future__ import annotations

from typing import Any

from bleach.css_sanitizer import CSSSanitizer
from math_core import LatexError, LatexToMathML
from nbconvert.filters.markdown_mistune import IPythonRenderer

MATHML_TAGS = frozenset(
    {"math", "semantics", "mrow", "mi", "mo", "mn", "ms", "mtext", "mspace", "mphantom"}
    | {"mfrac", "msqrt", "mroot", "msub", "msup", "msubsup", "munder", "mover", "munderover"}
    | {"mmultiscripts", "mprescripts", "none", "mtable", "mtr", "mtd", "mpadded", "mstyle"}
)
"""MathML Core's presentation elements; others (``menclose``, ``maction``,
``annotation-xml``, ``mglyph``) are dropped, their text kept."""
MATHML_ATTRIBUTES = frozenset(
    {"display", "displaystyle", "scriptlevel", "mathvariant", "form", "stretchy", "symmetric"}
    | {"largeop", "movablelimits", "accent", "accentunder", "fence", "separator", "lspace"}
    | {"rspace", "minsize", "maxsize", "linethickness", "width", "height", "depth", "voffset"}
    | {"columnspan", "rowspan"}
)
"""MathML Core's layout attributes: no ``mathcolor``, ``mathbackground``, ``mathsize``,
``style`` (but see :data:`MATHML_CSS`), ``class``, ``id`` or ``href``."""
MATHML_CSS = CSSSanitizer(
    allowed_css_properties=frozenset({"text-align", "justify-items", "padding-left"})
    | {"padding-right"}
)
"""The style a table cell keeps: how math-core aligns the columns of ``cases``, ``aligned``
and the like."""


def kept_mathml_attribute(tag: str, name: str) -> bool:
    """Whether MathML element ``tag`` keeps attribute ``name`` (``style`` goes through
    :data:`MATHML_CSS`)."""
    return name in MATHML_ATTRIBUTES or (tag == "mtd" and name == "style")


class MathMLRenderer(IPythonRenderer):
    """nbconvert's markdown renderer with every formula as MathML (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._converter = LatexToMathML(fancy_error=False)

    def inline_math(self, body: str) -> str:
        """``$...$`` or ``\\(...\\)``, in the line."""
        return self._mathml(body, display=False) or super().inline_math(body)

    def block_math(self, body: str) -> str:
        """``$$...$$`` or ``\\[...\\]``, displayed."""
        return self._mathml(body, display=True) or super().block_math(body)

    def latex_environment(self, name: str, body: str) -> str:
        """``\\begin{name}...\\end{name}``, displayed."""
        tex = f"\\begin{{{name}}}{body}\\end{{{name}}}"
        return self._mathml(tex, display=True) or super().latex_environment(name, body)

    def _mathml(self, tex: str, display: bool) -> str | None:
        """``tex`` as a ``<math>`` element, or None if math-core cannot convert it."""
        try:
            return self._converter.convert_with_local_state(tex, displaystyle=display)
        except LatexError:
            return None
