"""The student distribution (``make publish``): built from a clean copy of the repository,
installed with pip into a fresh environment, it runs notebook 1's checks offline, and no
graded answer is in it or in the installed package (real pip, real kernel, no mocks). Its
``lab`` extra brings nbgrader, whose Validate button (clicked in JupyterLab in a real browser)
and ``nbgrader validate`` run a notebook with the student's kernel and show a failing check's
report, with no traceback and no warning about a passing one.

The environment is a venv without the system's packages into which pip installs the student
package alone (``--no-deps``, from a wheel pip builds offline). Its kernel reaches torch, otter
and ipykernel through a ``.pth`` line naming the test environment's site-packages: the ``.pth``
files inside that folder are not processed, so the instructor's editable ``tfcourse`` stays
out of sight, and the kernel checks where ``tfcourse`` comes from. The Jupyter server (JupyterLab
and nbgrader's extensions) is the test environment's, at the versions the distribution pins.
"""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import tomllib
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from selenium.webdriver.common.by import By

from tfcourse_instructor.grading.build.answers import Answers
from tfcourse_instructor.grading.build.publish import STUDENT_PACKAGE, AnswersFound, publish
from tfcourse_instructor.grading.schedule import COURSE_FILE
from tfcourse_instructor.grading.selftest.samples import UNSCALED, reference_notebooks

from conftest import (
    PAGE_LOAD,
    REPO,
    Tree,
    check_outputs,
    chromium,
    copy_course,
    jupyter_server,
    needs_chromium,
    run_kit,
    screenshot,
    wait_until,
)

pytestmark = pytest.mark.slow

KERNEL = "student-env"
INSTALL_SECONDS = 90
VALIDATE_SECONDS = 300  # nbgrader runs the whole notebook before it shows anything
WRONG_SDPA = """\
def scaled_dot_product_attention(query, key, value, mask=None):
    weights = torch.softmax(query @ key.transpose(-2, -1), dim=-1)  # not scaled by √d_k
    return weights @ value, weights
"""
PRIVATE_MODULES = ("reference", "grading", "attention", "encoder", "training", "sampling", "sweep")
CHEAT = "from tfcourse.attention import scaled_dot_product_attention as answer"


@pytest.fixture(scope="module")
def clean_copy(tmp_path_factory) -> Tree:
    """The repository's tracked files, as a fresh clone would have them."""
    root = tmp_path_factory.mktemp("clean") / "course"
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    return Tree(root)


@pytest.fixture(scope="module")
def distribution(clean_copy) -> Path:
    """``python -m tfcourse_instructor.grading publish --out student`` run in the clean copy."""
    result = run_kit(clean_copy, "publish", "--out", "student")
    assert result.returncode == 0, result.stderr
    assert "COURSE_REPOSITORY" in result.stderr and "is not set" in result.stderr  # as shipped
    return clean_copy.root / "student"


@pytest.fixture(scope="module")
def student_env(distribution, tmp_path_factory) -> dict[str, object]:
    """A fresh venv holding the student package only, and a kernel running in it."""
    scratch = tmp_path_factory.mktemp("student-env")
    start = time.perf_counter()
    python_env = scratch / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(python_env)], check=True)
    python = python_env / "bin" / "python"
    # pip builds in the folder it installs from: build a copy, as the Colab cell does.
    source = shutil.copytree(distribution, scratch / "source")
    pip = [sys.executable, "-m", "pip", "--quiet"]
    wheels = scratch / "wheels"
    subprocess.run(
        [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)],
        check=True,
    )
    wheel = next(wheels.glob("tfcourse-*.whl"))
    subprocess.run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], check=True)
    seconds = time.perf_counter() - start
    site_packages = next(python_env.glob("lib/python*/site-packages"))
    (site_packages / "kit.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    kernels = scratch / "jupyter" / "kernels" / KERNEL
    kernels.mkdir(parents=True)
    argv = [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec = {"argv": argv, "display_name": KERNEL, "language": "python"}
    (kernels / "kernel.json").write_text(json.dumps(spec))
    return {"site_packages": site_packages, "jupyter": scratch / "jupyter", "seconds": seconds}


def test_the_student_package_installs_offline_in_seconds(student_env):
    assert student_env["seconds"] < INSTALL_SECONDS, student_env["seconds"]
    installed = student_env["site_packages"] / "tfcourse"
    names = sorted(str(p.relative_to(installed)) for p in installed.rglob("*.py"))
    shipped = sorted(str(p.relative_to(STUDENT_PACKAGE)) for p in STUDENT_PACKAGE.rglob("*.py"))
    assert names == shipped


def test_notebook_1_checks_offline_and_the_answer_cannot_be_imported(
    distribution, student_env, clean_copy, tmp_path, monkeypatch
):
    monkeypatch.setenv("JUPYTER_PATH", str(student_env["jupyter"]))
    folder = tmp_path / "work"
    shutil.copytree(distribution / "release" / "01_attention" / "tests", folder / "tests")
    notebook = reference_notebooks(clean_copy["01_attention"])["01_attention"]
    checks = len(check_outputs(notebook))
    probes = [
        "import tfcourse; print(tfcourse.__file__)",
        WRONG_SDPA + 'grader.check("q1_sdpa")',
        CHEAT,
        "import tfcourse_instructor.reference",
        "import tfcourse_instructor.grading",
    ]
    notebook.cells += [nbformat.v4.new_code_cell(source) for source in probes]
    NotebookClient(
        notebook,
        timeout=600,
        kernel_name=KERNEL,
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
    ).execute()

    body, (where, wrong, *imports) = notebook.cells[: -len(probes)], notebook.cells[-len(probes) :]
    errors = [o for cell in body if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in errors if o.output_type == "error"], "notebook 1 raised"
    outputs = check_outputs(nbformat.v4.new_notebook(cells=body))
    assert len(outputs) == checks
    for question, text in outputs.items():
        assert "PASSED" in text and "FAILED" not in text, (question, text)
    assert where.outputs[0]["text"].startswith(str(student_env["site_packages"]))
    wrong_report = wrong.outputs[-1]["data"]["text/plain"]
    assert "FAILED" in wrong_report and "q1_sdpa" in wrong_report, wrong_report
    for cell in imports:
        (error,) = cell.outputs
        assert error.output_type == "error" and error.ename == "ModuleNotFoundError", cell.source


def student_notebook(distribution: Path, clean_copy: Tree, folder: Path, bug: bool) -> Path:
    """Notebook 1 solved (with attention scores not divided by √d_k if ``bug``), run with the
    student environment's kernel, in ``folder`` beside the distribution's public tests."""
    shutil.copytree(distribution / "release" / "01_attention", folder)
    notebook = reference_notebooks(clean_copy["01_attention"])["01_attention"]
    if bug:
        cell = next(c for c in notebook.cells if UNSCALED.old in c.source)
        cell.source = cell.source.replace(UNSCALED.old, UNSCALED.new)
    notebook.metadata["kernelspec"] = {"name": KERNEL, "display_name": KERNEL, "language": "python"}
    path = folder / "01_attention.ipynb"
    nbformat.write(notebook, path)
    return path


def assert_shows_the_failing_report(shown: str) -> None:
    """What a student must read about notebook 1 with unscaled scores: the check's report
    (expected vs got, the test's line), with nothing from inside the kit."""
    assert "q1_sdpa: 1 / 3 points" in shown, shown
    assert "FAILED  values match softmax" in shown, shown
    assert re.search(r"expected -?[\d.]+, got -?[\d.]+", shown), shown
    assert "(the test: test_values in tests/q1_sdpa.py, line " in shown, shown
    assert "Traceback" not in shown and "checking.py" not in shown, shown


def test_the_laptop_install_brings_validate_and_says_how_to_get_cpu_torch(distribution):
    project = tomllib.loads((distribution / "pyproject.toml").read_text(encoding="utf-8"))
    lab = project["project"]["optional-dependencies"]["lab"]
    assert [spec for spec in lab if spec.startswith("nbgrader")], lab
    pins = (distribution / "requirements.txt").read_text(encoding="utf-8").splitlines()
    assert "nbgrader==0.9.6" in pins and "torch==2.13.0" in pins, pins
    readme = (distribution / "README.md").read_text(encoding="utf-8")
    steps = [
        "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu",
        "pip install -r requirements.txt",
        'pip install ".[lab]"',
    ]
    assert all(step in readme for step in steps), readme
    assert [readme.index(step) for step in steps] == sorted(readme.index(s) for s in steps)
    assert "**Validate**" in readme


@needs_chromium
def test_validate_in_jupyterlab_shows_the_failing_checks_report(
    distribution, student_env, clean_copy, tmp_path, monkeypatch
):
    monkeypatch.setenv("JUPYTER_PATH", str(student_env["jupyter"]))
    student_notebook(distribution, clean_copy, tmp_path / "01_attention", bug=True)
    page = "/lab/tree/01_attention/01_attention.ipynb"
    with jupyter_server(tmp_path, "lab") as (base, token), chromium() as browser:
        browser.get(f"{base}{page}?token={token}")
        button = (By.CSS_SELECTOR, ".validate-button")
        wait_until(lambda: browser.find_elements(*button), PAGE_LOAD, "the Validate button")
        browser.find_element(*button).click()
        dialog = (By.CSS_SELECTOR, ".jp-Dialog")
        wait_until(lambda: browser.find_elements(*dialog), VALIDATE_SECONDS, "the results")
        screenshot(browser, "student-validate")
        shown = browser.find_element(*dialog).get_attribute("textContent")
    assert "Validation Results" in shown and "The following cell failed" in shown, shown
    assert_shows_the_failing_report(shown)


@pytest.mark.parametrize("bug", [False, True], ids=["correct", "buggy"])
def test_command_line_validate_warns_of_nothing(
    distribution, student_env, clean_copy, tmp_path, monkeypatch, bug
):
    monkeypatch.setenv("JUPYTER_PATH", str(student_env["jupyter"]))
    path = student_notebook(distribution, clean_copy, tmp_path / "01_attention", bug)
    done = subprocess.run(
        [sys.executable, "-m", "nbgrader", "validate", path.name],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=VALIDATE_SECONDS,
    )
    printed = done.stdout + done.stderr
    assert "converted to a float" not in printed and "partial credit" not in printed, printed
    if bug:
        assert "VALIDATION FAILED ON 2 CELL(S)" in printed, printed
        assert_shows_the_failing_report(printed)
    else:
        assert "Success! Your notebook passes all the tests." in printed, printed
        assert "Traceback" not in printed, printed


def test_no_graded_answer_reaches_students(repo_course, distribution, student_env):
    answers = Answers.of(repo_course.root)
    # The search has something to find: every question's code, hidden cases, model answers.
    assert len(answers.code) > 100 and len(answers.phrases) > 100
    for folder in (distribution, student_env["site_packages"] / "tfcourse"):
        assert answers.find(folder) == [], folder
    # A public test file runs in a student's environment: it imports no reference (its rule
    # of forbidden shortcuts names them, as text).
    for path in (distribution / "release").rglob("*.py"):
        imported = [
            node.module if isinstance(node, ast.ImportFrom) else alias.name
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, (ast.Import, ast.ImportFrom))
            for alias in node.names
        ]
        private = ["tfcourse_instructor", *(f"tfcourse.{name}" for name in PRIVATE_MODULES)]
        within = [m for m in imported for p in private if m and (m == p or m.startswith(f"{p}."))]
        assert not within, path.name
    package = distribution / "helpers" / "tfcourse"
    assert not (package / "reference").exists() and not (package / "grading").exists()
    # The model notebook 3 gives comes with notebook 3, not with the package.
    assert (distribution / "release" / "03_language_models" / "language_model.py").is_file()
    assert not (package / "language_model.py").exists()
    assert not (distribution / "source").exists() and not (distribution / "authoring").exists()


def test_a_reference_module_in_the_student_package_stops_the_publication(repo_course, tmp_path):
    package = tmp_path / "tfcourse"
    shutil.copytree(STUDENT_PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    reference = REPO / "helpers" / "tfcourse_instructor" / "reference" / "attention.py"
    (package / "reference").mkdir()
    shutil.copy(reference, package / "reference" / "attention.py")
    out = tmp_path / "student"
    with pytest.raises(AnswersFound) as raised:
        publish(repo_course.root, ["01_attention"], out, package)
    assert any(str(leak.path).endswith("reference/attention.py") for leak in raised.value.leaks)
    assert not out.exists()


def test_renamed_answers_hidden_cases_and_model_answers_are_found(repo_course, tmp_path):
    answers = Answers.of(repo_course.root)
    reference = REPO / "helpers" / "tfcourse_instructor" / "reference" / "attention.py"
    reference = reference.read_text()
    renamed = reference.replace("query", "q").replace("weights", "probabilities")
    (tmp_path / "renamed.py").write_text(renamed.replace("scaled_dot_product", "my"))
    shutil.copy(repo_course["01_attention"].tests_dir / "q1_sdpa.py", tmp_path / "q1_sdpa.py")
    source = nbformat.read(repo_course["02_encoder"].source_dir / "02_encoder.ipynb", as_version=4)
    rubric = next(c for c in source.cells if c.cell_type == "markdown" and "Rubric" in c.source)
    (tmp_path / "notes.md").write_text(rubric.source)
    found = {leak.path.name: leak for leak in answers.find(tmp_path)}
    assert set(found) == {"renamed.py", "q1_sdpa.py", "notes.md"}
    assert "hidden case" in found["q1_sdpa.py"].source


def test_publishing_again_keeps_git_and_drops_stale_files(repo_course, tmp_path):
    out = tmp_path / "student"
    publish(repo_course.root, ["01_attention"], out)
    (out / ".git").mkdir()
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (out / "stale.txt").write_text("a file the course no longer has")
    publish(repo_course.root, ["01_attention"], out)
    assert (out / ".git" / "HEAD").is_file() and not (out / "stale.txt").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("not a distribution")
    with pytest.raises(FileExistsError):
        publish(repo_course.root, ["01_attention"], mine)
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_the_distribution_holds_only_the_released_assignments(tmp_path):
    """Assignments 1 and 2 released, the others not yet: students get notebooks 1 and 2
    alone, without the model notebook 3 gives (a complete answer to notebook 2's language
    model), and the search for graded answers still covers every assignment."""
    tree = copy_course(tmp_path / "course")
    schedule = (tree.root / COURSE_FILE).read_text(encoding="utf-8")
    third = schedule.index("[[assignment]]", schedule.index("[[assignment]]", 1) + 1)
    (tree.root / COURSE_FILE).write_text(
        schedule[:third] + schedule[third:].replace("released = true", "released = false"),
        encoding="utf-8",
    )
    assert run_kit(tree, "release").returncode == 0
    result = run_kit(tree, "publish", "--out", "student")
    assert result.returncode == 0, result.stderr
    assert "02_encoder" in result.stdout and "03_language_models" not in result.stdout
    student = tree.root / "student"
    assert sorted(p.name for p in (student / "release").iterdir()) == ["01_attention", "02_encoder"]
    given = tree["03_language_models"].given_modules()
    assert [module.name for module in given] == ["language_model.py"]
    assert "class CausalLM" in given[0].read_text(encoding="utf-8")
    shipped = [path for path in student.rglob("*.py") if path.is_file()]
    assert not [path for path in shipped if path.name == "language_model.py"]
    assert not [path for path in shipped if "class CausalLM" in path.read_text(encoding="utf-8")]
    source = tree["02_encoder"].source_dir / "02_encoder.ipynb"
    assert Answers.of(tree.root).find(source.parent), "unreleased answers are searched for too"
