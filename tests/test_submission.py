"""The submit check names what a saved notebook still lacks, and passes a finished one."""

import nbformat
from nbformat.v4 import new_output

from tfcourse.submission import check_submission, find_problems

NOTEBOOK = "01_attention"


def source_notebook(course):
    """The source notebook: every answer written, stored outputs from one run in order."""
    return nbformat.read(course.source_dir / f"{NOTEBOOK}.ipynb", as_version=4)


def cell(notebook, grade_id):
    return next(c for c in notebook.cells if c.get("id") == grade_id)


def test_a_finished_notebook_is_ready(repo_course, tmp_path, monkeypatch):
    nbformat.write(source_notebook(repo_course), tmp_path / f"{NOTEBOOK}.ipynb")
    monkeypatch.chdir(tmp_path)
    report = check_submission(f"{NOTEBOOK}.ipynb")
    assert report.ready, report.report()
    assert "ready to submit" in report.report() and "ready to submit" in report._repr_html_()


def test_the_release_as_received_lists_every_unanswered_cell(repo_course):
    notebook = nbformat.read(repo_course.release_dir / f"{NOTEBOOK}.ipynb", as_version=4)
    solutions = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")]
    problems = find_problems(notebook)
    unanswered = [p for p in problems if "is not answered yet" in p]
    assert len(unanswered) == len(solutions) > 0
    assert any("def scaled_dot_product_attention(" in p for p in unanswered)
    assert any("were not run" in p for p in problems)


def test_errors_short_checks_and_disorder_are_named(repo_course):
    notebook = source_notebook(repo_course)
    cell(notebook, "sdpa").outputs = [
        new_output("error", ename="NotImplementedError", evalue="", traceback=[])
    ]
    cell(notebook, "masks").outputs = [
        new_output("error", ename="IndexError", evalue="index 4 is out of bounds", traceback=[])
    ]
    check = cell(notebook, "q1_heads")
    check.outputs[0]["data"]["text/plain"] = "q1_heads: 1 / 3 points\n  FAILED ..."
    setup = cell(notebook, "setup")
    setup.execution_count = 99
    problems = find_problems(notebook)
    assert any(
        "def scaled_dot_product_attention(" in p and "NotImplementedError" in p for p in problems
    )
    assert any("IndexError: index 4 is out of bounds" in p for p in problems)
    assert "Check q1_heads earned 1 / 3 of the public tests." in problems
    assert any("out of order" in p for p in problems)
    assert len(problems) == 4, problems


def test_a_notebook_not_found_says_how_to_save_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    report = check_submission("renamed.ipynb")
    assert not report.ready
    assert "save the notebook under its original name" in report.report()
