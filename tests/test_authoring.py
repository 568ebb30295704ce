"""Source notebooks agree with their text twins, and the build enforces the grading contract."""

import nbformat
import pytest

from tfcourse_instructor.grading.build.authoring import build_notebook, question_points
from tfcourse_instructor.grading.build.cells import SETUP_ID, SUBMIT_ID
from tfcourse_instructor.grading.schedule import assignment_names

from conftest import REPO


def twins():
    return [REPO / "authoring" / name / f"{name}.py" for name in assignment_names(REPO)]


def comparable(notebook):
    return [(c.id, c.cell_type, c.source, dict(c.metadata)) for c in notebook.cells]


@pytest.mark.parametrize("twin", twins(), ids=lambda p: p.stem)
def test_source_notebook_is_built_from_its_twin(twin, repo_course):
    course = repo_course[twin.stem]
    built = build_notebook(twin, course.tests_dir)
    committed = nbformat.read(course.source_dir / f"{twin.stem}.ipynb", as_version=4)
    assert comparable(committed) == comparable(built), (
        f"{twin.name} and its source notebook differ: run `make notebooks`"
    )


@pytest.mark.parametrize("twin", twins(), ids=lambda p: p.stem)
def test_build_adds_the_shared_setup_and_submit_cells_the_twin_leaves_out(twin, repo_course):
    assert SETUP_ID not in twin.read_text() and "check_submission" not in twin.read_text()
    built = build_notebook(twin, repo_course[twin.stem].tests_dir)
    code = [cell for cell in built.cells if cell.cell_type == "code"]
    assert (code[0].id, code[-1].id) == (SETUP_ID, SUBMIT_ID)
    assert [c.id for c in built.cells].count(SETUP_ID) == 1
    for cell in (code[0], code[-1]):
        assert cell.metadata["nbgrader"]["locked"] and not cell.metadata["nbgrader"]["grade"]
    checks = [c.metadata["nbgrader"]["grade_id"] for c in code if "grader.check" in c.source]
    given = [module.name for module in repo_course[twin.stem].given_modules()]
    files = [f"tests/{check}.py" for check in checks] + given
    assert f'_setup_course("{twin.stem}", {files!r}, ' in code[0].source
    assert f'check_submission("{twin.stem}.ipynb")' in code[-1].source


def test_every_test_cell_has_a_test_file_worth_its_points(repo_course):
    for course in repo_course.courses:
        notebook = nbformat.read(course.source_dir / f"{course.assignment}.ipynb", as_version=4)
        for cell in notebook.cells:
            meta = cell.metadata.get("nbgrader", {})
            if meta.get("grade") and not meta.get("solution"):
                test_file = course.tests_dir / f"{meta['grade_id']}.py"
                assert meta["points"] == question_points(test_file) > 0


BAD_TWINS = {
    "test cell with other code": (
        '# %% nbgrader={"grade_id": "q1_sdpa", "grade": true, "locked": true}\n'
        'grader.check("q1_sdpa")\nprint("extra")\n',
        "must contain exactly",
    ),
    "hand-graded cell without points": (
        '# %% [markdown] nbgrader={"grade_id": "q_essay", "grade": true, "solution": true}\n'
        "# Explain.\n",
        "does not state its points",
    ),
}


@pytest.mark.parametrize(("text", "error"), BAD_TWINS.values(), ids=BAD_TWINS.keys())
def test_build_rejects_a_cell_that_breaks_the_grading_contract(tmp_path, repo_course, text, error):
    twin = tmp_path / "99_bad.py"
    twin.write_text(text)
    with pytest.raises(ValueError, match=error):
        build_notebook(twin, repo_course["01_attention"].tests_dir)
