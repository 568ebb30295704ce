"""What graders see in formgrader, and students never get back: a small class of notebook 4
(theory: written answers graded by hand) graded by the kit with a roster, then formgrader's
manual grading page fetched from a running Jupyter server, over HTTP.

Two students hand in the release with their own written answers: ``ada`` is on the roster,
``eve`` is not, writes script into her answers and a fake rubric into her notebook's metadata,
and answers q4_cost with functions that return script. The page must show each written
answer's rubric as ``source/`` holds it, the roster's names, and each failed hidden case with
its message and its source from the course's test files, escaped; the same students' feedback
must hold neither rubric nor hidden messages nor sources; a roster with a problem must stop
the command before anything is graded or imported.

Formgrader's *Autograde* button, over HTTP and clicked in Chromium, must answer with the kit's
refusal alone (no traceback panel) and change nothing; with formgrader's login and XSRF checks,
and nbgrader's own answer in a course that does not stop autograde.
"""

from __future__ import annotations

import ast
import copy
import csv
import html
import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfcourse_instructor.grading.build.public_tests import case_name
from tfcourse_instructor.grading.classroom.doors import LOG_WIDTH, USE_THE_KIT, log_text
from tfcourse_instructor.grading.classroom.feedback import feedback_folder
from tfcourse_instructor.grading.rendering.hidden_failures import hidden_failures_html
from tfcourse_instructor.grading.report.class_report import QUESTIONS_CSV, REPORT_DIR
from tfcourse_instructor.grading.roster.names import NOT_ON_ROSTER
from tfcourse_instructor.grading.submission.graded_outputs import HIDDEN_FAILURES_METADATA

from conftest import (
    PAGE_LOAD,
    chromium,
    hidden_cases,
    jupyter_server,
    needs_chromium,
    one_notebook_course,
    run_kit,
    said,
    screenshot,
    student_facing_leaks,
    tree,
    wait_until,
)

NOTEBOOK = "04_theory"
ROSTER = [("ada", "Ada", "Lovelace", "ada@example.org")]
FAKE_RUBRIC = "FAKE RUBRIC: full points for every answer"
HOSTILE = '<script>alert("eve")</script><img src=x onerror=alert(2)> My answer.'
RETURNED = "<script>alert('returned')</script>"
COST = (  # q4_cost's answer cell, returning script where numbers are expected
    f"def attention_multiplications(T, D, M):\n    return {RETURNED!r}\n\n\n"
    f"def attention_memory(T, D, M):\n    return {RETURNED!r}\n"
)
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def written_questions(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """grade id -> solution region (model answer and rubric) of each written question."""
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell.source.split(BEGIN)[1].split(END)[0]
        for cell in notebook.cells
        if cell.cell_type == "markdown"
        and cell.metadata.get("nbgrader", {}).get("grade")
        and cell.metadata["nbgrader"].get("solution")
    }


def submission(course, student: str) -> nbformat.NotebookNode:
    """The release with a written answer of the student's own in every written cell."""
    notebook = nbformat.read(course.release_dir / f"{NOTEBOOK}.ipynb", as_version=4)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution"):
            own = f"{student} answers {meta['grade_id']} in words of her own."
            cell.source = f"{HOSTILE} {own}" if student == "eve" else own
            if student == "eve":
                cell.metadata["rubric"] = FAKE_RUBRIC
                cell.metadata["nbgrader"]["rubric"] = FAKE_RUBRIC
        if student == "eve" and meta.get("grade_id") == "cost_functions":
            cell.source = COST
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The class graded with a roster, and a Jupyter server (formgrader) in its folder."""
    course = one_notebook_course(tmp_path_factory.mktemp("graders") / "course", NOTEBOOK)
    for student in ("ada", "eve"):
        folder = course.submitted_dir / student / course.assignment
        folder.mkdir(parents=True)
        nbformat.write(submission(course, student), folder / f"{NOTEBOOK}.ipynb")
    roster = course.root.parent / "roster.csv"
    with roster.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "first_name", "last_name", "email"])
        writer.writerows(ROSTER)
    result = run_kit(course, "grade", "--jobs", "2", "--roster", str(roster))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "roster: 1 student(s) named" in result.stdout
    with jupyter_server(course.root, "server") as server:
        yield course, server


def manual_grading_page(course, server, student: str) -> str:
    base, token = server
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        found = gradebook.find_submission_notebook(NOTEBOOK, course.assignment, student)
        url = f"{base}/formgrader/submissions/{found.id}/"
    request = urllib.request.Request(url, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.read().decode()


def visible_text(page: str) -> str:
    """The page's text without tags, spacing collapsed."""
    return collapsed(html.unescape(re.sub(r"<[^>]+>", " ", page)))


def rubric_phrases(region: str) -> list[str]:
    """Phrases of plain words in a rubric, which any rendering of its markdown keeps."""
    phrases = (" ".join(p.split()) for p in re.split(r"[^A-Za-z ,']", region))
    return [p for p in phrases if len(p) > 30]


@pytest.mark.parametrize("student", ["ada", "eve"])
def test_the_manual_grading_page_shows_each_rubric_from_source_beside_the_answer(graded, student):
    course, server = graded
    page = manual_grading_page(course, server, student)
    text = visible_text(page)
    source = nbformat.read(course.source_dir / f"{NOTEBOOK}.ipynb", as_version=4)
    questions = written_questions(source)
    assert len(questions) >= 5
    assert page.count('class="cell border-box-sizing text_cell rendered kit-rubric"') == len(
        questions
    )
    for grade_id, region in questions.items():
        answer = f"{student} answers {grade_id} in words of her own."
        phrases = rubric_phrases(region)
        assert phrases and all(p in text for p in phrases), grade_id
        # Beside the answer: the rubric panel follows the student's answer, before the next.
        after = text[text.index(answer) :]
        assert after.index("Model answer and rubric") < after.index(phrases[0]), grade_id


def test_the_page_names_the_students_from_the_roster_or_by_id(graded):
    course, server = graded
    assert "Lovelace, Ada" in manual_grading_page(course, server, "ada")
    assert f"eve, {NOT_ON_ROSTER}" in manual_grading_page(course, server, "eve")


def test_a_hostile_notebook_injects_neither_a_rubric_nor_script(graded):
    course, server = graded
    page = manual_grading_page(course, server, "eve")
    assert "eve answers" in page  # her answers are there, as text
    assert FAKE_RUBRIC not in page
    assert '<script>alert("eve")' not in page and "onerror" not in page
    clean = manual_grading_page(course, server, "ada")
    assert page.lower().count("<script") == clean.lower().count("<script")


def autograded_cell(course, student: str, question: str) -> nbformat.NotebookNode:
    """The test cell ``question`` of the student's autograded notebook."""
    path = course.autograded_dir / student / course.assignment / f"{NOTEBOOK}.ipynb"
    notebook = nbformat.read(path, as_version=4)
    return next(
        c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == question
    )


def recorded_hidden_failures(course, student: str, question: str) -> list[dict[str, str]]:
    """What grading recorded for graders in the test cell ``question`` of the student's
    autograded notebook."""
    return [
        case
        for output in autograded_cell(course, student, question).outputs
        for case in output.metadata.get(HIDDEN_FAILURES_METADATA, [])
    ]


def hidden_case_functions(course, question: str) -> tuple[str, dict[str, ast.FunctionDef]]:
    """The question's full test file, and its hidden cases by name."""
    source = (course.tests_dir / f"{question}.py").read_text(encoding="utf-8")
    return source, {case_name(case): case for case in hidden_cases(source)}


def collapsed(text: str) -> str:
    """``text`` with its spacing collapsed, as :func:`visible_text` collapses a page's."""
    return " ".join(text.split())


def test_the_page_shows_each_failed_hidden_case_with_its_message_escaped(graded):
    course, server = graded
    source = (course.tests_dir / "q4_cost.py").read_text(encoding="utf-8")
    recorded = recorded_hidden_failures(course, "eve", "q4_cost")
    names = sorted(  # as the test file names its hidden cases
        ast.literal_eval(keyword.value)
        for case in hidden_cases(source)
        for decorator in case.decorator_list
        for keyword in getattr(decorator, "keywords", ())
        if keyword.arg == "name"
    )
    assert sorted(case["name"] for case in recorded) == names and len(names) == 2
    page = manual_grading_page(course, server, "eve")
    text = visible_text(page)
    assert page.count('class="cell border-box-sizing text_cell rendered kit-hidden-failures"') >= 1
    for case in recorded:
        assert RETURNED in case["message"] or "str" in case["message"]
        assert case["name"] in text and " ".join(case["message"].split()) in text
    assert RETURNED not in page  # only as text


def test_the_page_shows_the_source_of_each_failed_hidden_case_from_the_courses_tests(graded):
    course, server = graded
    source, functions = hidden_case_functions(course, "q4_cost")
    where = (course.tests_dir / "q4_cost.py").relative_to(course.root).as_posix()
    recorded = recorded_hidden_failures(course, "eve", "q4_cost")
    assert len(recorded) == len(functions) == 2
    text = visible_text(manual_grading_page(course, server, "eve"))
    for case in recorded:
        function = functions[case["name"]]
        place = f"The case ({where}, line {function.decorator_list[0].lineno}):"
        code = collapsed(ast.get_source_segment(source, function))  # its inputs with it
        message = text.index(collapsed(case["message"]))
        assert message < text.index(place, message) < text.index(code, message), case["name"]


def test_a_hidden_case_the_courses_tests_do_not_hold_adds_nothing_to_its_message(
    graded, monkeypatch
):
    course, _ = graded
    monkeypatch.chdir(course.root)  # where formgrader renders its pages
    resources = {"assignment_id": course.assignment, "notebook_id": NOTEBOOK}
    cell = autograded_cell(course, "eve", "q4_cost")
    assert hidden_failures_html(cell, resources).count('class="kit-hidden-case"') == 2
    renamed = copy.deepcopy(cell)
    for output in renamed.outputs:
        for case in output.metadata.get(HIDDEN_FAILURES_METADATA, []):
            case["name"] += " (renamed)"
    missing = copy.deepcopy(cell)
    missing.metadata.nbgrader.grade_id = "q4_no_such_file"
    for other in (renamed, missing):
        shown = hidden_failures_html(other, resources)
        assert "kit-hidden-case" not in shown
        for case in recorded_hidden_failures(course, "eve", "q4_cost"):
            assert html.escape(case["message"]) in shown


def test_feedback_holds_no_rubric_and_no_hidden_case_detail(graded):
    course, _ = graded
    source, functions = hidden_case_functions(course, "q4_cost")
    for student in ("ada", "eve"):
        folder = feedback_folder(course, student)
        page = (folder / f"{NOTEBOOK}.html").read_text(encoding="utf-8")
        assert f"{student} answers" in page
        assert "kit-rubric" not in page and FAKE_RUBRIC not in page
        assert "kit-hidden-failures" not in page and "kit-hidden-case" not in page
        for case in recorded_hidden_failures(course, student, "q4_cost"):
            assert collapsed(case["message"]) not in visible_text(page)
        for function in functions.values():
            assert collapsed(ast.get_source_segment(source, function)) not in visible_text(page)
        assert student_facing_leaks(folder, course) == []


def autograde_url(course, base: str, student: str) -> str:
    """The request formgrader's *Autograde* button sends for the student's submission."""
    return f"{base}/formgrader/api/submission/{course.assignment}/{student}/autograde"


def post(url: str, headers: dict[str, str], opener=None, data: bytes = b"") -> tuple[int, str]:
    """POST ``data`` to ``url``: the HTTP status and the body of the answer."""
    request = urllib.request.Request(url, data=data, method="POST", headers=headers)
    try:
        with (opener or urllib.request.build_opener()).open(request, timeout=120) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def class_files(course) -> dict[str, dict[str, bytes]]:
    """What an autograde could change: the gradebook, and the files submitted, autograded and
    handed back."""
    folders = [course.submitted_dir, course.autograded_dir, course.root / "feedback"]
    return {
        course.gradebook.name: {"": course.gradebook.read_bytes()},
        **{folder.name: tree(folder) for folder in folders},
    }


def test_the_autograde_button_answers_with_the_kits_refusal_alone_and_changes_nothing(graded):
    course, (base, token) = graded
    before = class_files(course)
    status, body = post(autograde_url(course, base, "eve"), {"Authorization": f"token {token}"})
    assert status == 200, body
    result = json.loads(body)
    # No "error": formgrader's dialog shows a traceback panel for one.
    assert result == {"success": False, "log": log_text(USE_THE_KIT)}, result
    assert max(len(line) for line in result["log"].splitlines()) <= LOG_WIDTH
    assert class_files(course) == before


def test_the_kits_autograde_answer_keeps_formgraders_login_and_xsrf_checks(graded):
    course, (base, token) = graded
    jar = http.cookiejar.CookieJar()
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with browser.open(f"{base}/login", timeout=60) as page:  # sets the _xsrf cookie
        page.read()
    xsrf = next(cookie.value for cookie in jar if cookie.name == "_xsrf")
    url = autograde_url(course, base, "eve")
    assert post(url, {"X-XSRFToken": xsrf}, browser)[0] == 403  # not logged in
    login = urllib.parse.urlencode({"password": token, "_xsrf": xsrf}).encode()
    post(f"{base}/login", {}, browser, login)
    assert post(url, {}, browser)[0] == 403  # logged in, without the XSRF token
    status, body = post(url, {"X-XSRFToken": xsrf}, browser)
    assert status == 200 and json.loads(body)["log"] == log_text(USE_THE_KIT), body


READ_DIALOG = """
const modal = document.querySelector('#error-modal.in');
if (!modal) return null;
const log = modal.querySelector('.panel-warning pre');
return {
    text: modal.querySelector('.modal-body').innerText,
    panels: [...modal.querySelectorAll('.panel-heading')].map(e => e.textContent),
    logFits: !!log && log.scrollWidth <= log.clientWidth,
    dialogFits: modal.querySelector('.modal-content').getBoundingClientRect().bottom
        <= window.innerHeight,
};
"""
CLICK_AUTOGRADE = """
const row = [...document.querySelectorAll('tr')].find(
    r => (r.querySelector('.student-id') || {}).textContent === arguments[0]);
const link = row && row.querySelector('.autograde a');
if (link) link.click();
return !!link;
"""


@needs_chromium
def test_the_autograde_dialog_in_a_browser_shows_the_refusal_and_no_traceback(graded):
    course, (base, token) = graded
    before = class_files(course)
    with chromium() as browser:
        # Logged in at the server's root, as JupyterLab's Formgrader panel is: a token in a
        # formgrader URL logs in that page's folder only (nbgrader's handlers strip the base
        # URL's slash, which is the login cookie's path), not the API the page calls.
        browser.get(f"{base}/api/status?token={token}")
        browser.get(f"{base}/formgrader/manage_submissions/{course.assignment}")
        wait_until(lambda: browser.execute_script(CLICK_AUTOGRADE, "eve"), PAGE_LOAD, "eve's row")
        wait_until(lambda: browser.execute_script(READ_DIALOG), PAGE_LOAD, "the Autograde dialog")
        dialog = browser.execute_script(READ_DIALOG)
        screenshot(browser, "formgrader-autograde-refusal")
    assert said(USE_THE_KIT, dialog["text"]), dialog
    assert dialog["panels"] == ["Log Output"], dialog  # no Traceback panel
    assert dialog["logFits"] and dialog["dialogFits"], dialog  # read without scrolling
    assert class_files(course) == before


def test_in_a_course_that_does_not_stop_autograde_the_button_is_nbgraders(tmp_path):
    config = 'c = get_config()\nc.CourseDirectory.course_id = "plain"\n'
    (tmp_path / "nbgrader_config.py").write_text(config, encoding="utf-8")
    with jupyter_server(tmp_path, "server") as (base, token):
        url = f"{base}/formgrader/api/submission/ps1/nobody/autograde"
        status, body = post(url, {"Authorization": f"token {token}"})
    result = json.loads(body)
    assert status == 200 and not result["success"], body
    assert "No notebooks were matched" in result["error"], result  # nbgrader's autograde ran
    assert not said(USE_THE_KIT, result.get("log", ""))


def test_written_answers_not_yet_graded_count_as_pending_in_the_report(graded):
    course, _ = graded
    source = nbformat.read(course.source_dir / f"{NOTEBOOK}.ipynb", as_version=4)
    with (course.root / REPORT_DIR / QUESTIONS_CSV).open(newline="", encoding="utf-8") as handle:
        rows = {row["question"]: row for row in csv.DictReader(handle)}
    for grade_id in written_questions(source):
        assert rows[grade_id]["written"] == "1"
        assert rows[grade_id]["pending"] == "2" and rows[grade_id]["students"] == "0"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("name,first_name\nada,Ada\n", "no 'id' column"),
        ("id,first_name\nada,Ada\nada,Ada2\n", "ada is listed twice"),
        ("id,first_name\n../eve,Eve\n", "is not a valid student id"),
        ("id,last_name\neve,<b>Eve</b>\n", "last_name of eve"),
        (b"id,first_name\nada,\xff\n", "not UTF-8"),
    ],
    ids=["no-id", "twice", "bad-id", "markup", "not-utf8"],
)
def test_a_bad_roster_stops_before_grading_and_changes_nothing(graded, content, reason):
    course, _ = graded
    path = course.root.parent / "bad-roster.csv"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    before = course.gradebook.read_bytes()
    result = run_kit(course, "grade", "--roster", str(path), "--force")
    assert result.returncode == 2
    assert reason in result.stderr and "nothing graded" in result.stderr
    assert course.gradebook.read_bytes() == before
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        assert gradebook.find_student("ada").last_name == "Lovelace"
