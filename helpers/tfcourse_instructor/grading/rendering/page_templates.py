"""The kit's nbconvert templates, searched before nbgrader's.

nbgrader's feedback and formgrade templates call nbconvert's ``mathjax()`` macro, which loads
MathJax from a CDN. The kit's ``base/mathjax.html.j2`` replaces it: the pages carry their math
as MathML (:mod:`.mathml`) and load nothing. ``nbgrader_config.py`` sets
``HTMLExporter.extra_template_basedirs`` to :data:`TEMPLATE_BASEDIRS`, for ``generate_feedback``
and formgrader alike; nbgrader's own folder must stay listed, since either adds it only when
the setting is left alone.

Formgrader and ``generate_feedback`` both render with nbconvert's ``HTMLExporter``, under the
template names ``formgrade`` and ``feedback``. ``HTMLExporter.template_file`` set to
:data:`PAGE_TEMPLATE` makes each start from the kit's file of that name in its template's
folder, which extends nbgrader's ``index.html.j2``: ``formgrade/kit_page.html.j2`` adds what
graders alone may read (each written answer's rubric, :mod:`.rubrics`; each test cell's failed
hidden cases, :mod:`.hidden_failures`), and
``feedback/kit_page.html.j2`` adds nothing.
"""

from __future__ import annotations

from pathlib import Path

import nbgrader

PAGE_TEMPLATE = "kit_page.html.j2"
"""The file each of the kit's templates starts from."""
_FORMGRADER = Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader"
TEMPLATE_BASEDIRS = [
    str(Path(__file__).resolve().parent / "templates"),
    str(_FORMGRADER / "templates"),
]
"""Where nbconvert looks for the templates of the kit's pages, first folder first."""
