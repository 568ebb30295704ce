"""JupyterLab in a real browser: headless Chromium runs a release notebook and sees its checks,
then opens nbgrader's formgrader and sees the assignment and its graded submissions.

Screenshots are kept in ``test-artifacts/`` (the path is printed) for a person to look at.
"""

import shutil
import time

import nbformat
import pytest
from otter.test_files.exception_test import ExceptionTestFile

from tfcourse_instructor.grading.selftest.samples import reference_notebooks

from conftest import PAGE_LOAD as PAGE
from conftest import chromium, jupyter_server, needs_chromium, screenshot, wait_until

pytestmark = [pytest.mark.slow, needs_chromium]

NOTEBOOK = "01_attention"
STUDENT_FOLDER = "student"
RUN_ALL = 180


@pytest.fixture(scope="module")
def lab(graded_samples):
    """A JupyterLab server in the graded course, with a solved release notebook in
    ``student/``; yields its base URL and token."""
    course = graded_samples[0][NOTEBOOK]
    folder = course.root / STUDENT_FOLDER
    shutil.copytree(course.release_dir, folder)
    nbformat.write(reference_notebooks(course)[NOTEBOOK], folder / f"{NOTEBOOK}.ipynb")
    # Lets the test call JupyterLab's commands (run all cells) as the menu does.
    with jupyter_server(course.root, "lab", "--LabApp.expose_app_in_browser=True") as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def page_text(driver, selector):
    """The text of every element matching ``selector``, rendered on screen or not (JupyterLab
    leaves cells outside the viewport unpainted)."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)"
    return driver.execute_script(script, selector)


def public_points(course, question):
    path = course.release_dir / "tests" / f"{question}.py"
    return sum(case.points for case in ExceptionTestFile.from_file(str(path)).test_cases)


def test_jupyterlab_runs_a_release_notebook_and_shows_its_checks(lab, browser, graded_samples):
    course = graded_samples[0][NOTEBOOK]
    base, token = lab
    browser.get(f"{base}/lab/tree/{STUDENT_FOLDER}/{NOTEBOOK}.ipynb?token={token}")
    ready = (
        "const app = window.jupyterapp; const panel = app && app.shell.currentWidget;"
        "return !!(panel && panel.sessionContext && panel.sessionContext.session"
        " && panel.sessionContext.session.kernel"
        " && panel.sessionContext.session.kernel.connectionStatus === 'connected')"
    )
    wait_until(lambda: browser.execute_script(ready), PAGE, "the notebook and its kernel")
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    notebook = reference_notebooks(course)[NOTEBOOK]
    questions = [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        and not cell.metadata["nbgrader"].get("solution")
    ]
    headlines = {}
    for question in questions:
        points = f"{public_points(course, question):g}"
        headlines[question] = f"{question}: {points} / {points} points"

    def all_checks_shown():
        outputs = " ".join(page_text(browser, ".jp-OutputArea-output"))
        return all(headline in outputs for headline in headlines.values())

    try:
        wait_until(all_checks_shown, RUN_ALL, f"the results of {', '.join(questions)}")
    finally:
        browser.execute_script(
            "const out = [...document.querySelectorAll('.jp-OutputArea-output')]"
            ".find(e => e.textContent.includes(arguments[0]));"
            "if (out) out.scrollIntoView({block: 'center'});",
            headlines[questions[0]],
        )
        time.sleep(1)  # let the scrolled cells paint before the screenshot
        screenshot(browser, f"jupyterlab-{NOTEBOOK}")
    outputs = " ".join(page_text(browser, ".jp-OutputArea-output"))
    assert "PASSED" in outputs and "FAILED" not in outputs

    # As a student finishes: save, then run the last cell, which checks the saved file.
    browser.execute_script(
        "const app = window.jupyterapp; const notebook = app.shell.currentWidget.content;"
        "app.commands.execute('docmanager:save').then(() => {"
        "  notebook.activeCellIndex = notebook.widgets.length - 1;"
        "  return app.commands.execute('notebook:run-cell'); })"
    )
    verdict = f"{NOTEBOOK}.ipynb: ready to submit"
    wait_until(
        lambda: verdict in " ".join(page_text(browser, ".jp-OutputArea-output")),
        PAGE,
        "the submit check to pass",
    )


def test_formgrader_lists_every_assignment_and_its_submissions(lab, browser, graded_samples):
    tree, _ = graded_samples
    course = tree[NOTEBOOK]
    base, token = lab
    browser.get(f"{base}/formgrader?token={token}")
    names = [c.assignment for c in tree.courses]
    wait_until(
        lambda: all(name in " ".join(page_text(browser, "table")) for name in names),
        PAGE,
        f"the assignments {names} in formgrader",
    )
    screenshot(browser, "formgrader-assignments")
    students = sorted(p.parent.name for p in course.submitted_dir.glob(f"*/{NOTEBOOK}"))
    browser.get(f"{base}/formgrader/manage_submissions/{course.assignment}")
    wait_until(
        lambda: all(s in " ".join(page_text(browser, "table")) for s in students),
        PAGE,
        f"the submissions of {students}",
    )
    screenshot(browser, "formgrader-submissions")
