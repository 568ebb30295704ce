"""nbval re-executes every source notebook and finds its stored outputs (real pytest --nbval),
in the quick mode the notebooks were built in."""

import shutil
import subprocess
import sys

import nbformat
import pytest

from tfcourse_instructor.grading.build.authoring import quick_env

from conftest import REPO

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((REPO / "source").glob("*/*.ipynb"))


def nbval(path):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval", "-p", "no:cacheprovider", "-q", str(path)],
        cwd=path.parent,
        env=quick_env(),  # the mode the stored outputs were made in
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_outputs_are_reproduced(notebook):
    result = nbval(notebook)
    assert result.returncode == 0, result.stdout[-3000:]


def test_nbval_catches_an_output_the_code_does_not_produce(tmp_path):
    folder = tmp_path / "course"
    shutil.copytree(NOTEBOOKS[0].parent, folder)
    path = folder / NOTEBOOKS[0].name
    notebook = nbformat.read(path, as_version=4)
    stream = next(
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "stream"
    )
    stream.text = "an output this code never printed\n"
    nbformat.write(notebook, path)
    result = nbval(path)
    assert result.returncode != 0
    assert "an output this code never printed" in result.stdout
