"""The kit's nbconvert templates, searched before nbgrader's.

nbgrader's feedback and formgrade templates call nbconvert's ``mathjax()`` macro, which loads
MathJax from a CDN. The kit's ``base/mathjax.html.j2`` replaces it: the pages carry their math
as MathML (:mod:`.mathml`) and load nothing. ``nbgrader_config.py`` sets
``HTMLExporter.extra_template_basedirs`` to :data:`TEMPLATE_BASEDIRS`, for ``generate_feedback``
and formgrader alike; nbgrader's own folder must stay listed, since either adds it only when
the setting is left alone.
"""

from __future__ import annotations

from pathlib import Path

import nbgrader

_FORMGRADER = Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader"
TEMPLATE_BASEDIRS = [
    str(Path(__file__).resolve().parent / "templates"),
    str(_FORMGRADER / "templates"),
]
"""Where nbconvert looks for the templates of the kit's pages, first folder first."""
