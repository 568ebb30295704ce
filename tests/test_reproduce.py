"""`python -m tfcourse_instructor.grading reproduce STUDENT` re-runs a submission with nbval and
names
each cell whose stored output its code does not produce."""

from __future__ import annotations

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from tfcourse_instructor.grading.selftest.samples import reference_notebooks

from conftest import one_notebook_course, run_kit

pytestmark = pytest.mark.slow

NOTEBOOK = "01_attention"
TYPED_IN = "row sums: all ones, trust me\n"


def test_an_output_the_code_does_not_produce_is_reported(tmp_path):
    course = one_notebook_course(tmp_path / "course")
    folder = course.submitted_dir / "edited" / course.assignment
    shutil.copytree(course.release_dir, folder)
    # What a student saves after "restart and run all": the model solutions, executed
    # beside the public tests.
    notebook = reference_notebooks(course)[NOTEBOOK]
    NotebookClient(notebook, timeout=300, resources={"metadata": {"path": str(folder)}}).execute()
    demo = next(c for c in notebook.cells if c.source.startswith("q, k, v = "))
    stream = next(o for o in demo.outputs if o.output_type == "stream")
    stream.text = TYPED_IN  # then edits one output by hand
    nbformat.write(notebook, folder / f"{NOTEBOOK}.ipynb")

    result = run_kit(course, "reproduce", "edited", "--assignment", NOTEBOOK)

    assert result.returncode == 0, result.stderr
    verdicts = [line.split() for line in result.stdout.splitlines() if line.startswith("  cell ")]
    code_cells = sum(c.cell_type == "code" for c in notebook.cells)
    assert len(verdicts) == code_cells
    differing = [words for words in verdicts if words[-1] != "reproduced"]
    assert [words[2] for words in differing] == ["q,"], result.stdout  # the demo cell only
    assert f"+ {TYPED_IN.strip()}" in result.stdout
    assert f"{code_cells - 1} of {code_cells} code cells reproduce" in result.stdout
