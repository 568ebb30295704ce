"""Release notebooks work in Colab: each arrives alone in an empty folder, its set-up cell
installs the helpers from the student distribution (``make publish``) and fetches its tests,
then every public check of the solved notebook passes (real pip, real kernel). The course
folder is left as it was, and an unreachable course gives a message a student can act on.

The kernel stands in for Colab's: it sees the test environment's packages (torch, otter, ...)
but not ``tfcourse``, so the set-up cell must really install it, into a scratch environment,
without touching the test environment's editable install. The course is fetched from a local
folder (``TFCOURSE_REPOSITORY``) instead of the network.

In Colab the cell is a form (its first line is ``# @title``): a student sees its title, not its
code. A notebook built before the instructor set the course's address stops there with one
message saying what to do.
"""

import json
import os
import subprocess
import sys
import sysconfig

import nbformat
import pytest
from nbclient import NotebookClient

from tfcourse.runmode import QUICK_VARIABLE
from tfcourse_instructor.grading.build.cells import (
    REPOSITORY_VARIABLE,
    SETUP_ID,
    SETUP_TITLE,
    colab_setup_cell,
)
from tfcourse_instructor.grading.build.publish import publish
from tfcourse_instructor.grading.selftest.samples import reference_notebooks

from conftest import check_outputs

pytestmark = pytest.mark.slow

KERNEL = "colab-like"
SETUP_LINES = 40  # the set-up cell's length, at most


@pytest.fixture
def colab_kernel(tmp_path, monkeypatch):
    """A kernel (by name) whose Python has the test environment's packages but no tfcourse."""
    python_env = tmp_path / "colab-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(python_env)], check=True)
    site_packages = next(python_env.glob("lib/python*/site-packages"))
    # A .pth line puts a folder on sys.path, but the .pth files inside that folder are not
    # processed: the editable install's .pth (which finds tfcourse) stays out of sight.
    (site_packages / "kit.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    kernel_dir = tmp_path / "jupyter" / "kernels" / KERNEL
    kernel_dir.mkdir(parents=True)
    argv = [str(python_env / "bin" / "python"), "-m", "ipykernel_launcher", "-f"]
    spec = {"argv": [*argv, "{connection_file}"], "display_name": KERNEL, "language": "python"}
    (kernel_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return python_env


@pytest.fixture
def course_folder(repo_course, tmp_path, monkeypatch):
    """The student distribution, as the repository Colab clones holds it."""
    folder = tmp_path / "course"
    publish(repo_course.root, [c.assignment for c in repo_course.courses], folder)
    monkeypatch.setenv(REPOSITORY_VARIABLE, str(folder))
    return folder


def snapshot(folder):
    return {path: path.stat().st_mtime_ns for path in sorted(folder.rglob("*"))}


def test_each_release_notebook_sets_itself_up_and_checks_in_colab(
    repo_course, colab_kernel, course_folder, tmp_path, monkeypatch
):
    monkeypatch.setenv(QUICK_VARIABLE, "1")  # notebooks that train do so at their graded size
    before = snapshot(course_folder)
    given = {c.assignment: [m.name for m in c.given_modules()] for c in repo_course.courses}
    assert given["03_language_models"] == ["language_model.py"]
    solved = {n: nb for c in repo_course.courses for n, nb in reference_notebooks(c).items()}
    for index, (name, notebook) in enumerate(solved.items()):
        folder = tmp_path / "colab" / name
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / f"{name}.ipynb")
        notebook.cells.append(nbformat.v4.new_code_cell("import tfcourse; tfcourse.__file__"))
        NotebookClient(
            notebook,
            timeout=600,
            kernel_name=KERNEL,
            resources={"metadata": {"path": str(folder)}},
        ).execute()

        setup = next(cell for cell in notebook.cells if cell.get("id") == SETUP_ID)
        printed = "".join(output.get("text", "") for output in setup.outputs)
        fetched = len(check_outputs(notebook)) + len(given[name])
        assert f"Fetched {fetched} files" in printed, printed
        for module in given[name]:  # the notebook imported it: its checks passed below
            assert (folder / module).is_file(), module
        # The first notebook installs the helpers; the others find them installed.
        assert ("installed the course helpers" in printed) == (index == 0), printed
        imported_from = notebook.cells[-1].outputs[0]["data"]["text/plain"]
        assert str(colab_kernel) in imported_from, "tfcourse was not installed by the cell"

        outputs = check_outputs(notebook)
        assert outputs, name
        assert sorted(path.stem for path in (folder / "tests").iterdir()) == sorted(outputs)
        for question, text in outputs.items():
            assert "PASSED" in text and "FAILED" not in text, (question, text)
            assert "hidden tests worth" in text and "[hidden]" not in text, (question, text)
    assert snapshot(course_folder) == before, "the set-up cell changed the course folder"


def setup_cell(course) -> nbformat.NotebookNode:
    """The set-up cell of ``course``'s release notebook."""
    notebook = nbformat.read(course.release_dir / f"{course.assignment}.ipynb", as_version=4)
    return next(cell for cell in notebook.cells if cell.get("id") == SETUP_ID)


def run_setup(source: str, cwd, **env: str) -> subprocess.CompletedProcess[str]:
    """The set-up cell's code run by Python in ``cwd`` with only ``env`` and ``PATH`` set."""
    env = {"PATH": os.environ["PATH"], **env}
    command = [sys.executable, "-c", source]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, env=env)


def test_setup_cell_is_a_short_form_with_a_title(repo_course):
    for course in repo_course.courses:
        lines = setup_cell(course).source.splitlines()
        assert lines[0] == f'# @title {SETUP_TITLE} {{ display-mode: "form" }}', lines[0]
        assert len(lines) <= SETUP_LINES, (course.assignment, len(lines))


def test_setup_cell_does_nothing_in_a_course_checkout(repo_course):
    for course in repo_course.courses:
        name, release = course.assignment, course.release_dir
        before = sorted(release.rglob("*"))
        result = run_setup(setup_cell(course).source, release, **{REPOSITORY_VARIABLE: "/no"})
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), name
        assert sorted(release.rglob("*")) == before


def test_setup_cell_explains_an_unreachable_course(tmp_path):
    setup = colab_setup_cell("01_attention", ["q1_sdpa"], []).source
    missing = tmp_path / "no-such-course.git"
    result = run_setup(setup, tmp_path, **{REPOSITORY_VARIABLE: str(missing)})
    assert result.returncode != 0
    assert f"RuntimeError: Could not download the course from {missing}" in result.stderr
    assert "CalledProcessError" not in result.stderr
    assert "Check that this runtime is online" in result.stderr
    assert REPOSITORY_VARIABLE in result.stderr
    assert sorted(tmp_path.iterdir()) == []


def test_setup_cell_without_the_course_address_asks_for_it(tmp_path):
    setup = colab_setup_cell("01_attention", ["q1_sdpa"], [], repository="").source
    assert "github" not in setup.lower()
    result = run_setup(setup, tmp_path)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: This notebook's course address is not set: ask "), last
    assert f"os.environ['{REPOSITORY_VARIABLE}'] = '<address>'" in last, last
    assert result.stderr.count("Error") == 1, result.stderr  # one message, nothing chained
    assert sorted(tmp_path.iterdir()) == []
