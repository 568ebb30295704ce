"""The submit check names what a saved notebook still lacks, and passes a finished one."""

import shutil

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_output

from tfcourse.submission import CODE_STUB, check_submission, find_problems, ran_since_saved
from tfcourse_instructor.grading.build.authoring import quick_env

NOTEBOOK = "01_attention"


def source_notebook(course):
    """The source notebook: every answer written, stored outputs from one run in order."""
    return nbformat.read(course.source_dir / f"{NOTEBOOK}.ipynb", as_version=4)


def cell(notebook, grade_id):
    return next(c for c in notebook.cells if c.get("id") == grade_id)


def test_a_finished_notebook_is_ready(repo_course, tmp_path, monkeypatch):
    nbformat.write(source_notebook(repo_course[NOTEBOOK]), tmp_path / f"{NOTEBOOK}.ipynb")
    monkeypatch.chdir(tmp_path)
    report = check_submission(f"{NOTEBOOK}.ipynb")
    assert report.ready, report.report()
    assert "ready to submit" in report.report() and "ready to submit" in report._repr_html_()


def test_the_release_as_received_lists_every_unanswered_cell(repo_course):
    notebook = nbformat.read(repo_course[NOTEBOOK].release_dir / f"{NOTEBOOK}.ipynb", as_version=4)
    solutions = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")]
    problems = find_problems(notebook)
    unanswered = [p for p in problems if "is not answered yet" in p]
    assert len(unanswered) == len(solutions) > 0
    assert any("(`scaled_dot_product_attention`)" in p for p in unanswered)
    assert any('(your answer to "Question 1.1")' in p for p in unanswered)
    not_run = next(p for p in problems if "were not run" in p)
    assert not_run.endswith(" more.") and "..." not in not_run


def test_errors_short_checks_and_disorder_are_named(repo_course):
    notebook = source_notebook(repo_course[NOTEBOOK])
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
        "(`scaled_dot_product_attention`)" in p and "NotImplementedError" in p for p in problems
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


@pytest.mark.parametrize(
    "content", [b'{"cells": [', b'{"not": "a notebook"}'], ids=["not-json", "not-a-notebook"]
)
def test_a_damaged_file_is_explained_not_raised(tmp_path, monkeypatch, content):
    (tmp_path / f"{NOTEBOOK}.ipynb").write_bytes(content)
    monkeypatch.chdir(tmp_path)
    report = check_submission(f"{NOTEBOOK}.ipynb")
    assert not report.ready
    assert "is not a notebook file the grader can read" in report.report()
    assert "Revert Notebook to Checkpoint" in report.report()


def submit_report(client, notebook):
    """Run the submit check cell (the last) in the client's kernel; its text output."""
    client.execute_cell(notebook.cells[-1], len(notebook.cells) - 1)
    return "".join(o.get("data", {}).get("text/plain", "") for o in notebook.cells[-1].outputs)


def test_a_save_older_than_the_run_asks_for_a_save_not_for_answers(repo_course, tmp_path):
    """Restart & Run All without saving: the file still holds a stub that the kernel has just
    run as a passing answer. The report must not call it missing; after a save it is ready."""
    shutil.copytree(repo_course[NOTEBOOK].public_tests_dir, tmp_path / "tests")
    answered = source_notebook(repo_course[NOTEBOOK])
    older = source_notebook(repo_course[NOTEBOOK])
    cell(older, "heads").source = f"def split_heads(x, num_heads):\n    {CODE_STUB}\n"
    path = tmp_path / f"{NOTEBOOK}.ipynb"
    nbformat.write(older, path)
    client = NotebookClient(answered, timeout=300, resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel(env=quick_env()):
        for index, code_cell in enumerate(answered.cells[:-1]):
            client.execute_cell(code_cell, index)
        report = submit_report(client, answered)
        assert "older than what this kernel ran" in report, report
        assert "not answered" not in report
        nbformat.write(answered, path)  # the student saves
        report = submit_report(client, answered)
        assert "ready to submit" in report, report


def test_a_kernel_that_ran_nothing_reports_on_the_saved_file():
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell("x = 1", execution_count=1)]
    assert not ran_since_saved(notebook, ["", "check()"])
    assert not ran_since_saved(notebook, ["", "x = 1", "check()"])
    assert ran_since_saved(notebook, ["", "x = 2", "check()"])
    assert ran_since_saved(notebook, ["", "x = 1", "y = 2", "check()"])
