"""The release is current and holds no solution, hidden test or rubric (real nbgrader run)."""

import nbformat
import pytest
from otter.test_files.exception_test import ExceptionTestFile

from tfcourse_instructor.grading.schedule import assignment_names

from conftest import REPO, full_test_files, student_facing_leaks

pytestmark = pytest.mark.slow


def release_files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_committed_release_is_current(released_course):
    fresh = release_files(released_course.root / "release")
    committed = release_files(REPO / "release")
    assert sorted(fresh) == sorted(committed), "release/ lists other files: run `make release`"
    stale = [str(path) for path in fresh if fresh[path] != committed[path]]
    assert not stale, f"release/ is stale, run `make release`: {stale}"


@pytest.mark.parametrize("assignment", assignment_names(REPO))
def test_committed_public_tests_are_current(released_course, assignment):
    fresh = release_files(released_course[assignment].public_tests_dir)
    committed = release_files(REPO / "source" / assignment / "tests")
    assert fresh == committed, f"source/{assignment}/tests is stale: run `make release`"


@pytest.mark.parametrize("root", ["fresh", "committed", "source tests"])
def test_release_leaks_nothing(released_course, root):
    folders = {
        "fresh": [released_course.root / "release"],
        "committed": [REPO / "release"],
        # nbgrader copies source/ into every folder it writes: its tests must be public ones.
        "source tests": [REPO / "source" / name / "tests" for name in assignment_names(REPO)],
    }[root]
    for folder in folders:
        assert student_facing_leaks(folder, released_course) == []
    hidden = [
        case.name
        for path in full_test_files(released_course)
        for case in ExceptionTestFile.from_file(str(path)).test_cases
        if case.hidden
    ]
    assert hidden
    for path in (p for folder in folders for p in folder.rglob("*")):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not [name for name in hidden if name in text], path.name


def test_release_notebooks_have_no_outputs_and_stubs_instead_of_solutions(released_course):
    for course in released_course.courses:
        name = course.assignment
        notebook = nbformat.read(course.release_dir / f"{name}.ipynb", as_version=4)
        code = [c for c in notebook.cells if c.cell_type == "code"]
        assert all(not c.outputs for c in code)
        solutions = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")]
        assert solutions
        for cell in solutions:
            stub = "raise NotImplementedError()" if cell.cell_type == "code" else "YOUR ANSWER HERE"
            assert stub in cell.source, cell.metadata["nbgrader"]["grade_id"]
