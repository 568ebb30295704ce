"""Notebook 5's instructor-only references pass every case of its test files, hidden ones
included, and the notebook imports only the helpers a student distribution will ship."""

import ast

import pytest

from tfcourse.checking import Grader
from tfcourse_instructor.reference import backward, beam, blockwise, kv_cache

from conftest import REPO

QUESTIONS = ["q5_backward", "q5_flops", "q5_blockwise", "q5_kv_attention", "q5_generate", "q5_beam"]
STUDENT_SAFE = {
    "tfcourse.checking",
    "tfcourse.assertions",
    "tfcourse.plotting",
    "tfcourse.corpora",
    "tfcourse.vocab",
    "tfcourse.runmode",
    "tfcourse.ngram",
}


@pytest.mark.parametrize("question", QUESTIONS)
def test_reference_passes_every_case(question):
    answers = {**vars(backward), **vars(blockwise), **vars(kv_cache), **vars(beam)}
    result = Grader(REPO / "authoring" / "05_inference" / "tests").check(question, answers)
    assert result.passed, result.report()


def test_notebook_imports_only_student_safe_helpers():
    twin = REPO / "authoring" / "05_inference" / "05_inference.py"
    imported = set()
    for node in ast.walk(ast.parse(twin.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    helpers = {name for name in imported if name.split(".")[0] == "tfcourse"}
    assert helpers and helpers <= STUDENT_SAFE, helpers - STUDENT_SAFE
