"""Copy detection: near-identical answers are reported, independent ones and the release's
own text are not, and hostile notebooks are only ever read.

A small class of notebook 1 is built from the real release notebook: alice and bob wrote
scaled dot-product attention and the masks independently (both correct, both unlike the
model solution), carol copied alice's answers with other names, comments and spacing, dave
did the same with the model solution, erin handed the release in untouched, frank and grace
the stub with its signature joined on one line.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.similarity import copies, copies_report
from tfcourse_instructor.grading.similarity.copies import MODEL, find_copies
from tfcourse_instructor.grading.similarity.copies_report import (
    format_copies,
    report_copies,
    report_paths,
    write_copies_csv,
    write_copies_html,
)

from conftest import REPO, one_notebook_course, run_kit

NOTEBOOK = "01_attention"

SDPA_HEAD = '''def scaled_dot_product_attention(
    query: Tensor, key: Tensor, value: Tensor, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Attend from query (..., T_q, d_k) to key (..., T_k, d_k) / value (..., T_k, d_v).

    Returns the output (..., T_q, d_v) and the attention weights (..., T_q, T_k).
    """
'''
CAUSAL_HEAD = '''def causal_mask(size: int, device: torch.device | str | None = None) -> Tensor:
    """Boolean (size, size) mask, True where key j comes after query i (j > i)."""
'''
PADDING_HEAD = '''def padding_mask(lengths: Tensor, max_len: int) -> Tensor:
    """Boolean (B, max_len) mask, True at positions t >= lengths[b]; lengths has shape (B,)."""
'''

SDPA_ALICE = (
    SDPA_HEAD
    + """    d_k = query.shape[-1]
    logits = torch.matmul(query, key.transpose(-1, -2)) * d_k**-0.5
    if mask is not None:
        if mask.dtype is torch.bool:
            logits = logits.masked_fill(mask, -math.inf)
        else:
            logits = logits + mask
    # a row whose keys are all masked attends to nothing
    dead = (logits == -math.inf).all(dim=-1, keepdim=True)
    probs = F.softmax(torch.where(dead, torch.zeros_like(logits), logits), dim=-1)
    probs = torch.where(dead, torch.zeros_like(probs), probs)
    return torch.matmul(probs, value), probs
"""
)
SDPA_CAROL = (
    SDPA_HEAD
    + """    # scale by the head width
    width = query.shape[-1]
    s = torch.matmul(query,key.transpose(-1,-2))*width**-0.5

    if mask is not None:
        if mask.dtype is torch.bool:
            s = s.masked_fill(mask, -math.inf)   # blocked keys
        else:
            s = s + mask
    empty_row = (s == -math.inf).all(dim=-1, keepdim=True)
    attn = F.softmax(torch.where(empty_row, torch.zeros_like(s), s), dim=-1)
    attn = torch.where(empty_row, torch.zeros_like(attn), attn)

    return torch.matmul(attn, value), attn
"""
)
SDPA_BOB = (
    SDPA_HEAD
    + """    scale = 1.0 / math.sqrt(key.size(-1))
    energy = torch.einsum("...qd,...kd->...qk", query, key) * scale
    if mask is not None:
        blocked = mask if mask.dtype == torch.bool else torch.isneginf(mask)
        bias = torch.zeros_like(energy).masked_fill(blocked, float("-inf"))
        if mask.dtype != torch.bool:
            bias = bias + mask.masked_fill(blocked, 0.0)
        energy = energy + bias
    peak = torch.nan_to_num(energy.amax(dim=-1, keepdim=True), neginf=0.0)
    numerator = torch.exp(energy - peak)
    total = numerator.sum(dim=-1, keepdim=True)
    attention = numerator / torch.where(total > 0, total, torch.ones_like(total))
    output = torch.einsum("...qk,...kd->...qd", attention, value)
    return output, attention
"""
)
MASKS_ALICE = f"""{CAUSAL_HEAD}    steps = torch.arange(size, device=device)
    return steps[None, :] > steps[:, None]


{PADDING_HEAD}    batch = lengths.shape[0]
    columns = torch.arange(max_len, device=lengths.device).expand(batch, max_len)
    return columns >= lengths[:, None]
"""
MASKS_CAROL = f"""{CAUSAL_HEAD}    # positions 0..size-1
    idx = torch.arange(size, device=device)
    return idx[None,:] > idx[:,None]


{PADDING_HEAD}    n = lengths.shape[0]
    pos = torch.arange(max_len, device=lengths.device).expand(n, max_len)  # (B, max_len)
    return pos >= lengths[:, None]
"""
MASKS_BOB = f"""{CAUSAL_HEAD}    ones = torch.ones((size, size), device=device)
    return torch.triu(ones, diagonal=1).bool()


{PADDING_HEAD}    mask = torch.zeros(len(lengths), max_len, dtype=torch.bool, device=lengths.device)
    for row, length in enumerate(lengths.tolist()):
        mask[row, length:] = True
    return mask
"""
WHY_ALICE = """Each entry of q·k is a sum of d_k products of independent unit-variance terms, so
the variance of the score is d_k and its typical size grows like the square root of d_k. Large
scores make the softmax almost one-hot: one key gets nearly all the weight, and the gradient
through a saturated softmax is close to zero, so training stalls. Dividing by sqrt(d_k) keeps
the scores at unit variance."""
WHY_CAROL = """Every entry of q·k is a sum of d_k products of independent, unit variance terms,
so the variance of the score equals d_k and its typical size grows like the square root of d_k.
Big scores make the softmax nearly one-hot: one key receives almost all of the weight, and the
gradient through a saturated softmax is close to zero, so learning stalls. Dividing by
sqrt(d_k) keeps scores at unit variance."""
WHY_BOB = """The dot product adds up d_k terms, so its standard deviation grows as √d_k. Without
the factor, wide heads produce logits in the tens; softmax of such logits puts essentially all
mass on the largest one, and its Jacobian (diag(p) − ppᵀ) then vanishes, so almost no gradient
reaches the queries and keys. The scaling brings the logits back to order one."""


STUB_REFLOWED = (
    "def scaled_dot_product_attention(query: Tensor, key: Tensor, value: Tensor, "
    "mask: Tensor | None = None) -> tuple[Tensor, Tensor]:\n"
    '    """Attend from query (..., T_q, d_k) to key (..., T_k, d_k) / value (..., T_k, d_v).\n'
    "    Returns the output (..., T_q, d_v) and the attention weights (..., T_q, T_k).\n"
    '    """\n'
    "    # YOUR CODE HERE\n"
    "    raise NotImplementedError()\n"
)


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def solution_cell(folder: Path, grade_id: str) -> str:
    """The source of the cell ``grade_id`` of notebook 1 in ``folder`` (release or source)."""
    cell = next(
        c
        for c in _cells(folder / f"{NOTEBOOK}.ipynb")
        if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    )
    return "".join(cell["source"])


def model_copied() -> str:
    """The model solution of q1_sdpa with other names, a comment and other spacing."""
    text = solution_cell(REPO / "source" / NOTEBOOK, "sdpa")
    text = "\n".join(line for line in text.splitlines() if "### " not in line)
    for old, new in [("scores", "att"), ("weights", "probabilities"), ("blocked_rows", "dead")]:
        text = text.replace(old, new)
    return text.replace(
        "    if mask is not None:", "\n    # apply the mask\n    if mask  is not None :"
    )


def written(answer: str) -> str:
    """The released q1_why_scale cell with ``answer`` in place of YOUR ANSWER HERE."""
    release = solution_cell(REPO / "release" / NOTEBOOK, "q1_why_scale")
    return release.replace("YOUR ANSWER HERE", answer)


CLASS = {
    "alice": {"sdpa": SDPA_ALICE, "masks": MASKS_ALICE, "q1_why_scale": written(WHY_ALICE)},
    "bob": {"sdpa": SDPA_BOB, "masks": MASKS_BOB, "q1_why_scale": written(WHY_BOB)},
    "carol": {"sdpa": SDPA_CAROL, "masks": MASKS_CAROL, "q1_why_scale": written(WHY_CAROL)},
    "dave": {"sdpa": model_copied()},
    "erin": {},
    "frank": {"sdpa": STUB_REFLOWED},
    "grace": {"sdpa": STUB_REFLOWED.replace("    # YOUR CODE HERE\n", "").replace(", ", ",")},
}


def write_submission(course: Course, student: str, answers: dict[str, str]) -> Path:
    """Notebook 1 as released, with ``answers`` (grade id -> source) in its solution cells."""
    notebook = json.loads((course.release_dir / f"{NOTEBOOK}.ipynb").read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell["source"] = answers[grade_id]
    path = course.submitted_dir / student / course.assignment / f"{NOTEBOOK}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


def linked_course(root: Path) -> Course:
    """A course sharing the repository's source/ and release/ (read only), with its own
    submitted/."""
    root.mkdir(parents=True)
    (root / "nbgrader_config.py").touch()
    for folder in ("source", "release"):
        (root / folder).symlink_to(REPO / folder)
    return Course(root, NOTEBOOK)


@pytest.fixture(scope="module")
def small_class(tmp_path_factory) -> tuple[Course, list[copies.Match]]:
    course = linked_course(tmp_path_factory.mktemp("copies") / "course")
    for student, answers in CLASS.items():
        write_submission(course, student, answers)
    return course, find_copies(course, CLASS)


def pairs(matches: list[copies.Match]) -> set[tuple[str, str, str]]:
    return {(m.question, m.first.owner, m.second.owner) for m in matches}


def test_a_copy_with_other_names_comments_and_spacing_is_flagged(small_class):
    _, matches = small_class
    scores = {(m.question, m.first.owner, m.second.owner): m.score for m in matches}
    assert scores[("q1_sdpa", "alice", "carol")] == pytest.approx(1.0)
    assert scores[("q1_masks", "alice", "carol")] == pytest.approx(1.0)


def test_a_reworded_written_answer_is_flagged(small_class):
    _, matches = small_class
    assert ("q1_why_scale", "alice", "carol") in pairs(matches)


def test_independently_written_correct_answers_are_not_flagged(small_class):
    _, matches = small_class
    for question in ("q1_sdpa", "q1_masks", "q1_why_scale"):
        for first, second in [("alice", "bob"), ("bob", "carol"), ("alice", MODEL), ("bob", MODEL)]:
            assert (question, first, second) not in pairs(matches)


def test_a_renamed_copy_of_the_model_solution_is_flagged(small_class):
    _, matches = small_class
    assert ("q1_sdpa", "dave", MODEL) in pairs(matches)


def test_the_release_text_alone_is_never_a_match(small_class):
    """erin, frank and grace submitted the stub, reformatted or not: nothing to compare."""
    _, matches = small_class
    owners = {m.first.owner for m in matches} | {m.second.owner for m in matches}
    assert not owners & {"erin", "frank", "grace"}
    assert pairs(matches) == {
        ("q1_sdpa", "alice", "carol"),
        ("q1_masks", "alice", "carol"),
        ("q1_why_scale", "alice", "carol"),
        ("q1_sdpa", "dave", MODEL),
    }


def test_answers_without_the_release_lines_are_compared(small_class):
    """The given signature and docstring are not part of what two answers share."""
    _, matches = small_class
    match = next(m for m in matches if m.question == "q1_sdpa" and m.first.owner == "alice")
    assert "def scaled_dot_product_attention" in match.first.text
    assert "scaled_dot_product_attention" not in match.first.compared
    assert "Attend from query" not in match.second.compared


def test_the_threshold_decides_what_is_reported(small_class):
    course, matches = small_class
    written_score = next(m.score for m in matches if m.question == "q1_why_scale")
    assert written_score < 1.0
    above = find_copies(course, CLASS, threshold=written_score + 1e-6)
    assert ("q1_why_scale", "alice", "carol") not in pairs(above)
    assert ("q1_sdpa", "alice", "carol") in pairs(above)


def test_scores_are_the_same_in_every_process(small_class):
    """copydetect hashes with Python's salted str hash: the report must not depend on it."""
    course, _ = small_class
    script = (
        "import sys; from pathlib import Path; "
        "from tfcourse_instructor.grading.course import Course; "
        "from tfcourse_instructor.grading.similarity.copies import find_copies; "
        "print(sorted((m.question, m.first.owner, m.second.owner, round(m.score, 9)) for m in "
        f"find_copies(Course(Path(sys.argv[1]), {NOTEBOOK!r}), sys.argv[2:], threshold=0.01)))"
    )
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", script, str(course.root), *CLASS],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(result.stdout)
    assert len(outputs) == 1


def test_hostile_notebooks_are_read_as_data_and_capped(tmp_path, monkeypatch):
    course = linked_course(tmp_path / "course")
    monkeypatch.chdir(tmp_path)
    write_submission(course, "alice", {"sdpa": SDPA_ALICE})
    # carol's copy is buried in a cell far over the cap: the cut keeps what comes first.
    write_submission(course, "carol", {"sdpa": SDPA_CAROL + "#" + "x" * 10 * copies.MAX_CELL_CHARS})
    # code that would leave a file behind if anything ran it
    write_submission(course, "mallory", {"sdpa": SDPA_HEAD + "    open('ran', 'w')\n"})
    broken = {
        "garbage": b"\x00\xff not json",
        "a-list": b"[1, 2, 3]",
        "odd-cells": json.dumps(
            {
                "cells": [
                    1,
                    {"metadata": 5},
                    {"metadata": {"nbgrader": {"grade_id": 7}}, "source": 3},
                ]
            }
        ).encode(),
        "deep": b"[" * 100_000,
    }
    for student, content in broken.items():
        path = course.submitted_dir / student / course.assignment / f"{NOTEBOOK}.ipynb"
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    write_submission(course, "huge", {"sdpa": SDPA_ALICE, "masks": "#" + "y" * 2**21})
    monkeypatch.setattr(copies, "MAX_NOTEBOOK_BYTES", 2**20)
    students = ["alice", "carol", "mallory", "huge", *broken]

    matches = find_copies(course, students)

    assert pairs(matches) == {("q1_sdpa", "alice", "carol")}
    carol = next(m.second for m in matches)
    assert len(carol.text) == copies.MAX_CELL_CHARS
    assert not (tmp_path / "ran").exists()


def test_the_csv_has_both_answers_side_by_side_and_no_formulas(small_class, tmp_path):
    _, matches = small_class
    match = next(m for m in matches if m.question == "q1_sdpa" and m.first.owner == "alice")
    formula = copies.Answer("=HYPERLINK(1)", "=cmd|' /C calc'!A0", "")
    path = tmp_path / "copies.csv"
    write_copies_csv(
        [match, copies.Match(NOTEBOOK, "q1_sdpa", formula, match.second, 0.9, 30)], path
    )
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert rows[0]["student"] == "alice" and rows[0]["other"] == "carol"
    assert rows[0]["answer"] == SDPA_ALICE and rows[0]["other_answer"] == SDPA_CAROL
    assert float(rows[0]["score"]) == pytest.approx(1.0)
    assert rows[1]["student"] == "'=HYPERLINK(1)"
    assert rows[1]["answer"].startswith("'=cmd")


def test_the_html_report_escapes_answers_and_highlights_what_is_shared(small_class, tmp_path):
    _, matches = small_class
    match = next(m for m in matches if m.question == "q1_sdpa" and m.first.owner == "alice")
    hostile = copies.Answer(
        "<img src=x onerror=alert(1)>",
        "",
        "<script>alert(1)</script>" + match.first.compared,
        tuple((a + 25, b + 25) for a, b in match.first.spans),
    )
    path = tmp_path / "copies.html"
    write_copies_html(
        [match, copies.Match(NOTEBOOK, "q1_sdpa", hostile, match.second, 1.0, 9)], 0.5, path
    )
    page = path.read_text(encoding="utf-8")
    assert "<script" not in page and "<img" not in page
    assert "&lt;script&gt;" in page
    assert page.count("<mark>") >= 3
    assert re.search(r"<mark>[^<]*logits = torch\.matmul\(query, key\.transpose\(-1, -2\)\)", page)


def test_the_summary_is_one_line_naming_the_closest_pair_and_the_report(small_class):
    _, matches = small_class
    summary = format_copies(matches, 0.5, "copies/a.csv", "copies/a.html")
    assert "\n" not in summary
    assert summary.startswith("copies: 2 pair(s) share answers scoring 0.5 or more")
    assert "(most: alice ~ carol, 3 answers)" in summary
    assert "not a verdict" in summary and "copies/a.html and copies/a.csv" in summary
    assert "no two answers" in format_copies([], 0.5, "copies/a.csv", "copies/a.html")


def test_boilerplate_hashes_cover_the_whole_stub():
    release = solution_cell(REPO / "release" / NOTEBOOK, "sdpa")
    boilerplate = copies.boilerplate_hashes(release, "code")
    assert boilerplate.size > 0
    assert copies.fingerprint(release, "code", boilerplate) is None
    assert copies.fingerprint(release, "code", np.array([], dtype=np.int64)) is not None


def test_a_failed_comparison_leaves_no_stale_report(small_class, monkeypatch):
    course, _ = small_class
    assert "alice ~ carol, 3 answers" in report_copies(course, list(CLASS), 0.5)
    csv_path, page = report_paths(course)
    assert csv_path.is_file() and page.is_file()

    def broken(*args, **kwargs):
        raise ValueError("unexpected")

    monkeypatch.setattr(copies_report, "find_copies", broken)
    assert (
        report_copies(course, list(CLASS), 0.5) == "copies: not compared (ValueError: unexpected)"
    )
    assert not csv_path.exists() and not page.exists()


@pytest.mark.slow
def test_grade_reports_copies_beside_the_grades(tmp_path):
    """The kit's `grade` on a class of two who copied: the summary and copies.csv name the
    pair; a re-run with another --copy-threshold recomputes the report without re-grading."""
    started = time.monotonic()
    course = one_notebook_course(tmp_path / "course")
    for student in ("alice", "carol"):
        write_submission(course, student, {"sdpa": CLASS[student]["sdpa"]})

    result = run_kit(course, "grade", "--jobs", "2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "copies: 1 pair(s) share answers scoring" in result.stdout
    assert "(most: alice ~ carol, 1 answer)" in result.stdout
    csv_path, page = report_paths(course)
    with csv_path.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert [row[:5] for row in rows[1:]] == [[NOTEBOOK, "q1_sdpa", "alice", "carol", "1.000"]]
    assert "alice ~ carol" in page.read_text(encoding="utf-8")
    graded = time.monotonic()

    again = run_kit(course, "grade", "--jobs", "2", "--copy-threshold", "1.01")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "copies: no two answers to a question score 1.01 or more" in again.stdout
    assert csv_path.read_text(encoding="utf-8").count("\n") == 1
    print(f"graded in {graded - started:.0f} s, re-ran in {time.monotonic() - graded:.0f} s")
