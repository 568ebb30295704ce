"""The cells every source notebook gets from the build, written once here.

- ``colab_setup`` (the first code cell, a form titled :data:`SETUP_TITLE` in Colab): in Colab,
  where the notebook arrives alone, it fetches the student distribution (``make publish``,
  pushed to :data:`COURSE_REPOSITORY`), installs its helper package and copies this notebook's
  public test files next to it, leaving nothing else behind. In a course checkout or
  JupyterLab it finds both and does nothing, and while nbgrader grades
  (``NBGRADER_EXECUTION`` set) it never fetches anything. Until :data:`COURSE_REPOSITORY` is
  set, it stops with one message asking for the course's address.
- ``submit_check`` (the last cell): reports what the saved notebook still lacks
  (:mod:`tfcourse.submission`).

The twins in ``authoring/`` stay free of both; the build inserts them.
"""

from __future__ import annotations

from collections.abc import Sequence

import nbformat

COURSE_REPOSITORY = ""
"""Where Colab fetches the student distribution from (a git URL): set it to the repository you
push ``make publish``'s folder to, then rebuild. While it is empty, the set-up cell stops with a
message asking for the address. ``TFCOURSE_REPOSITORY`` overrides it, with a git URL or a local
folder holding the distribution."""
REPOSITORY_VARIABLE = "TFCOURSE_REPOSITORY"
SETUP_ID = "colab_setup"
SUBMIT_ID = "submit_check"
SETUP_TITLE = "Course set-up for Colab: run this cell first"

# Stdlib only: this runs before the helpers are installed. Names are kept inside a function
# so that nothing but the function itself reaches the notebook's globals. Colab shows a cell
# whose first line is "# @title" as a form: the title, with the code folded away.
COLAB_SETUP = """\
# @title {title} {{ display-mode: "form" }}
# In Colab: installs the course helpers and fetches this notebook's checks. Elsewhere (JupyterLab,
# or while the notebook is graded) it finds them in place and does nothing.
def _setup_course(assignment, files, source):
    import importlib.util, os, pathlib, shutil, subprocess, sys, tempfile

    helpers = importlib.util.find_spec("tfcourse") is not None
    if os.environ.get("NBGRADER_EXECUTION") or helpers and all(map(os.path.isfile, files)):
        return
    source = os.environ.get("{variable}", source)
    ask = ("ask your instructor for the course's address, run  import os; "
           "os.environ['{variable}'] = '<address>'  and then this cell again")
    if not source:
        raise RuntimeError(f"This notebook's course address is not set: {{ask}}.")

    def run(command, failed):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"{{failed}}\\n{{done.stderr.strip()[-2000:]}}")

    with tempfile.TemporaryDirectory() as scratch:  # the course folder stays as it was
        course = pathlib.Path(scratch, "course")
        if os.path.isdir(source):
            shutil.copytree(source, course, ignore=shutil.ignore_patterns(".git", "build"))
        else:
            run(["git", "clone", "-q", "--depth=1", source, str(course)],
                f"Could not download the course from {{source}}. Check that this runtime is online "
                f"(Colab: Runtime > Connect) and run this cell again; if it fails again, {{ask}}.")
        if not helpers:
            run([sys.executable, "-m", "pip", "install", "-q", str(course)],
                "Could not install the course helpers:")
            importlib.invalidate_caches()
        pathlib.Path("tests").mkdir(exist_ok=True)
        for file in files:
            shutil.copy(course / "release" / assignment / file, file)
    installed = "" if helpers else " and installed the course helpers"
    print(f"Fetched {{len(files)}} files{{installed}} from {{source}}.")


_setup_course("{assignment}", {files!r}, "{repository}")"""

SUBMIT_CHECK = """\
# Checks the notebook as last saved: save it first (Ctrl+S or Cmd+S), then run this cell.
from tfcourse.submission import check_submission

check_submission("{notebook}")"""


def colab_setup_cell(
    assignment: str,
    questions: Sequence[str],
    given: Sequence[str],
    repository: str = COURSE_REPOSITORY,
) -> nbformat.NotebookNode:
    """The set-up cell of a notebook whose checks are ``questions`` (test file names) and
    which comes with the files ``given`` (names beside it in the release), fetched from
    ``repository`` (empty: the cell asks for the course's address)."""
    files = [f"tests/{question}.py" for question in questions] + list(given)
    source = COLAB_SETUP.format(
        title=SETUP_TITLE,
        assignment=assignment,
        files=files,
        variable=REPOSITORY_VARIABLE,
        repository=repository,
    )
    return _locked_cell(SETUP_ID, source)


def placeholder_warning() -> str | None:
    """A warning while :data:`COURSE_REPOSITORY` is not set, else None."""
    if COURSE_REPOSITORY:
        return None
    return (
        f"warning: COURSE_REPOSITORY in helpers/{__name__.replace('.', '/')}.py is not set: "
        "the Colab set-up cell of every notebook will stop, asking students for the course's "
        "address. Push the student distribution (make publish) to a public "
        "repository, set COURSE_REPOSITORY to its git URL, then rebuild (make notebooks) and "
        "release (make release)."
    )


def submit_check_cell(notebook_file: str) -> nbformat.NotebookNode:
    """The final cell: checks the saved ``notebook_file`` before it is handed in. Its report
    depends on the file on disk, so nbval does not compare its output."""
    cell = _locked_cell(SUBMIT_ID, SUBMIT_CHECK.format(notebook=notebook_file))
    cell.metadata["tags"] = ["nbval-ignore-output"]
    return cell


def add_course_cells(
    notebook: nbformat.NotebookNode, assignment: str, notebook_file: str, given: Sequence[str]
) -> None:
    """Insert the set-up cell before the first code cell of ``notebook`` (which comes with the
    files ``given``); append the submit check."""
    questions = [
        cell.metadata["nbgrader"]["grade_id"] for cell in notebook.cells if _is_test_cell(cell)
    ]
    first_code = next(
        (i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"),
        len(notebook.cells),
    )
    notebook.cells.insert(first_code, colab_setup_cell(assignment, questions, given))
    notebook.cells.append(submit_check_cell(notebook_file))


def _locked_cell(grade_id: str, source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade_id": grade_id, "locked": True}
    return cell


def _is_test_cell(cell: nbformat.NotebookNode) -> bool:
    nbgrader = cell.metadata.get("nbgrader", {})
    return bool(nbgrader.get("grade")) and not nbgrader.get("solution")
