"""Math renders with no network: in a student's feedback page opened from disk, and in the
formgrader page where a grader reads a submission.

Headless Chromium runs with every host name unresolvable and a proxy to nowhere, and records
every request a page makes (its DevTools network log): none may leave the machine. A class
of one (the model solutions of notebook 4, the one with the most math) is graded by the kit;
its feedback page and its formgrader page must show every formula of the notebook's markdown
as MathML that the browser lays out, and no TeX as text. Screenshots are kept in
``test-artifacts/``.
"""

import json
import re
import time
from urllib.parse import urlsplit

import nbformat
import pytest
from bs4 import BeautifulSoup
from nbgrader.api import Gradebook

from tfcourse_instructor.grading.classroom.feedback import feedback_folder
from tfcourse_instructor.grading.rendering.safe_markdown import safe_markdown
from tfcourse_instructor.grading.selftest.samples import reference_notebooks

from conftest import (
    PAGE_LOAD,
    chromium,
    jupyter_server,
    needs_chromium,
    one_notebook_course,
    run_kit,
    screenshot,
    wait_until,
)

pytestmark = [pytest.mark.slow, needs_chromium]

NOTEBOOK = "04_theory"
STUDENT = "reference"
OFFLINE = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",  # nothing listens there; loopback bypasses it
)
LOCAL = frozenset({"127.0.0.1", "localhost"})
TEX = r"\$[^$\n]*\\[A-Za-z]+|\\(mathbb|operatorname|frac|sqrt|begin|tau|top)\b"
"""What TeX left as text looks like: a dollar before a command, or a command the notebook uses."""

# Every formula of the page's markdown cells, whether Chromium lays it out as MathML (a box of
# its own, display "math" or "block math"), and the markdown's text with the formulas left out.
READ_MATH = """
const cells = [...document.querySelectorAll('.text_cell_render')];
const formulas = cells.flatMap(cell => [...cell.querySelectorAll('math')]);
const laidOut = formulas.filter(f => {
    const box = f.getBoundingClientRect();
    return getComputedStyle(f).display.endsWith('math') && box.width > 0 && box.height > 0;
});
const text = cells.map(cell => {
    const copy = cell.cloneNode(true);
    copy.querySelectorAll('math').forEach(f => f.remove());
    return copy.innerText;
}).join('\\n');
return {formulas: formulas.length, laidOut: laidOut.length, text: text};
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The kit's grading of a class of one: the model solutions of notebook 4."""
    course = one_notebook_course(tmp_path_factory.mktemp("math") / "course", NOTEBOOK)
    folder = course.submitted_dir / STUDENT / course.assignment
    folder.mkdir(parents=True)
    nbformat.write(reference_notebooks(course)[NOTEBOOK], folder / f"{NOTEBOOK}.ipynb")
    result = run_kit(course, "grade")
    assert result.returncode == 0, result.stdout + result.stderr
    return course


@pytest.fixture(scope="module")
def browser():
    """Chromium with no network, recording the requests of the pages it opens."""
    log = {"goog:loggingPrefs": {"performance": "ALL"}}
    with chromium(*OFFLINE, capabilities=log) as driver:
        yield driver


def requests_made(driver) -> list[str]:
    """Every URL the pages requested since the last call (DevTools' network log)."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def off_the_machine(urls: list[str]) -> list[str]:
    """The URLs of ``urls`` that go anywhere but this machine or the page itself."""
    return [
        url
        for url in urls
        if not (url.startswith(("file:", "data:", "about:")) or urlsplit(url).hostname in LOCAL)
    ]


def formulas_in_markdown(course) -> int:
    """How many formulas the model solutions' markdown holds, as the kit's markdown filter
    finds them."""
    notebook = reference_notebooks(course)[NOTEBOOK]
    markdown = [cell.source for cell in notebook.cells if cell.cell_type == "markdown"]
    return sum(
        len(BeautifulSoup(safe_markdown(m), "html.parser").find_all("math")) for m in markdown
    )


def assert_math_renders(driver, course, name: str) -> None:
    """The page open in ``driver`` shows its formulas laid out as MathML and no TeX, and
    requested nothing off the machine."""
    wait_until(
        lambda: driver.execute_script("return document.readyState") == "complete",
        PAGE_LOAD,
        f"the {name} page to load",
    )
    shown = driver.execute_script(READ_MATH)
    raw = sorted({match.group(0) for match in re.finditer(TEX, shown["text"])})
    assert raw == [], f"TeX shown as text on the {name} page ({len(raw)} kinds): {raw[:5]}"
    assert shown["formulas"] >= formulas_in_markdown(course) > 100
    assert shown["laidOut"] == shown["formulas"]
    assert off_the_machine(requests_made(driver)) == []


def screenshot_of_math(driver, name: str) -> None:
    """A screenshot of the page around its first displayed formula."""
    driver.execute_script(
        "document.querySelector('math[display=block]').scrollIntoView({block: 'center'})"
    )
    time.sleep(1)  # let the page paint where it scrolled
    screenshot(driver, f"offline-math-{name}")


def test_feedback_page_from_disk_shows_math_offline(graded, browser):
    page = feedback_folder(graded, STUDENT) / f"{NOTEBOOK}.html"
    requests_made(browser)  # forget what came before
    browser.get(page.as_uri())
    assert_math_renders(browser, graded, "feedback")
    screenshot_of_math(browser, "feedback")


def test_formgrader_submission_page_shows_math_offline(graded, browser):
    with Gradebook(f"sqlite:///{graded.gradebook}") as gradebook:
        submission = gradebook.find_submission_notebook(NOTEBOOK, graded.assignment, STUDENT)
        submission_id = submission.id
    with jupyter_server(graded.root, "server") as (base, token):
        requests_made(browser)
        browser.get(f"{base}/formgrader/submissions/{submission_id}/?token={token}")
        assert_math_renders(browser, graded, "formgrader")
        # formgrade.js finished setting up (it waits for MathJax's start-up signal first).
        wait_until(
            lambda: browser.execute_script(
                "return !!(window.formgrader && formgrader.keyboard_manager)"
            ),
            PAGE_LOAD,
            "formgrader's page script to set up its keyboard shortcuts",
        )
        screenshot_of_math(browser, "formgrader")
