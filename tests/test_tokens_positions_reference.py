"""Notebook 6's instructor-only references pass every case of its test files, hidden ones
included; the notebook's model solutions agree with them; the notebook imports only helpers
a student distribution ships; and the BPE agrees with Hugging Face ``tokenizers``.

Agreement with ``tokenizers``' BpeTrainer (byte-level, GPT-2's pattern, no prefix space) on
the same text: both pick the pair of highest count at each step and differ only in how they
break ties, so the sets of merges agree (all 1,792 on tiny Shakespeare's first 90 %, 998 of
1,000 on the first 200,000 characters of the Python documentation) and so do the token
counts of held-out text; the order of the merges agrees up to the first tie.
"""

import ast
import random
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from tfcourse.checking import Grader
from tfcourse.corpora import load_corpus
from tfcourse.vocab import split_words
from tfcourse_instructor.reference import bpe, rotary

from conftest import REPO

NOTEBOOK = "06_tokens_positions"
TWIN = REPO / "authoring" / NOTEBOOK / f"{NOTEBOOK}.py"
QUESTIONS = ["q6_bpe_merge", "q6_bpe_train", "q6_bpe_codec", "q6_rope", "q6_rotary_attention"]
SOLUTION_CELLS = ("bpe_merge", "bpe_train", "bpe_codec", "rope", "rotary_attention")
STUDENT_SAFE = {
    "tfcourse.checking",
    "tfcourse.corpora",
    "tfcourse.plotting",
    "tfcourse.runmode",
    "tfcourse.vocab",
}
SHAKESPEARE = REPO.parent / "shared" / "data" / "tiny_shakespeare.txt"


def notebook_answers() -> dict:
    """The names the notebook's set-up and solution cells define, run from the twin."""
    import jupytext

    notebook = jupytext.read(TWIN)
    namespace: dict = {}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.cell_type == "code" and grade_id in ("setup", *SOLUTION_CELLS):
            exec(compile(cell.source, f"{NOTEBOOK}:{grade_id}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def answers():
    threads = torch.get_num_threads()
    try:
        yield notebook_answers()
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("question", QUESTIONS)
def test_reference_passes_every_case(question):
    result = Grader(REPO / "authoring" / NOTEBOOK / "tests").check(
        question, {**vars(bpe), **vars(rotary)}
    )
    assert result.passed, result.report()


@pytest.mark.parametrize("question", QUESTIONS)
def test_model_solution_passes_every_case(question, answers):
    result = Grader(REPO / "authoring" / NOTEBOOK / "tests").check(question, answers)
    assert result.passed and result.score == result.possible, result.report()


def test_model_solution_agrees_with_the_reference(answers):
    text = load_corpus("pydoc").text[:40_000]
    pieces = dict(Counter(split_words(text)))
    merges = bpe.train_bpe(pieces, 400)
    assert answers["train_bpe"](pieces, 400) == merges
    rng = random.Random(0)
    unseen = load_corpus("pydoc").text[100_000:104_000] + "naïve 🙂 日本語"
    assert answers["encode"](unseen, merges) == bpe.encode(unseen, merges)
    ids = [rng.randrange(256 + len(merges)) for _ in range(300)]
    assert answers["decode"](ids, merges) == bpe.decode(ids, merges)
    x = torch.randn(2, 3, 11, 16, dtype=torch.float64)
    positions = torch.arange(40, 51)
    torch.testing.assert_close(
        answers["apply_rotary"](x, positions, 300.0), rotary.apply_rotary(x, positions, 300.0)
    )
    torch.manual_seed(0)
    attn = nn.MultiheadAttention(16, 4, batch_first=True)
    x = torch.randn(2, 9, 16)
    with torch.no_grad():
        first, cache = answers["rotary_self_attention"](attn, x[:, :5])
        expected_first, expected_cache = rotary.rotary_self_attention(attn, x[:, :5])
        rest, _ = answers["rotary_self_attention"](attn, x[:, 5:], cache)
        expected_rest, _ = rotary.rotary_self_attention(attn, x[:, 5:], expected_cache)
    torch.testing.assert_close(
        torch.cat([first, rest], 1), torch.cat([expected_first, expected_rest], 1)
    )


def test_notebook_imports_only_student_safe_helpers():
    imported = set()
    for node in ast.walk(ast.parse(TWIN.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    helpers = {name for name in imported if name.split(".")[0] == "tfcourse"}
    assert helpers and helpers <= STUDENT_SAFE, helpers - STUDENT_SAFE
    assert "tokenizers" not in imported  # the comparison lives in this test and in bench/


def test_split_words_covers_every_character():
    for text in (load_corpus("pydoc").text[:50_000], "naïve  café\n\n\t🙂 x_1 = 2**10; it's"):
        assert "".join(split_words(text)) == text


def agreement(text: str, num_merges: int) -> tuple[int, int, int, int]:
    """Shared merges, merges, and held-out token counts (ours, tokenizers')."""
    pytest.importorskip("tokenizers")
    import sys

    sys.path.insert(0, str(REPO / "bench"))
    try:
        from bpe_agreement import agreement as measure
    finally:
        sys.path.remove(str(REPO / "bench"))
    figures = measure(text, num_merges)
    return (
        figures["shared merges"],
        figures["merges"],
        figures["tokens (ours)"],
        figures["tokens (tokenizers)"],
    )


def test_bpe_agrees_with_tokenizers_on_the_documentation():
    shared, merges, ours, theirs = agreement(load_corpus("pydoc").text[:200_000], 1000)
    assert merges == 1000 and shared >= 990, (shared, merges)
    assert abs(ours - theirs) <= 0.005 * theirs, (ours, theirs)


@pytest.mark.skipif(not Path(SHAKESPEARE).is_file(), reason="no local copy of tiny Shakespeare")
def test_bpe_agrees_with_tokenizers_on_tiny_shakespeare():
    shared, merges, ours, theirs = agreement(SHAKESPEARE.read_text(), 1792)
    assert (shared, merges) == (1792, 1792)
    assert ours == theirs
