"""Forbidden shortcuts: the reading of a solution's code, the run-time record, the rules every
coding question declares, and the verdict grader.check gives in a real kernel.

The verdict of a graded class is tested in tests/test_grading_adversarial.py, on the same
cheats (tests/shortcut_cheats.py)."""

from __future__ import annotations

import copy
import functools
import re
import shutil
import sys
import textwrap
import types

import nbformat
import pytest
import torch
import torch.nn.functional as F
from nbclient import NotebookClient
from nbgrader import utils

from tfcourse.declarations.callwatch import CallWatch
from tfcourse.declarations.shortcuts import (
    COMPUTED,
    find_shortcuts,
    forbidden_calls,
    names_tested,
    short_name,
    verdict,
)
from tfcourse_instructor.grading.selftest import mutants
from tfcourse_instructor.grading.selftest.samples import reference_notebooks
from tfcourse_instructor.grading.submission.execution import checked_question, notebook_shortcuts

from conftest import all_reference_notebooks
from shortcut_cheats import CHEATS, NOTEBOOK, mentions_only

SETUP = "import math\nimport torch\nimport torch.nn.functional as F\nfrom torch import Tensor, nn\n"
FORBIDDEN = (
    "torch.nn.functional.scaled_dot_product_attention",
    "torch._C._nn.scaled_dot_product_attention",
    "torch.nn.MultiheadAttention",
    "tfcourse.attention",
    "tfcourse_instructor.reference",
)
CODING_NOTEBOOKS = (
    "01_attention",
    "02_encoder",
    "03_language_models",
    "05_inference",
    "06_tokens_positions",
)


def found(solution: str, context: str = SETUP) -> list[str]:
    return find_shortcuts([textwrap.dedent(solution)], [context], FORBIDDEN)


@pytest.mark.parametrize(
    ("solution", "expected"),
    [
        ("return F.scaled_dot_product_attention(q, k, v)", FORBIDDEN[0]),
        ("return torch.nn.functional.scaled_dot_product_attention(q, k, v)", FORBIDDEN[0]),
        (
            "from torch.nn import functional\nfunctional.scaled_dot_product_attention(q, k, v)",
            FORBIDDEN[0],
        ),
        (
            "from torch.nn.functional import scaled_dot_product_attention as s\ns(q, k, v)",
            FORBIDDEN[0],
        ),
        ("getattr(F, 'scaled_dot_' + 'product_attention')(q, k, v)", FORBIDDEN[0]),
        ("getattr(F, f'scaled_dot_{\"product\"}_attention')(q, k, v)", FORBIDDEN[0]),
        ("vars(F)['scaled_dot_product_attention'](q, k, v)", FORBIDDEN[0]),
        ("F.__dict__['scaled_dot_product_attention'](q, k, v)", FORBIDDEN[0]),
        (
            "import sys\nsys.modules['torch.nn.functional'].scaled_dot_product_attention",
            FORBIDDEN[0],
        ),
        ("torch._C._nn.scaled_dot_product_attention(q, k, v)", FORBIDDEN[1]),
        ("__import__('torch')._C._nn.scaled_dot_product_attention(q, k, v)", FORBIDDEN[1]),
        ("layer = nn.MultiheadAttention(8, 2)", FORBIDDEN[2]),
        ("class Mine(nn.MultiheadAttention):\n    pass", FORBIDDEN[2]),
        ("from tfcourse.attention import scaled_dot_product_attention as answer", FORBIDDEN[3]),
        ("import tfcourse_instructor.reference.blockwise as answers", FORBIDDEN[4]),
        (
            "import importlib\nimportlib.import_module('tfcourse_instructor.reference').x",
            FORBIDDEN[4],
        ),
        ("getattr(F, name)(q, k, v)", COMPUTED),
        ("__import__(name)", COMPUTED),
        ("import importlib\nimportlib.import_module(name)", COMPUTED),
        ("eval(text)", COMPUTED),
        ("exec(compile(text, 'cell', 'exec'))", COMPUTED),
        ("f = compile(source, '<answer>', 'eval')", COMPUTED),
        ("F.__dict__.get('scaled_dot_product_attention')(q, k, v)", FORBIDDEN[0]),
        (
            "def answer(q, k, v, attend=vars(F).get('scaled_dot_product_attention')):\n"
            "    return attend(q, k, v)",
            FORBIDDEN[0],
        ),
        ("F.__dict__.get(name)(q, k, v)", COMPUTED),
        ("import sys\nsys.modules.get('tfcourse_instructor.reference.attention')", FORBIDDEN[4]),
        (
            "torch.ops.aten._scaled_dot_product_attention_math(q, k, v)",
            "torch.ops.aten._scaled_dot_product_attention_math",
        ),
        (
            "attend = torch.ops.aten.scaled_dot_product_attention\nattend(q, k, v)",
            "torch.ops.aten.scaled_dot_product_attention",
        ),
        ("torch._C._nn.linear(x, w)", "torch._C._nn.linear"),
    ],
)
def test_a_forbidden_call_is_found_however_it_is_spelled(solution, expected):
    assert found(solution) == [expected]


@pytest.mark.parametrize(
    "solution",
    [
        "# not F.scaled_dot_product_attention: by hand\nweights = torch.softmax(q @ k.mT, -1)",
        "rule = 'F.scaled_dot_product_attention and tfcourse.attention are forbidden'",
        '"""Unlike F.scaled_dot_product_attention, this returns the weights."""',
        "F.scaled_dot_product_attention = None  # assigning calls nothing",
        "out = F.linear(x, w)\nweights = F.softmax(s, dim=-1)",
        "getattr(self, name)",
        "module.eval()",
        "def scaled_dot_product_attention(q, k, v):\n    return q",
        "settings = config.__dict__.get('d_model')",
        "value = cache.get(key)",
    ],
)
def test_a_mention_or_an_allowed_call_is_not_a_finding(solution):
    assert found(solution) == []


def test_a_tested_name_the_notebook_binds_to_a_forbidden_call_is_found():
    solution = "def scaled_dot_product_attention(q, k, v):\n    return q"
    override = "from tfcourse.attention import scaled_dot_product_attention"
    tested = ["scaled_dot_product_attention"]
    assert find_shortcuts([solution], [SETUP, solution, override], FORBIDDEN, tested) == [
        FORBIDDEN[3]
    ]
    assert find_shortcuts([solution], [SETUP, override, solution], FORBIDDEN, tested) == []


def test_names_resolve_through_the_notebooks_other_cells():
    context = SETUP + "attend = F.scaled_dot_product_attention\n"
    assert found("attend(q, k, v)", context) == [FORBIDDEN[0]]
    redefined = context + "def attend(q, k, v):\n    return q\n"
    assert found("attend(q, k, v)", redefined) == []


def test_the_verdict_is_one_line_in_the_notebooks_spelling():
    assert verdict("q1_sdpa", []) == ""
    assert verdict("q1_sdpa", [FORBIDDEN[0], FORBIDDEN[0]]) == (
        "q1_sdpa: your solution calls F.scaled_dot_product_attention, which this question forbids"
    )
    assert "computes at run time" in verdict("q1_sdpa", [COMPUTED])


@pytest.fixture
def answers_module(monkeypatch):
    """A module of answers, as the kit's references are: a function and a class."""
    module = types.ModuleType("answers_demo")
    exec("def answer(x):\n    return x\n\nclass Layer:\n    pass\n", vars(module))
    monkeypatch.setitem(sys.modules, "answers_demo", module)
    return module


def test_the_run_time_record_counts_the_notebooks_calls_only(answers_module):
    namespace: dict = {"F": F, "nn": torch.nn, "q": torch.randn(1, 2, 4)}
    exec("from answers_demo import answer as mine\ndef helper(x):\n    return mine(x)", namespace)
    watch = CallWatch([FORBIDDEN[0], FORBIDDEN[2], "answers_demo"], namespace)
    watch.start()
    try:
        q = namespace["q"]
        F.scaled_dot_product_attention(q, q, q)  # not the notebook's code
        answers_module.answer(q)
        torch.nn.TransformerEncoderLayer(8, 2)  # builds a MultiheadAttention, not the notebook
        assert watch.called == set()
        namespace["helper"](q)
        assert watch.called == {"answers_demo"}
        exec("F.scaled_dot_product_attention(q, q, q)\nnn.MultiheadAttention(8, 2)", namespace)
    finally:
        called = watch.stop()
    assert called == sorted(["answers_demo", FORBIDDEN[0], FORBIDDEN[2]])


def test_a_tested_name_holding_a_forbidden_callable_is_recorded(answers_module):
    namespace = {
        "MultiHeadAttention": functools.partial(torch.nn.MultiheadAttention, batch_first=True),
        "scaled_dot_product_attention": answers_module.answer,
    }
    watch = CallWatch([FORBIDDEN[2], "answers_demo"], namespace, list(namespace))
    watch.start()
    assert watch.stop() == sorted([FORBIDDEN[2], "answers_demo"])
    untested = CallWatch([FORBIDDEN[2], "answers_demo"], namespace)
    untested.start()
    assert untested.stop() == []


def test_the_run_time_record_undoes_its_wrappers(answers_module):
    originals = (F.scaled_dot_product_attention, answers_module.answer)
    init = torch.nn.MultiheadAttention.__init__
    namespace = {"mine": answers_module.answer}
    watch = CallWatch([FORBIDDEN[0], FORBIDDEN[2], "answers_demo"], namespace)
    watch.start()
    assert namespace["mine"] is not originals[1]
    watch.stop()
    assert (F.scaled_dot_product_attention, answers_module.answer) == originals
    assert namespace["mine"] is originals[1]
    assert torch.nn.MultiheadAttention.__init__ is init
    assert "__watched__" not in vars(torch.nn.MultiheadAttention)
    assert "__init__" not in vars(answers_module.Layer)


def coding_questions(notebook: nbformat.NotebookNode) -> list[str]:
    return [
        checked_question(cell.source)
        for cell in notebook.cells
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)
    ]


@pytest.mark.parametrize("name", CODING_NOTEBOOKS)
def test_every_coding_question_declares_its_rule_and_states_it_in_its_task(repo_course, name):
    notebook = nbformat.read(repo_course[name].source_dir / f"{name}.ipynb", as_version=4)
    text = ""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            text += cell.source
        question = checked_question(cell.source) if cell.cell_type == "code" else None
        if question is None:
            continue
        source = (repo_course[name].tests_dir / f"{question}.py").read_text()
        rule = forbidden_calls(source)
        assert "tfcourse_instructor.reference" in rule, question
        stated = re.search(r"\*\*Not allowed here:\*\*(.*?)scores 0", text, re.S)
        assert stated, f"{question}: the task does not state what is not allowed"
        listed = set(re.findall(r"`([^`]+)`", stated.group(1)))
        assert listed == {short_name(entry) for entry in rule}, question
        text = ""


@pytest.mark.parametrize("name", CODING_NOTEBOOKS)
def test_no_model_solution_takes_a_shortcut(repo_course, name):
    notebook = reference_notebooks(repo_course[name])[name]
    for question in coding_questions(notebook):
        source = (repo_course[name].public_tests_dir / f"{question}.py").read_text()
        rule, tested = forbidden_calls(source), tuple(names_tested(source))
        assert notebook_shortcuts(notebook, question, rule, tested) == [], question


def test_no_declared_correct_alternative_takes_a_shortcut(repo_course):
    reference = all_reference_notebooks(repo_course)
    for variant in (v for c in repo_course.courses for v in mutants.load_variants(c)):
        if not variant.correct:
            continue
        notebooks = {variant.notebook: copy.deepcopy(reference[variant.notebook])}
        for edit in variant.edits:
            edit.apply(notebooks)
        tests = repo_course[variant.notebook].public_tests_dir
        source = (tests / f"{variant.question}.py").read_text()
        rule, tested = forbidden_calls(source), tuple(names_tested(source))
        found = notebook_shortcuts(notebooks[variant.notebook], variant.question, rule, tested)
        assert found == [], variant.student


@pytest.mark.slow
def test_grader_check_in_a_kernel_gives_the_grading_verdict(repo_course, tmp_path):
    """One kernel runs each cheat, then the honest answer again: the check reads the kernel's
    history, so each verdict follows the last run of the answer cell."""
    reference = reference_notebooks(repo_course[NOTEBOOK])[NOTEBOOK]
    cells = {cell.get("id"): cell for cell in reference.cells}
    notebook = nbformat.v4.new_notebook(cells=[copy.deepcopy(cells["setup"])])
    expected = []
    for student, (cheat, line) in [*CHEATS.items(), ("mentions-only", (mentions_only, ""))]:
        edited = copy.deepcopy(reference)
        cheat(edited)
        start = next(i for i, cell in enumerate(edited.cells) if cell.get("id") == "setup")
        end = next(i for i, cell in enumerate(edited.cells) if cell.get("id") == "q1_sdpa")
        answer = [  # the answer cell and the cells the cheat added, not the given ones
            cell
            for cell in edited.cells[start + 1 : end]
            if cell.get("id") == "sdpa" or cell.get("id") not in cells
        ]
        notebook.cells += [*answer, copy.deepcopy(cells["q1_sdpa"])]
        expected.append((student, line))
    folder = tmp_path / "student"
    shutil.copytree(repo_course[NOTEBOOK].public_tests_dir, folder / "tests")
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    reports = [
        cell.outputs[0]["data"]["text/plain"]
        for cell in notebook.cells
        if checked_question(cell.source) == "q1_sdpa"
    ]
    assert len(reports) == len(expected)
    for report, (student, line) in zip(reports, expected, strict=True):
        headline, second = report.splitlines()[:2]
        if line:
            assert headline.startswith("q1_sdpa: 0 / 3 points"), (student, report)
            assert second.strip() == line, (student, report)
        else:
            assert headline.startswith("q1_sdpa: 3 / 3 points"), (student, report)
            assert "forbids" not in report, (student, report)
