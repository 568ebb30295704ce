"""The modules an assignment gives (notebook 3's model) reach the checks from the grader's own
copy, and the kernel from the copy nbgrader puts beside the notebook: a submission that hands
in its own, or writes one beside its notebook while it is graded, changes nothing outside its
kernel (real grading, real sandbox)."""

import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfcourse_instructor.grading.course import GIVEN_FOLDER
from tfcourse_instructor.grading.selftest.samples import reference_notebooks

from conftest import one_notebook_course, run_kit

pytestmark = pytest.mark.slow

NOTEBOOK = "03_language_models"
# What it finds is raised: the summary names the cells that raise (outputs written while
# graded never reach the autograded notebook).
PROBE = f"""
import os, sys
given = next(path for path in sys.path if path.endswith({GIVEN_FOLDER!r}))
try:
    open(os.path.join(given, "language_model.py"), "a").close()
    found = "written"
except OSError:
    found = "read-only"
raise RuntimeError(f"probe: {{found}}, beside {{sorted(os.listdir(os.path.dirname(given)))}}")
"""


def test_a_given_module_a_submission_brings_or_writes_is_never_the_graders(tmp_path):
    course = one_notebook_course(tmp_path / "course", NOTEBOOK)
    (given,) = course.given_modules()
    # Outside the sandbox /tmp is the host's; inside, a private one: the marker appears here
    # only if the grader itself imports the module.
    marker = Path(tempfile.gettempdir()) / f"tfcourse-given-{uuid.uuid4().hex}"
    traced = given.read_text(encoding="utf-8")
    traced += f"\nimport pathlib\n\npathlib.Path({str(marker)!r}).write_text('imported')\n"
    solved = reference_notebooks(course)[NOTEBOOK]

    def submit(student: str, notebook: nbformat.NotebookNode) -> Path:
        folder = course.submitted_dir / student / course.assignment
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / f"{NOTEBOOK}.ipynb")
        return folder

    submit("reference", solved)
    # Hands in a module that cannot even be imported: the kernel must get the grader's copy.
    # At the end it looks around that copy's folder and tries to change it.
    prober = nbformat.from_dict(solved)
    prober.cells.append(nbformat.v4.new_code_cell(PROBE))
    broken = submit("hands-in-module", prober)
    broken.joinpath(given.name).write_text("raise ImportError('handed in')\n", encoding="utf-8")
    # Writes a correct module that also leaves a trace, before anything imports it.
    writer = nbformat.from_dict(solved)
    writes = f"open({given.name!r}, 'w').write({traced!r})"
    writer.cells.insert(0, nbformat.v4.new_code_cell(writes))
    submit("writes-module", writer)

    result = run_kit(course, "grade")

    assert result.returncode == 0, result.stdout + result.stderr
    assert not marker.exists(), "the grader imported a module the submission wrote"
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        notebooks = [
            gradebook.find_submission_notebook(NOTEBOOK, course.assignment, student)
            for student in ("reference", "hands-in-module", "writes-module")
        ]
        scores = [(n.student.id, n.code_score, n.max_code_score) for n in notebooks]
    assert all(score == most > 0 for _, score, most in scores), scores
    listed = result.stdout.split("need attention:\n")[1].splitlines()
    attention = [line for line in listed if line.startswith("  ")]
    assert len(attention) == 1 and attention[0].split()[0] == "hands-in-module", attention
    assert f"probe: read-only, beside [{GIVEN_FOLDER!r}]" in attention[0], attention
