"""Near-identical answers: pairs of submissions, and submissions against the model solution,
whose answers to one question match once names, comments and spacing are normalised away.

An *answer* is the text of a solution cell; the cells of one question (its grade id) are
compared with each other only. Each answer is fingerprinted with copydetect's winnowing (as
MOSS does): code is tokenised by pygments and every name, string and comment is normalised
(``scores = q @ k`` and ``logits = query @ key  # QKᵀ`` give the same fingerprints), and
prose (written answers) is reduced to its lower-cased words. The release's version of the
cell (the stub, the given signature and docstring, the question's own text) is boilerplate
and never counts: its lines are dropped from every answer, and copydetect drops whatever
k-gram of it is left (given code reformatted), so an unanswered stub has no fingerprint.

A pair's score is copydetect's similarity: the share of an answer's fingerprinted text that
is also in the other, the larger of the two shares (an answer copied whole into a longer one
still scores high). Pairs at or above a threshold are reported: evidence for a human to read,
never a verdict, since short answers to a precise task can coincide by themselves.

Submitted notebooks are read as JSON data: nothing in them runs, unreadable files are
skipped and each cell is cut at :data:`MAX_CELL_CHARS`.
"""

from __future__ import annotations

import io
import itertools
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from copydetect import CodeFingerprint, compare_files

from tfcourse_instructor.grading.course import Course

MODEL = "model solution"
"""The name that stands for the model solution (``source/``) in a pair."""
DEFAULT_THRESHOLD = 0.5
"""Reported from this score up. Measured on the course's own answers: independently written
correct answers scored at most 0.2 against each other and the model solution, copies with
renamed names, comments and spacing 1.0, and the declared mutants and alternatives (the
model solution with one edit) 0.5 to 1.0 (median 0.96) where the edit left any of it."""
NOISE_CHARS = 25
"""copydetect's noise threshold k: matches shorter than this many characters of normalised
text are ignored (about two statements of code)."""
WINDOW = 1
"""The winnowing window: 1 keeps every k-gram. copydetect hashes with Python's ``hash``,
salted per process, so a wider window would select different k-grams, and give a pair near
the threshold a different score, on every run; answers are small enough to keep them all."""
MAX_NOTEBOOK_BYTES = 64 * 2**20
MAX_CELL_CHARS = 20_000
_SOLUTION_DELIMITER = re.compile(r"^\s*### (BEGIN|END) SOLUTION\s*$", re.M)


@dataclass(frozen=True)
class Question:
    """One solution cell of the release: where it is, what it answers, code or prose."""

    notebook: str
    cell: str
    """The solution cell's grade id."""
    question: str
    """The graded cell it answers: its own grade id (written answers) or the test cell's."""
    kind: str
    """"code" or "markdown"."""
    boilerplate: str
    """The cell as released (stub, given code, the question's text)."""


@dataclass(frozen=True)
class Answer:
    """One owner's answer to one question, as submitted and as compared."""

    owner: str
    text: str
    compared: str
    """The text the fingerprints were taken from (prose: its words)."""
    spans: tuple[tuple[int, int], ...] = ()
    """Where in :attr:`compared` the text shared with the other answer of a pair lies."""


@dataclass(frozen=True)
class Match:
    """Two near-identical answers to one question (``second`` may be the model solution)."""

    notebook: str
    question: str
    first: Answer
    second: Answer
    score: float
    shared_chars: int
    """Characters of normalised text the two answers share."""


def questions(course: Course, notebook: str) -> list[Question]:
    """Every solution cell of the release of ``notebook``, in order."""
    cells = _cells(course.release_dir / f"{notebook}.ipynb")
    found = []
    for index, (cell_type, meta, text) in enumerate(cells):
        if not meta.get("solution") or not isinstance(meta.get("grade_id"), str):
            continue
        answered = meta["grade_id"] if meta.get("grade") else _next_test(cells[index + 1 :])
        kind = "code" if cell_type == "code" else "markdown"
        found.append(Question(notebook, meta["grade_id"], answered or meta["grade_id"], kind, text))
    return found


def find_copies(
    course: Course, students: Iterable[str], threshold: float = DEFAULT_THRESHOLD
) -> list[Match]:
    """Pairs of ``students``, and of each student with the model solution, whose answers to
    one question score at least ``threshold``; highest score first."""
    students = sorted(students)
    matches = []
    for name in course.notebook_names():
        model = _answers(course.source_dir / f"{name}.ipynb", model=True)
        submitted = {
            student: _answers(course.submitted_dir / student / course.assignment / f"{name}.ipynb")
            for student in students
        }
        for question in questions(course, name):
            texts = {owner: answers.get(question.cell, "") for owner, answers in submitted.items()}
            texts[MODEL] = model.get(question.cell, "")
            matches += _question_matches(question, texts, threshold)
    return sorted(matches, key=_report_order)


def _report_order(match: Match) -> tuple:
    return -match.score, match.notebook, match.question, match.first.owner, match.second.owner


def fingerprint(text: str, kind: str, boilerplate: np.ndarray) -> CodeFingerprint | None:
    """copydetect's winnowed fingerprint of an answer without ``boilerplate`` hashes; None
    when nothing is left (an empty or unanswered cell)."""
    result = _fingerprint(text, kind, WINDOW, boilerplate)
    return result if result.hashes else None


def boilerplate_hashes(text: str, kind: str) -> np.ndarray:
    """Every k-gram hash of a released cell (no winnowing, as copydetect does for its
    boilerplate files)."""
    return np.array(sorted(_fingerprint(text, kind, 1, np.array([])).hashes), dtype=np.int64)


def _question_matches(question: Question, texts: dict[str, str], threshold: float) -> list[Match]:
    """The matches at or above ``threshold`` among the owners' answers to one question
    (``texts``: owner -> answer). Equal answers are fingerprinted and compared once: in a
    class where many answers coincide, that is most of the work."""
    boilerplate = boilerplate_hashes(question.boilerplate, question.kind)
    given = {line.strip() for line in question.boilerplate.splitlines()} - {""}
    prints = {
        text: fingerprint(_without_lines(text, given), question.kind, boilerplate)
        for text in set(texts.values())
    }
    owners = [owner for owner, text in texts.items() if prints[text] is not None]
    compared: dict[tuple[str, str], Comparison | None] = {}
    matches = []
    for first, second in itertools.combinations(sorted(owners, key=_model_last), 2):
        pair = texts[first], texts[second]
        if pair not in compared:
            compared[pair] = compare(prints[pair[0]], prints[pair[1]])
        found = compared[pair]
        if found is not None and found.score >= threshold:
            matches.append(
                Match(
                    question.notebook,
                    question.question,
                    Answer(first, pair[0], prints[pair[0]].raw_code, found.spans[0]),
                    Answer(second, pair[1], prints[pair[1]].raw_code, found.spans[1]),
                    found.score,
                    found.shared_chars,
                )
            )
    return matches


@dataclass(frozen=True)
class Comparison:
    """What two fingerprints share."""

    score: float
    """The larger of the two shares of normalised text found in the other answer."""
    shared_chars: int
    spans: tuple[tuple[tuple[int, int], ...], tuple[tuple[int, int], ...]]
    """Where the shared text lies in each compared text."""


def compare(first: CodeFingerprint, second: CodeFingerprint) -> Comparison | None:
    """copydetect's comparison of two fingerprints; None if they share nothing."""
    if not first.hashes & second.hashes:
        return None
    shared, similarities, slices = compare_files(first, second)
    return Comparison(float(max(similarities)), int(shared), (_spans(slices[0]), _spans(slices[1])))


def _model_last(owner: str) -> tuple[bool, str]:
    return owner == MODEL, owner


def _fingerprint(text: str, kind: str, window: int, boilerplate: np.ndarray) -> CodeFingerprint:
    code = kind == "code"
    compared = text if code else " ".join(re.findall(r"\w+", text.lower()))
    return CodeFingerprint(
        "answer.py" if code else "answer.txt",
        NOISE_CHARS,
        window,
        boilerplate,
        filter=code,
        language="python" if code else None,
        fp=io.StringIO(compared),
    )


def _without_lines(text: str, given: set[str]) -> str:
    """``text`` without the lines it shares with the release. Boilerplate hashes alone would
    leave the k-grams that straddle the given code and the answer (the end of every kept
    docstring followed by ``x = torch.``), and those match between any two answers."""
    return "\n".join(line for line in text.splitlines() if line.strip() not in given)


def _spans(slices: np.ndarray) -> tuple[tuple[int, int], ...]:
    if slices.size == 0:
        return ()
    return tuple((int(start), int(end)) for start, end in zip(slices[0], slices[1], strict=True))


def _answers(path: Path, model: bool = False) -> dict[str, str]:
    """Solution cells of the notebook at ``path`` by grade id (a duplicated id: its cells
    joined); the model's without the solution delimiters. Empty if the file is unreadable."""
    answers: dict[str, list[str]] = {}
    for _, meta, text in _cells(path):
        if meta.get("solution") and isinstance(meta.get("grade_id"), str):
            if model:
                text = _SOLUTION_DELIMITER.sub("", text)
            answers.setdefault(meta["grade_id"], []).append(text)
    return {cell: "\n".join(texts)[:MAX_CELL_CHARS] for cell, texts in answers.items()}


def _cells(path: Path) -> list[tuple[str, dict, str]]:
    """(cell type, nbgrader metadata, source) of every well-formed cell of the notebook at
    ``path``; no cells for a missing, huge or malformed file."""
    try:
        if path.stat().st_size > MAX_NOTEBOOK_BYTES:
            return []
        notebook = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return []
    cells = notebook.get("cells") if isinstance(notebook, dict) else None
    found = []
    for cell in cells if isinstance(cells, list) else []:
        if not isinstance(cell, dict) or not isinstance(cell.get("metadata"), dict):
            continue
        meta = cell["metadata"].get("nbgrader")
        source = cell.get("source")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)
        if isinstance(meta, dict) and isinstance(source, str):
            found.append((str(cell.get("cell_type")), meta, source[:MAX_CELL_CHARS]))
    return found


def _next_test(cells: list[tuple[str, dict, str]]) -> str | None:
    """The grade id of the first test cell among ``cells`` (the one below an answer)."""
    for _, meta, _ in cells:
        if meta.get("grade") and not meta.get("solution"):
            return meta.get("grade_id")
    return None
