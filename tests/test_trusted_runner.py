"""Grades come from the trusted runner: nothing a submission does in its kernel forges them.

One run of the real grader command on a scratch course reduced to notebook 1 grades blank
notebooks (the release, nothing answered) that each try one way of forging a grade from
inside the kernel, next to controls: `reference` (full points), `untouched` (0) and honest
twins of the submissions whose answers are data (`zeros-honest`, `uniform-honest`). Each
attack must score what its honest twin earns. The last cell of `memory-scan`, run after
every check, scans the kernel's memory for the lines of the hidden tests.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

import tfcourse
from tfcourse_instructor.grading.classroom.scores import read_scores
from tfcourse_instructor.grading.classroom.summary import load_records
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.selftest.samples import reference_notebooks, release_notebooks

from conftest import hidden_lines, one_notebook_course, run_kit

pytestmark = pytest.mark.slow

NOTEBOOK = "01_attention"
LIMITS = ("--jobs", "2", "--cell-timeout", "20", "--notebook-timeout", "240", "--memory-mb", "2048")

FORMATTER = """
ip = get_ipython()
ip.display_formatter.formatters["text/plain"].for_type(object, lambda o, p, cycle: p.text("8"))
"""
TRANSFORMER = """
get_ipython().input_transformers_post.append(
    lambda lines: ["8\\n"] if any("grader.check" in line for line in lines) else lines
)
"""
DISPLAYHOOK = """
import sys
sys.displayhook = lambda value: get_ipython().display_pub.publish({"text/plain": "8"})
"""
PRE_RUN_CELL = """
def forge(info):
    kernel = get_ipython().kernel
    content = {"data": {"text/plain": "8"}, "metadata": {}, "execution_count": 1}
    kernel.session.send(kernel.iopub_socket, "execute_result", content, parent=kernel.get_parent())
get_ipython().events.register("pre_run_cell", forge)
"""
TRACE = """
import sys, threading
def tracer(frame, event, arg):
    if event == "return" and frame.f_code.co_name in ("serve", "_call", "run_case", "check"):
        frame.f_locals.update(passed=True)
    return tracer
sys.settrace(tracer)
threading.settrace(tracer)
sys.setprofile(lambda frame, event, arg: None)
"""
GC_EDIT = """
import gc
def edit_everything():
    for found in gc.get_objects():
        if isinstance(found, dict):
            for key in ("passed", "score", "points"):
                if key in found:
                    found[key] = True if key == "passed" else 8
get_ipython().events.register("post_execute", edit_everything)
edit_everything()
"""
MODULE_SWAP = """
import types
import tfcourse.assertions as assertions
class Lenient(types.ModuleType):
    def __getattribute__(self, name):
        if name.startswith("expect"):
            return lambda *args, **kwargs: None
        return super().__getattribute__(name)
assertions.__class__ = Lenient
"""
IMPORT_HOOK = """
import importlib.abc, importlib.util, sys
class Fake(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path, target=None):
        if name in ("tfcourse.assertions", "tfcourse.checking", "tfcourse.grading_kernel.agent"):
            return importlib.util.spec_from_loader(name, self)
    def create_module(self, spec):
        return None
    def exec_module(self, module):
        module.expect = module.expect_close = module.expect_shape = lambda *a, **k: None
        module.serve = lambda *a, **k: 8
sys.meta_path.insert(0, Fake())
for name in ("tfcourse.assertions", "tfcourse.checking", "tfcourse.grading_kernel.agent"):
    sys.modules.pop(name, None)
"""
CHEAT_TENSOR = """
class Cheat(torch.Tensor):
    def __sub__(self, other):
        return torch.zeros(self.shape).as_subclass(Cheat)
    def __eq__(self, other):
        return True
    def allclose(self, *args, **kwargs):
        return True
def scaled_dot_product_attention(query, key, value, mask=None):
    shape = query.shape[:-1]
    out = torch.zeros(*shape, value.size(-1), dtype=query.dtype).as_subclass(Cheat)
    weights = torch.zeros(*shape, key.size(-2), dtype=query.dtype).as_subclass(Cheat)
    return out, weights
"""
ZEROS_HONEST = """
def scaled_dot_product_attention(query, key, value, mask=None):
    shape = query.shape[:-1]
    out = torch.zeros(*shape, value.size(-1), dtype=query.dtype)
    return out, torch.zeros(*shape, key.size(-2), dtype=query.dtype)
"""
EVERYTHING_FLOAT = """
class Everything(float):
    def __eq__(self, other):
        return True
    def __lt__(self, other):
        return True
    __le__ = __gt__ = __ge__ = __lt__
def scaled_dot_product_attention(query, key, value, mask=None):
    return Everything(0.0), Everything(0.0)
"""
UNIFORM = """
def scaled_dot_product_attention(query, key, value, mask=None):
    {zero}
    weights = torch.softmax(query @ key.transpose(-2, -1) * 0.0, dim=-1)
    return weights @ value, weights
"""
AGENT_GARBAGE = """
import tfcourse.grading_kernel.agent as agent
agent.serve = lambda *args: '{"ok": {"$": "evil", "v": 1}}'
"""
AGENT_HUGE = """
import tfcourse.grading_kernel.agent as agent
agent.serve = lambda *args: "[" + "1," * 40_000_000 + "1]"
"""
AGENT_SILENT = """
import time
import tfcourse.grading_kernel.agent as agent
agent.serve = lambda *args: time.sleep(10**6)
"""

ATTACKS = {
    "formatter": FORMATTER,
    "input-transformer": TRANSFORMER,
    "displayhook": DISPLAYHOOK,
    "pre-run-cell": PRE_RUN_CELL,
    "settrace": TRACE,
    "gc-edit": GC_EDIT,
    "module-class-swap": MODULE_SWAP,
    "import-hook": IMPORT_HOOK,
    "float-everything": EVERYTHING_FLOAT,
    "agent-garbage": AGENT_GARBAGE,
    "agent-huge": AGENT_HUGE,
    "agent-silent": AGENT_SILENT,
}
"""Blank notebooks with a forging cell: each must score 0."""
TWINS = {
    "tensor-subclass": (CHEAT_TENSOR, "zeros-honest", ZEROS_HONEST),
    "zeroes-inputs": (
        UNIFORM.format(zero="with torch.no_grad():\n        query.zero_(), key.zero_()"),
        "uniform-honest",
        UNIFORM.format(zero="pass"),
    ),
}
"""Blank notebooks whose answer cheats with data, and their honest twins."""


def secret_lines(course: Course) -> set[str]:
    """Lines of the hidden tests found nowhere else: not in the release, nor in the sources of
    torch or the kit (``with torch.no_grad():`` is in every process that imported torch)."""
    known: set[str] = set()
    sources = [p for root in (torch, tfcourse) for p in Path(root.__file__).parent.rglob("*.py")]
    for path in [*sources, *(p for p in course.release_dir.rglob("*") if p.is_file())]:
        known.update(line.strip() for line in path.read_text(errors="ignore").splitlines())
    return hidden_lines(course.tests_dir) - known


def memory_scan(course: Course) -> str:
    """A cell that hashes every line of every string it can reach (gc, modules, linecache)
    and prints how many hidden-test lines, and how many lines of its own notebook, it met."""
    digests = {hashlib.sha256(line.encode()).hexdigest() for line in secret_lines(course)}
    assert digests
    return f"""
import gc, hashlib, linecache, sys, warnings
warnings.simplefilter("ignore")
HIDDEN = {sorted(digests)!r}
OWN = hashlib.sha256(b"def scaled_dot_product_attention(").hexdigest()
met, strings = set(), 0
def visit(value):
    global strings
    if type(value) is str and len(value) >= 20:  # hidden lines are longer
        strings += 1
        for line in value.splitlines():
            digest = hashlib.sha256(line.strip().encode()).hexdigest()
            if digest in HIDDEN or digest == OWN:
                met.add(digest)
roots = list(gc.get_objects()) + [vars(m) for m in list(sys.modules.values())]
roots.append(linecache.cache)
for found in roots:
    try:
        if isinstance(found, dict):
            for key, value in list(found.items()):
                visit(key)
                visit(value)
        elif isinstance(found, (list, tuple, set, frozenset)):
            for value in list(found):
                visit(value)
        elif hasattr(found, "co_consts"):
            for value in found.co_consts:
                visit(value)
    except Exception:
        pass
# Its printed outputs never reach the grader (they show what was submitted): an error does.
raise RuntimeError(f"scan {{strings > 1_000}} {{OWN in met}} {{len(met - {{OWN}})}}")
"""


def add_cell(notebook: nbformat.NotebookNode, after: str, source: str) -> None:
    index = next(i for i, cell in enumerate(notebook.cells) if cell.get("id") == after)
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(source))


def write_submissions(course: Course) -> None:
    blank = release_notebooks(course)[NOTEBOOK]
    notebooks = {"reference": reference_notebooks(course)[NOTEBOOK], "untouched": blank}
    for student, cell in ATTACKS.items():
        notebooks[student] = nbformat.reads(nbformat.writes(blank), 4)
        add_cell(notebooks[student], "sdpa", cell)
    for student, (cheat, twin, honest) in TWINS.items():
        for name, cell in ((student, cheat), (twin, honest)):
            notebooks[name] = nbformat.reads(nbformat.writes(blank), 4)
            add_cell(notebooks[name], "sdpa", cell)
    notebooks["memory-scan"] = nbformat.reads(nbformat.writes(blank), 4)
    notebooks["memory-scan"].cells.append(nbformat.v4.new_code_cell(memory_scan(course)))
    for student, notebook in notebooks.items():
        folder = course.submitted_dir / student / course.assignment
        shutil.copytree(course.release_dir, folder)
        nbformat.write(notebook, folder / f"{NOTEBOOK}.ipynb")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = one_notebook_course(tmp_path_factory.mktemp("trusted"))
    write_submissions(course)
    result = run_kit(course, "grade", *LIMITS)
    assert result.returncode == 0, result.stdout + result.stderr
    return course


def scores(course: Course, student: str) -> dict[str, float]:
    return {s.question: s.score for s in read_scores(course, [student]) if s.autograded}


def test_the_controls_score_full_points_and_zero(graded):
    full = {s.question: s.max_score for s in read_scores(graded, ["reference"]) if s.autograded}
    assert scores(graded, "reference") == full
    assert set(scores(graded, "untouched").values()) == {0}


@pytest.mark.parametrize("student", sorted(ATTACKS))
def test_forging_from_inside_the_kernel_earns_nothing(graded, student):
    assert scores(graded, student) == scores(graded, "untouched")


@pytest.mark.parametrize("student", sorted(TWINS))
def test_cheating_with_data_earns_what_the_data_deserves(graded, student):
    twin = TWINS[student][1]
    assert scores(graded, student) == scores(graded, twin)
    assert scores(graded, student)["q1_sdpa"] < scores(graded, "reference")["q1_sdpa"]


def test_the_kernel_never_holds_a_hidden_test_line(graded):
    found = "\n".join(str(issue) for issue in load_records(graded)["memory-scan"].issues)
    assert "raised RuntimeError: scan True True 0" in found, found
