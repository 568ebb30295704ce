"""nbval re-executes every source notebook and finds its stored outputs (real pytest --nbval),
in the quick mode the notebooks were built in, with the kit's sanitizer: the digits of a
rounding error depend on the machine."""

import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from tfcourse_instructor.grading.build.authoring import quick_env
from tfcourse_instructor.grading.classroom.reproduce import write_sanitizer

from conftest import REPO

pytestmark = pytest.mark.slow

NOTEBOOKS = sorted((REPO / "source").glob("*/*.ipynb"))


def nbval(path, scratch):
    sanitize = f"--nbval-sanitize-with={write_sanitizer(scratch)}"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval",
            sanitize,
            "-p",
            "no:cacheprovider",
            "-q",
            str(path),
        ],
        cwd=path.parent,
        env=quick_env(),  # the mode the stored outputs were made in
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_source_outputs_are_reproduced(notebook, tmp_path):
    result = nbval(notebook, tmp_path)
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
    result = nbval(path, tmp_path)
    assert result.returncode != 0
    assert "an output this code never printed" in result.stdout


def test_only_the_digits_of_a_rounding_error_may_differ(tmp_path):
    """Notebook 1 prints its attention's largest difference from PyTorch's (a rounding
    error): stored as another rounding error it still compares equal; stored as a real
    difference (1e-2), or with another label, it does not."""
    folder = tmp_path / "course"
    shutil.copytree(NOTEBOOKS[0].parent, folder)
    path = folder / NOTEBOOKS[0].name
    pristine = path.read_text(encoding="utf-8")
    stored = re.search(r"max \|output difference\|  = (\d\.\de[-+]\d\d)", pristine)
    assert stored, "notebook 1 no longer prints its difference from PyTorch's attention"
    for replacement, reproduced in [
        ("3.3e-06", True),
        ("0.0e+00", True),
        ("3.3e-02", False),
        ("7.0e-08 (exact)", False),
    ]:
        path.write_text(pristine.replace(stored.group(0), stored.group(0)[:-7] + replacement))
        result = nbval(path, tmp_path)
        assert (result.returncode == 0) is reproduced, (replacement, result.stdout[-2000:])
