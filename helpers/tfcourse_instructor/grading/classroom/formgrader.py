"""The course's formgrader: nbgrader's, with the kit's answer to its *Autograde* button.

The button posts to nbgrader's autograde endpoint, whose handler runs plain ``nbgrader
autograde``. In a course of the kit that stops (:mod:`.doors`), and nbgrader's dialog shows
the log above a red panel with the traceback. This Jupyter server extension answers the
endpoint itself, before nbgrader runs anything, the way nbgrader's handler reports a failure
but with no traceback: ``{"success": false, "log": <the refusal>}``. The dialog then shows
which command grades the class and that nothing was changed, in lines that fit its box, and
nothing else. In a course whose configuration does not stop autograde, nbgrader's handler
answers.

Which handler answers is tornado's documented rule: an application tries the rules that
``add_handlers`` gave it in the order they were added, and the first with a matching route
wins. jupyter_server loads extensions in name order (``nbgrader…`` before
``tfcourse_instructor…``), so a handler added by an extension beside nbgrader's would come
second and never answer. This extension therefore serves the formgrader: it adds its handler,
then loads nbgrader's formgrader. The kit's Jupyter configuration
(``jupyter-config/jupyter_server_config.d/tfcourse_instructor.json``, which the kit's wheel,
or ``make install`` for its editable install, puts in the environment's ``etc/jupyter``, where
nbgrader's package puts its own) enables it
and disables nbgrader's entry point. Where nbgrader's formgrader is enabled anyway it was
loaded first and keeps the button (the exporter still refuses, under nbgrader's traceback):
this extension then adds nothing, and the server's log says why.

The handler is nbgrader's own autograde handler with ``post`` replaced: the same route, base
class (jupyter_server's login and XSRF checks) and decorators.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.utils import url_path_join
from nbgrader.server_extensions import formgrader
from nbgrader.server_extensions.formgrader import apihandlers
from nbgrader.server_extensions.formgrader.base import check_notebook_dir, check_xsrf
from tornado import web

from tfcourse_instructor.grading.classroom.doors import USE_THE_KIT, log_text, refuses_autograde

NBGRADER_FORMGRADER = "nbgrader.server_extensions.formgrader"
"""nbgrader's formgrader extension, which this one loads."""


class KitAutogradeHandler(apihandlers.AutogradeHandler):
    """Formgrader's *Autograde* button: in a course of the kit, the refusal, with nothing run
    and nothing changed."""

    @web.authenticated
    @check_xsrf
    @check_notebook_dir
    def post(self, assignment_id: str, student_id: str) -> None:
        """Answer as nbgrader's handler answers a failed autograde, without a traceback."""
        course = self.coursedir.parent  # nbgrader reads the course's configuration anew too
        course.load_config_file()
        if refuses_autograde(course.config):
            self.write(json.dumps({"success": False, "log": log_text(USE_THE_KIT)}))
        else:
            super().post(assignment_id, student_id)


def _autograde_route() -> str:
    """nbgrader's route of the *Autograde* button, below the server's base URL."""
    return next(
        route
        for route, handler, *_ in apihandlers.default_handlers
        if handler is apihandlers.AutogradeHandler
    )


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Add the kit's handler, then nbgrader's formgrader behind it."""
    if serverapp.jpserver_extensions.get(NBGRADER_FORMGRADER):
        serverapp.log.warning(
            "%s is enabled too, and loaded first: its Autograde button shows nbgrader's "
            "traceback under the kit's refusal. Disable it (`jupyter server extension disable "
            "%s`) to let %s serve formgrader.",
            NBGRADER_FORMGRADER,
            NBGRADER_FORMGRADER,
            __name__,
        )
        return
    webapp = serverapp.web_app
    route = url_path_join(webapp.settings["base_url"], _autograde_route().lstrip("/"))
    webapp.add_handlers(".*$", [(route, KitAutogradeHandler)])
    formgrader.load_jupyter_server_extension(serverapp)
