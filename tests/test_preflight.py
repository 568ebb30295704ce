"""Pre-flight checks repair damaged notebooks as released and name each problem (no nbgrader
run: the notebooks are compared with the committed release of notebook 1)."""

from __future__ import annotations

import copy
import gc
import threading
import time

import nbformat
import pytest

from tfcourse.declarations import shortcuts
from tfcourse_instructor.grading.classroom.preflight import (
    prepare_notebook,
    scan_for_tampering,
    scan_own_cells,
)
from tfcourse_instructor.grading.selftest.samples import reference_notebooks

NOTEBOOK = "01_attention"


@pytest.fixture(scope="module")
def release(repo_course):
    return nbformat.read(repo_course[NOTEBOOK].release_dir / f"{NOTEBOOK}.ipynb", as_version=4)


@pytest.fixture
def answered(repo_course):
    return copy.deepcopy(reference_notebooks(repo_course[NOTEBOOK])[NOTEBOOK])


def graded_layout(notebook):
    """(grade id, cell type, source of locked cells) of every graded or locked cell, in order."""
    layout = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id"):
            source = cell.source if meta.get("locked") else None
            layout.append((meta["grade_id"], cell.cell_type, source))
    return layout


def prepared(tmp_path, notebook, release):
    path = tmp_path / f"{NOTEBOOK}.ipynb"
    nbformat.write(notebook, path)
    notebook, issues, substituted = prepare_notebook(path, release)
    assert not substituted
    return notebook, issues


def index(notebook, cell_id):
    return next(i for i, cell in enumerate(notebook.cells) if cell.get("id") == cell_id)


def test_an_intact_submission_passes_unchanged(tmp_path, answered, release):
    notebook, issues = prepared(tmp_path, answered, release)
    assert issues == []
    assert [c.source for c in notebook.cells] == [c.source for c in answered.cells]


def test_damaged_structure_is_restored_keeping_answers(tmp_path, answered, release):
    cells = answered.cells
    sdpa_answer = cells[index(answered, "sdpa")].source
    copied = copy.deepcopy(cells[index(answered, "sdpa")])
    copied.id = "copy"
    cells.insert(index(answered, "sdpa") + 1, copied)
    cells.insert(1, cells.pop(index(answered, "q1_heads")))
    mha = cells[index(answered, "mha")]
    cells[index(answered, "mha")] = nbformat.v4.new_markdown_cell(
        mha.source, metadata=mha.metadata, id="mha"
    )
    cells[index(answered, "q1_masks")].source = "print(4)"
    del cells[index(answered, "q1_sdpa")]

    notebook, issues = prepared(tmp_path, answered, release)
    assert graded_layout(notebook) == graded_layout(release)
    assert notebook.cells[index(notebook, "sdpa")].source == sdpa_answer
    assert notebook.cells[index(notebook, "mha")].source == mha.source
    text = "\n".join(str(issue) for issue in issues)
    for words in ("appears 2 times", "moved", "changed to markdown", "'q1_masks' was edited"):
        assert words in text
    assert "'q1_sdpa' was deleted" in text
    assert len({cell.id for cell in notebook.cells}) == len(notebook.cells)


@pytest.mark.parametrize(
    ("content", "words"), [(None, "missing"), ("{ not json", "not a valid notebook")]
)
def test_an_unreadable_notebook_is_graded_as_released(tmp_path, release, content, words):
    path = tmp_path / f"{NOTEBOOK}.ipynb"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    notebook, issues, substituted = prepare_notebook(path, release)
    assert substituted
    note, *cells = notebook.cells
    assert [c.source for c in cells] == [c.source for c in release.cells]
    assert note.cell_type == "markdown" and note.source.startswith("**Not graded: ")
    assert "0 points" in note.source and ("no `" in note.source) == (content is None)
    assert len(issues) == 1 and words in str(issues[0])


def test_huge_stored_outputs_are_cleared_and_reported(tmp_path, answered, release):
    cell = answered.cells[index(answered, "sdpa")]
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 6_000_000)]
    notebook, issues = prepared(tmp_path, answered, release)
    assert all(not c.get("outputs") for c in notebook.cells)
    assert "huge stored outputs" in str(issues)


def test_code_that_patches_grading_is_flagged(answered):
    assert scan_for_tampering(NOTEBOOK, answered) == []
    answered.cells.append(
        nbformat.v4.new_code_cell("grader.check = lambda q: 3\nimport os\nos._exit(0)")
    )
    found = "\n".join(str(issue) for issue in scan_for_tampering(NOTEBOOK, answered))
    assert "grader.check" in found and "os._exit" in found


class _Yields:
    """Garbage in a reference cycle whose finalizer lets other threads run. The garbage
    collector may free it in the middle of an ``ast.parse``, which is how the parses of two
    grading threads interleave."""

    def __init__(self) -> None:
        self.cycle = self

    def __del__(self) -> None:
        time.sleep(0.0005)


def test_tampering_scans_in_parallel_threads_do_not_break_each_other(answered):
    # CPython 3.11 keeps one recursion counter per interpreter for building ASTs: parses that
    # interleave in two threads raise "SystemError: AST constructor recursion depth
    # mismatch", which would leave a submission ungraded. Without the kit's lock this
    # scenario raised it in every one of several runs.
    helpers = "\n".join(f"def helper_{i}(x):\n    return [y for y in x if y]" for i in range(300))
    answered.cells.append(nbformat.v4.new_code_cell(helpers))  # long parses: wide windows
    errors: list[BaseException] = []

    def scan() -> None:
        for _ in range(25):
            for _ in range(20):
                _Yields()
            try:
                scan_for_tampering(NOTEBOOK, answered)
            except SystemError as error:
                errors.append(error)

    threshold = gc.get_threshold()
    gc.set_threshold(50)  # collect often, so that collections land inside parses
    try:
        threads = [threading.Thread(target=scan) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        gc.set_threshold(*threshold)
    assert errors == []


def test_a_cell_of_the_students_own_that_reaches_a_forbidden_call_is_flagged(
    repo_course, answered, release
):
    rules = {
        path.stem: shortcuts.forbidden_calls(path.read_text())
        for path in repo_course[NOTEBOOK].tests_dir.glob("q1_*.py")
    }
    assert scan_own_cells(NOTEBOOK, answered, release, rules) == []  # given cells only
    answered.cells.insert(
        3,
        nbformat.v4.new_code_cell(
            "def attend(q, k, v, how=F.__dict__.get('scaled_dot_' + 'product_attention')):\n"
            "    return how(q, k, v)\n"
            "# F.scaled_dot_product_attention in a comment is no call\n"
        ),
    )
    answered.cells.insert(4, nbformat.v4.new_code_cell("print('my own notes')"))
    found = [str(issue) for issue in scan_own_cells(NOTEBOOK, answered, release, rules)]
    assert found and all("possible shortcut, read the code" in line for line in found), found
    assert any("F.scaled_dot_product_attention, which q1_sdpa forbids" in line for line in found)
