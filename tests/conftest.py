"""Shared fixtures: the committed course, and scratch copies for the commands that write."""

from __future__ import annotations

import atexit
import contextlib
import csv
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tfcourse_instructor.grading.build.public_tests import hidden_cases, public_test_source
from tfcourse_instructor.grading.classroom.summary import SUMMARY_JSON
from tfcourse_instructor.grading.course import Course, import_given
from tfcourse_instructor.grading.schedule import COURSE_FILE, courses, read_schedule
from tfcourse_instructor.grading.selftest.samples import reference_notebooks

REPO = Path(__file__).resolve().parents[1]
# The suite reads test files as the grader does: the modules they import by name (those the
# assignments give) are the repository's.
for _course in courses(REPO):
    import_given(_course.given_dir)


@dataclass(frozen=True)
class Tree:
    """A course directory with every assignment it lists (one notebook each)."""

    root: Path

    def __getitem__(self, assignment: str) -> Course:
        return Course(self.root, assignment)

    @property
    def courses(self) -> list[Course]:
        return courses(self.root)


def copy_course(destination: Path, assignments: Sequence[str] | None = None) -> Tree:
    """A copy of the course's configuration (with what publishing reads: the project file and
    the pins), twins and source notebooks (no release), of every assignment or of
    ``assignments`` only (the course file then lists just those)."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("nbgrader_config.py", "pyproject.toml", "requirements.txt"):
        shutil.copy(REPO / name, destination / name)
    kept = [a for a in read_schedule(REPO) if assignments is None or a.name in assignments]
    (destination / COURSE_FILE).write_text(
        "".join(
            f'[[assignment]]\nname = "{a.name}"\nreleased = {str(a.released).lower()}\n'
            + (f"due = {a.due.isoformat()}\n" if a.due else "")
            for a in kept
        ),
        encoding="utf-8",
    )
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".OTTER_LOG")
    folders = [Path(top, a.name) for a in kept for top in ("source", "authoring")]
    for folder in (*folders, Path("authoring", "mutants"), Path("authoring", "student")):
        shutil.copytree(REPO / folder, destination / folder, ignore=ignore)
    return Tree(destination)


_RELEASED: dict[str, Path] = {}
"""Courses reduced to one assignment and released, by assignment: made once per session."""


def one_notebook_course(destination: Path, notebook: str = "01_attention") -> Course:
    """A copy of the course reduced to one assignment, released: a small class to grade.
    The release command runs once per session and assignment; each call copies its result."""
    if notebook not in _RELEASED:
        folder = Path(tempfile.mkdtemp(prefix=f"tfcourse-released-{notebook}-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        tree = copy_course(folder / "course", [notebook])
        result = run_kit(tree, "release")
        assert result.returncode == 0, result.stderr
        _RELEASED[notebook] = tree.root
    shutil.copytree(_RELEASED[notebook], destination, dirs_exist_ok=True)
    return Tree(destination)[notebook]


def all_reference_notebooks(tree: Tree) -> dict[str, nbformat.NotebookNode]:
    """The model solutions of every assignment, by notebook name."""
    return {name: nb for c in tree.courses for name, nb in reference_notebooks(c).items()}


def each(course: Course | Tree) -> list[Course]:
    """The assignments of a tree, or the one course."""
    return course.courses if isinstance(course, Tree) else [course]


def run_kit(course: Course | Tree, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m tfcourse_instructor.grading ARGS`` in ``course`` as a grader would."""
    return run_module(course, "tfcourse_instructor.grading", *args)


def run_module(
    course: Course | Tree, module: str, *args: str, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m MODULE ARGS`` in ``course``, with this interpreter's scripts on PATH."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=course.root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def running(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie waiting for its reaper has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def recorded(course: Course) -> dict[str, dict]:
    """The grading summary's record of each student graded in ``course``'s assignment."""
    path = course.root / SUMMARY_JSON
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get(course.assignment, {})


def graded_results(course: Course, students: set[str]) -> dict[str, object]:
    """What grading ``course``'s assignment left of ``students``: their rows of
    ``grades_by_question.csv``, their grades in ``grades.csv``, their feedback pages and their
    records (graded or not, the issues). Two runs that graded alike leave equal results."""

    def rows(name: str) -> list[dict[str, str]]:
        with (course.root / name).open(encoding="utf-8") as stream:
            return list(csv.DictReader(stream))

    pages = {
        student: {
            path.name: path.read_bytes()
            for path in sorted((course.root / "feedback" / student / course.assignment).glob("*"))
        }
        for student in sorted(students)
    }
    return {
        "questions": [
            row
            for row in rows("grades_by_question.csv")
            if row["notebook"] == course.assignment and row["student"] in students
        ],
        "grades": {
            row["student_id"]: row[course.assignment]
            for row in rows("grades.csv")
            if row["student_id"] in students
        },
        "feedback": pages,
        "records": {
            student: (record["graded"], record["issues"])
            for student, record in recorded(course).items()
            if student in students
        },
    }


def hidden_lines(tests_dir: Path) -> set[str]:
    """Lines of hidden test cases (stripped, at least 20 characters) that the public test
    files do not contain: text a student can learn only from the hidden tests."""
    lines: set[str] = set()
    for path in sorted(tests_dir.glob("*.py")):
        source = path.read_text(encoding="utf-8")
        public = {line.strip() for line in public_test_source(source).splitlines()}
        source_lines = source.splitlines()
        for case in hidden_cases(source):
            first = min([case.lineno, *(d.lineno for d in case.decorator_list)])
            for line in source_lines[first - 1 : case.end_lineno]:
                if len(text := line.strip()) >= 20 and text not in public:
                    lines.add(text)
    return lines


SECRET_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "hidden=True", "Rubric", "Model answer")
"""Text that only source notebooks and full test files hold."""


def substantial_lines(text: str) -> set[str]:
    return {line.strip() for line in text.splitlines() if len(line.strip()) > 12}


def solution_lines(course: Course | Tree) -> set[str]:
    """Every substantial line written between solution delimiters in the source notebooks,
    except idioms students are shown anyway (e.g. ``loss.backward()``): lines that also stand
    outside every solution region. A public test file must not show a solution line."""
    lines, given = set(), set()
    for path in source_notebooks(course):
        notebook = nbformat.read(path, as_version=4)
        for cell in notebook.cells:
            pattern = r"### BEGIN SOLUTION(.*?)### END SOLUTION"
            for region in re.findall(pattern, cell.source, re.S):
                lines |= substantial_lines(region)
            given |= substantial_lines(re.sub(pattern, "", cell.source, flags=re.S))
    return lines - given


def source_notebooks(course: Course | Tree) -> list[Path]:
    return [c.source_dir / f"{name}.ipynb" for c in each(course) for name in c.notebook_names()]


def full_test_files(course: Course | Tree) -> list[Path]:
    """Every full test file (hidden cases included)."""
    return [path for c in each(course) for path in sorted(c.tests_dir.glob("*.py"))]


def student_facing_leaks(
    folder: Path, course: Course | Tree, holds_answers: bool = False
) -> list[str]:
    """What, under ``folder``, a student must never see: solution delimiters or lines, rubric
    and model-answer markers, hidden test cases (names, functions, lines). In a folder that
    ``holds_answers`` (feedback, grading pages: the sample students' answers are the model
    solutions), only the hidden tests count. A module an assignment gives, beside its
    notebook, comes out after the earlier assignments are due: their answers may be in it
    (notebook 3's model is notebook 2's language model), later ones' may not."""
    secrets = solution_lines(course)
    courses = each(course)
    earlier = {
        c.assignment: set().union(*(solution_lines(before) for before in courses[:index]))
        for index, c in enumerate(courses)
    }
    # Hidden-test lines that the public files also hold (`with torch.no_grad():`) prove nothing.
    public = [public_test_source(p.read_text()) for p in full_test_files(course)]
    for path in source_notebooks(course):
        notebook = nbformat.read(path, as_version=4)
        public += [cell.source for cell in notebook.cells]
    known = "\n".join(public)
    hidden = {line for c in each(course) for line in hidden_lines(c.tests_dir) if line not in known}
    names = set()
    for path in full_test_files(course):
        for case in hidden_cases(path.read_text(encoding="utf-8")):
            if f"def {case.name}(" not in known:  # another file's public case may share it
                names.add(f"def {case.name}(")
    assert secrets and hidden and names, "nothing to look for: the course has no secrets?"
    needles = [*names, *hidden]
    if not holds_answers:
        needles += [*SECRET_MARKERS, *secrets]
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        given_by = path.parent.name if path.suffix == ".py" else None
        for needle in needles:
            if needle in text and needle not in earlier.get(given_by, ()):
                found.append(f"{path.relative_to(folder)}: {needle!r}")
    return found


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> contents)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def said(message: str, output: str) -> bool:
    """Whether ``output`` says ``message``, whatever its line breaks (the kit's refusals are
    logged in short lines)."""
    return " ".join(message.split()) in " ".join(output.split())


SERVER_START = 60  # seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise TimeoutError(f"gave up after {timeout} s waiting for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def jupyter_server(root: Path, app: str = "lab", *options: str) -> Iterator[tuple[str, str]]:
    """``jupyter APP`` (lab or server, with nbgrader's extensions) on 127.0.0.1, started in
    ``root``; yields its base URL and token. The server and its kernels are killed after."""
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    command = [
        sys.executable, "-m", "jupyter", app, "--no-browser",
        "--allow-root",  # CI runs as root
        "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}", *options,
    ]  # fmt: skip
    log_path = root / f"jupyter-{app}.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=log, start_new_session=True
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(
                lambda: answers(f"{base}/api/status?token={token}") or server.poll() is not None,
                SERVER_START,
                f"jupyter {app} to answer",
            )
            assert server.poll() is None, log_path.read_text()
            yield base, token
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(server.pid, signal.SIGKILL)


CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
needs_chromium = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)
ARTIFACTS = REPO / "test-artifacts"
PAGE_LOAD = 60  # seconds


@contextlib.contextmanager
def chromium(*arguments: str, capabilities: dict | None = None) -> Iterator:
    """Headless Chromium driven by selenium, started with ``arguments`` and ``capabilities``
    besides the kit's; quit after."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", *arguments):
        options.add_argument(argument)
    options.add_argument("--window-size=1400,1000")
    for name, value in (capabilities or {}).items():
        options.set_capability(name, value)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(PAGE_LOAD)
    driver.set_script_timeout(PAGE_LOAD)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver, name: str) -> Path:
    """A screenshot of what ``driver`` shows, kept in ``test-artifacts/`` for a person to see."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def check_outputs(notebook):
    """The text of every grader.check cell's output, by question."""
    outputs = {}
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            texts = [o.get("data", {}).get("text/plain", "") for o in cell.outputs]
            outputs[meta["grade_id"]] = "\n".join(texts)
    return outputs


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first, so that the quick ones fill the workers' last minutes
    (pytest-xdist hands out the files in this order). Of the files that read the graded
    sample class, one comes first and the others after the other slow files: one worker
    grades the class while the other runs those, rather than waiting for it. A file is handed
    out where its first test stands, so a file waits whole if any of its tests reads the
    class."""
    readers = [item.path for item in items if "graded_samples" in item.fixturenames]
    waiting = set(readers[1:]) - set(readers[:1])

    def order(item: pytest.Item) -> tuple[bool, bool]:
        return item.get_closest_marker("slow") is None, item.path in waiting

    items.sort(key=order)


@pytest.fixture(scope="session")
def repo_course() -> Tree:
    """The course as committed (read only)."""
    return Tree(REPO)


def made_once(tmp_path_factory, name: str, make: Callable[[Path], dict]) -> tuple[Path, dict]:
    """A folder ``make`` fills (returning what else it made, as JSON) once per test session,
    and what it returned. Under pytest-xdist the first worker to ask makes it, under a lock,
    in the session's shared temporary folder; each worker gets a copy of its own, since tests
    write into it."""
    own = tmp_path_factory.mktemp(name)
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return own, make(own)
    shared = tmp_path_factory.getbasetemp().parent / name
    record = shared / "made.json"
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not record.is_file():
            shared.mkdir(exist_ok=True)
            folder = Path(tempfile.mkdtemp(dir=shared))  # a worker that failed left its own
            record.write_text(json.dumps({"folder": folder.name, "made": make(folder)}))
    made = json.loads(record.read_text())
    shutil.copytree(shared / made["folder"], own, symlinks=True, dirs_exist_ok=True)
    return own, made["made"]


@pytest.fixture(scope="session")
def released_course(tmp_path_factory) -> Tree:
    """A scratch copy of the course with its release regenerated by the real command."""

    def release(folder: Path) -> dict:
        result = run_kit(copy_course(folder), "release")
        assert result.returncode == 0, result.stderr
        return {}

    return Tree(made_once(tmp_path_factory, "released", release)[0])


@pytest.fixture(scope="session")
def graded_samples(tmp_path_factory) -> tuple[Tree, subprocess.CompletedProcess[str]]:
    """A scratch copy of the course after the main job (`samples`) ran in it."""

    def grade(folder: Path) -> dict:
        result = run_kit(copy_course(folder), "samples")
        assert result.returncode == 0, result.stdout + result.stderr
        return vars(result)

    folder, result = made_once(tmp_path_factory, "graded", grade)
    return Tree(folder), subprocess.CompletedProcess(**result)
