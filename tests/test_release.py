"""The release is current and holds no solution, hidden test or rubric (real nbgrader run)."""

import re

import nbformat
import pytest
from otter.test_files.exception_test import ExceptionTestFile

from conftest import REPO

pytestmark = pytest.mark.slow

MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "hidden=True", "Rubric", "Model answer")


def release_files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def substantial_lines(text):
    return {line.strip() for line in text.splitlines() if len(line.strip()) > 12}


def solution_lines(course):
    """Every substantial line written between solution delimiters in the source notebooks,
    except idioms students are shown anyway (e.g. ``loss.backward()``): lines that also stand
    outside every solution region. A public test file must not show a solution line."""
    lines, given = set(), set()
    for name in course.notebook_names():
        notebook = nbformat.read(course.source_dir / f"{name}.ipynb", as_version=4)
        for cell in notebook.cells:
            pattern = r"### BEGIN SOLUTION(.*?)### END SOLUTION"
            for region in re.findall(pattern, cell.source, re.S):
                lines |= substantial_lines(region)
            given |= substantial_lines(re.sub(pattern, "", cell.source, flags=re.S))
    return lines - given


def test_committed_release_is_current(released_course):
    fresh = release_files(released_course.release_dir)
    committed = release_files(REPO / "release" / "transformers")
    assert sorted(fresh) == sorted(committed), "release/ lists other files: run `make release`"
    stale = [str(path) for path in fresh if fresh[path] != committed[path]]
    assert not stale, f"release/ is stale, run `make release`: {stale}"


def test_committed_public_tests_are_current(released_course):
    fresh = release_files(released_course.public_tests_dir)
    committed = release_files(REPO / "source" / "transformers" / "tests")
    assert fresh == committed, "source/transformers/tests is stale: run `make release`"


@pytest.mark.parametrize("root", ["fresh", "committed", "source tests"])
def test_release_leaks_nothing(released_course, root):
    folder = {
        "fresh": released_course.release_dir,
        "committed": REPO / "release" / "transformers",
        # nbgrader copies source/ into every folder it writes: its tests must be public ones.
        "source tests": REPO / "source" / "transformers" / "tests",
    }[root]
    secrets = solution_lines(released_course)
    assert secrets, "no solution lines found to check against"
    hidden = {
        path.name: [c for c in ExceptionTestFile.from_file(str(path)).test_cases if c.hidden]
        for path in released_course.tests_dir.glob("*.py")
    }
    assert any(hidden.values())
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        for marker in MARKERS:
            assert marker not in text, f"{marker!r} in {path.name}"
        for line in secrets:
            assert line not in text, f"solution line {line!r} in {path.name}"
        for case in (case for cases in hidden.values() for case in cases):
            assert case.name not in text, f"hidden test {case.name!r} in {path.name}"
        for case in hidden.get(path.name, []):
            assert f"def {case.body.test_func.__name__}(" not in text, path.name


def test_release_notebooks_have_no_outputs_and_stubs_instead_of_solutions(released_course):
    for name in released_course.notebook_names():
        notebook = nbformat.read(released_course.release_dir / f"{name}.ipynb", as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs for c in code)
        solutions = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert solutions
        for cell in solutions:
            stub = "raise NotImplementedError()" if cell.cell_type == "code" else "YOUR ANSWER HERE"
            assert stub in cell.source, cell.metadata["nbgrader"]["grade_id"]
