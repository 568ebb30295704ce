"""The cells every source notebook gets from the build, written once here.

- ``colab_setup`` (the first code cell): in Colab, where the notebook arrives alone, it
  fetches the student distribution (``make publish``, pushed to :data:`COURSE_REPOSITORY`),
  installs its helper package and copies this notebook's public test files next to it,
  leaving nothing else behind. In a course checkout or JupyterLab it finds both and does
  nothing, and while nbgrader grades (``NBGRADER_EXECUTION`` set) it never fetches anything.
- ``submit_check`` (the last cell): reports what the saved notebook still lacks
  (:mod:`tfcourse.submission`).

The twins in ``authoring/`` stay free of both; the build inserts them.
"""

from __future__ import annotations

from collections.abc import Sequence

import nbformat

COURSE_REPOSITORY = "https://github.com/transformers-course/transformers-course.git"
"""Where Colab fetches the student distribution from (a git URL): set it to the repository you
push ``make publish``'s folder to. ``TFCOURSE_REPOSITORY`` overrides it, with a git URL or a
local folder holding the distribution."""
PLACEHOLDER_REPOSITORY = "https://github.com/transformers-course/transformers-course.git"
"""The value :data:`COURSE_REPOSITORY` ships with, which points at no real course."""
REPOSITORY_VARIABLE = "TFCOURSE_REPOSITORY"
SETUP_ID = "colab_setup"
SUBMIT_ID = "submit_check"

# Stdlib only: this runs before the helpers are installed. Names are kept inside a function
# so that nothing but the function itself reaches the notebook's globals.
COLAB_SETUP = """\
# Set-up for Google Colab: fetches the course helpers, this notebook's tests and the files it
# gives when they are missing. In a course checkout or JupyterLab it finds them and does nothing.
def _setup_course(questions, given, assignment="{assignment}"):
    import importlib.util, os, pathlib, shutil, subprocess, sys, tempfile

    if os.environ.get("NBGRADER_EXECUTION"):  # being graded: the grader supplies the tests
        return
    tests = [pathlib.Path("tests", f"{{question}}.py") for question in questions]
    files = tests + [pathlib.Path(name) for name in given]
    has_helpers = importlib.util.find_spec("tfcourse") is not None
    if has_helpers and all(file.is_file() for file in files):
        return
    source = os.environ.get("{variable}", "{repository}")
    # Everything is fetched and built in a scratch folder that goes at the end: pip builds
    # in the folder it installs from, and the course folder must stay as it was.
    with tempfile.TemporaryDirectory(prefix="course-") as scratch:
        course = pathlib.Path(scratch, "course")
        if os.path.isdir(source):
            shutil.copytree(source, course, ignore=shutil.ignore_patterns(".git", "build"))
        else:
            clone = subprocess.run(
                ["git", "clone", "--quiet", "--depth=1", source, str(course)],
                capture_output=True, text=True,
            )
            if clone.returncode != 0:
                raise RuntimeError(
                    f"Could not download the course from {{source}}:\\n{{clone.stderr.strip()}}\\n"
                    "Check that this runtime is online (Colab: Runtime > Connect) and run this "
                    "cell again. If it still fails, ask your instructor for the course's address "
                    f"and set it first: import os; os.environ['{variable}'] = '<address>'"
                ) from None
        if not has_helpers:
            pip = subprocess.run(
                [sys.executable, "-m", "pip", "install", "--quiet", str(course)],
                capture_output=True, text=True,
            )
            if pip.returncode != 0:
                raise RuntimeError(
                    f"Could not install the course helpers:\\n{{pip.stderr.strip()[-2000:]}}"
                ) from None
            importlib.invalidate_caches()
        pathlib.Path("tests").mkdir(exist_ok=True)
        for file in files:
            shutil.copy(course / "release" / assignment / file, file)
    installed = "" if has_helpers else " and installed the course helpers"
    print(f"Fetched {{len(files)}} files{{installed}} from {{source}}.")


_setup_course({questions!r}, {given!r})"""

SUBMIT_CHECK = """\
# Checks the notebook as last saved: save it first (Ctrl+S or Cmd+S), then run this cell.
from tfcourse.submission import check_submission

check_submission("{notebook}")"""


def colab_setup_cell(
    assignment: str, questions: Sequence[str], given: Sequence[str]
) -> nbformat.NotebookNode:
    """The set-up cell of a notebook whose checks are ``questions`` (test file names) and
    which comes with the files ``given`` (names beside it in the release)."""
    source = COLAB_SETUP.format(
        assignment=assignment,
        questions=list(questions),
        given=list(given),
        variable=REPOSITORY_VARIABLE,
        repository=COURSE_REPOSITORY,
    )
    return _locked_cell(SETUP_ID, source)


def placeholder_warning() -> str | None:
    """A warning while :data:`COURSE_REPOSITORY` is still the placeholder, else None."""
    if COURSE_REPOSITORY != PLACEHOLDER_REPOSITORY:
        return None
    return (
        f"warning: COURSE_REPOSITORY in helpers/{__name__.replace('.', '/')}.py is still the "
        f"placeholder {PLACEHOLDER_REPOSITORY}: the Colab set-up cell of every notebook will "
        "fail for students. Push the student distribution (make publish) to a public "
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
