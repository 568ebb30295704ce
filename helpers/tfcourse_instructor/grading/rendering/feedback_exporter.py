"""The exporter of the feedback pages: nbconvert's ``HTMLExporter`` without its second pass.

``HTMLExporter`` parses every page it has written again with BeautifulSoup, to give images
without alternative text nbconvert's placeholder and to make JupyterLab's cells tab stops, and
writes the page out anew: for a class's feedback that pass is about 60% of the rendering time.
On the kit's pages it has nothing to do. They use the classic template, which has no
JupyterLab cell, and every image on them is an output the kit shows back, which carries its
alternative text (:mod:`tfcourse_instructor.grading.submission.shown_outputs`). So
:class:`FeedbackExporter` renders the template exactly as ``HTMLExporter`` does and skips the
pass; ``nbgrader_config.py`` makes it ``generate_feedback``'s exporter. It reads
``HTMLExporter``'s settings (a subclass's configuration includes its parents').
"""

from __future__ import annotations

from typing import Any

from nbconvert.exporters import HTMLExporter, TemplateExporter
from nbconvert.filters.highlight import Highlight2HTML
from nbconvert.filters.widgetsdatatypefilter import WidgetsDataTypeFilter
from nbformat import NotebookNode


class FeedbackExporter(HTMLExporter):
    """``HTMLExporter`` whose pages are the template's output, not parsed and written again."""

    def from_notebook_node(  # type: ignore[override]
        self, nb: NotebookNode, resources: dict[str, Any] | None = None, **kw: Any
    ) -> tuple[str, dict[str, Any]]:
        """The page of ``nb``, with the filters ``HTMLExporter`` registers for it."""
        language = nb.metadata.get("language_info", {})
        lexer = language.get("pygments_lexer", language.get("name"))
        highlight_code = self.filters.get(
            "highlight_code", Highlight2HTML(pygments_lexer=lexer, parent=self)
        )
        resources = self._init_resources(resources)
        filter_data_type = WidgetsDataTypeFilter(
            notebook_metadata=self._nb_metadata, parent=self, resources=resources
        )
        self.register_filter("highlight_code", highlight_code)
        self.register_filter("filter_data_type", filter_data_type)
        return TemplateExporter.from_notebook_node(self, nb, resources, **kw)
