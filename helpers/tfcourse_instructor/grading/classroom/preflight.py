"""Pre-flight checks: make each submitted notebook safe for nbgrader, and say what was fixed.

A submission reaches nbgrader only through :func:`prepare_notebook`, which composes one
small step per kind of damage, each returning the
:class:`~tfcourse_instructor.grading.submission.issues.Issue` it found:

- :func:`load` - a missing notebook, or a file that is not a valid notebook, is replaced by
  the release notebook (that notebook scores 0; the other notebooks are graded as usual);
- :func:`clear_outputs` - huge stored outputs are dropped and reported (the others are
  what the feedback shows: :mod:`tfcourse_instructor.grading.submission.shown_outputs`);
- :func:`deduplicate` - a grade id that appears more than once (a copied cell) would make
  nbgrader abort the whole class: the copies become ordinary cells;
- :func:`restore_structure` - deleted, moved or retyped graded cells and edited locked
  cells are put back as released, keeping the student's answers and extra cells; nbgrader's
  own ``OverwriteCells`` restores only the text, type and points of cells still present;
- :func:`scan_for_tampering` - code that reassigns grading objects or library attributes,
  exits the kernel or reads test files is reported for a grader to read; so is markdown
  holding scripts (:func:`scan_markdown`), and a cell of the student's own that calls what
  a question of the notebook forbids (:func:`scan_own_cells`).
"""

from __future__ import annotations

import ast
import json
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import nbformat
from nbformat.notebooknode import NotebookNode

from tfcourse.declarations import shortcuts
from tfcourse_instructor.grading.submission.issues import Issue

HUGE_OUTPUT_BYTES = 5 * 2**20
SUBSTITUTED_NOTE_ID = "tfcourse-not-graded"
"""The note that heads a release notebook graded in place of an unreadable submission."""
ACTIVE_HTML = re.compile(r"<\s*(script|iframe|object|embed)\b|\bon[a-z]+\s*=|javascript:", re.I)
# Names whose mention in a submission is worth a grader's look.
SUSPICIOUS_NAMES = {"builtins", "__builtins__", "setattr", "delattr", "_exit", "modules"}
SUSPICIOUS_TEXT = ("NBGRADER", "tfcourse_instructor.grading", "tests/", "tests\\")
# Submissions are checked in parallel threads, and CPython (3.11 at least) keeps one
# recursion counter per interpreter while it builds an AST: parses that interleave (a
# garbage collection inside one lets another thread run) raise "SystemError: AST constructor
# recursion depth mismatch". One parse at a time.
_PARSE_LOCK = threading.Lock()


class Prepared(NamedTuple):
    """A notebook made safe to autograde, and what pre-flight found on the way."""

    notebook: NotebookNode
    issues: list[Issue]
    substituted: bool = False
    """The submitted file could not be read: ``notebook`` is the release in its place."""


def prepare_notebook(
    path: Path, release: NotebookNode, rules: Mapping[str, Sequence[str]] | None = None
) -> Prepared:
    """The notebook at ``path`` made safe to autograde, and the issues found on the way;
    ``rules``: what each question forbids (question -> qualified names). A notebook that
    could not be read comes back as the release (see :func:`load`), with one issue."""
    name = path.stem
    notebook, issues = load(path, release)
    if issues:
        return Prepared(notebook, issues, substituted=True)
    for step in (clear_outputs, deduplicate):
        issues += step(name, notebook)
    notebook, restored = restore_structure(name, notebook, release)
    scans = scan_for_tampering(name, notebook) + scan_markdown(name, notebook)
    scans += scan_check_outputs(name, notebook)
    scans += scan_own_cells(name, notebook, release, rules or {})
    return Prepared(notebook, issues + restored + scans)


def load(path: Path, release: NotebookNode) -> tuple[NotebookNode, list[Issue]]:
    """Read ``path``; a missing or unreadable notebook becomes a copy of the release that
    opens with a note saying so (the student's feedback and formgrader show it), and the
    one issue that names it."""
    name = path.stem
    if not path.is_file():
        problem = "notebook missing: graded as the unanswered release notebook (0 points)"
        said = f"You handed in no `{path.name}`"
        return _release_in_place(release, said), [Issue(name, problem)]
    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # nbformat raises many kinds on a malformed file
        problem = (
            f"not a valid notebook ({type(error).__name__}: {str(error)[:120]}): graded as "
            "the unanswered release notebook (0 points)"
        )
        said = (
            f"The `{path.name}` you handed in is not a notebook file the grader can read "
            f"({type(error).__name__})"
        )
        return _release_in_place(release, said), [Issue(name, problem)]
    return notebook, []


def _release_in_place(release: NotebookNode, said: str) -> NotebookNode:
    """A copy of ``release`` headed by a note: ``said``, and what was graded instead."""
    notebook = _copy(release)
    note = (
        f"**Not graded: {said}.** What follows is the blank notebook as released, graded in "
        "its place: 0 points. If you think this is wrong, ask your instructor."
    )
    notebook.cells.insert(0, nbformat.v4.new_markdown_cell(note, id=SUBSTITUTED_NOTE_ID))
    return notebook


def clear_outputs(name: str, notebook: NotebookNode) -> list[Issue]:
    """Drop the stored outputs if they are huge, and say so. (Others stay: the feedback
    shows them; nbgrader clears them before it runs the notebook.)"""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    size = sum(len(json.dumps(cell.get("outputs", []))) for cell in code)
    if size <= HUGE_OUTPUT_BYTES:
        return []
    for cell in code:
        cell.outputs, cell.execution_count = [], None
    return [Issue(name, f"huge stored outputs ({size / 2**20:.0f} MB): cleared")]


def deduplicate(name: str, notebook: NotebookNode) -> list[Issue]:
    """Keep the grade id on the first cell that carries it; later copies become ordinary."""
    counts = Counter(_grade_id(cell) for cell in notebook.cells if _grade_id(cell))
    seen: set[str] = set()
    for cell in notebook.cells:
        grade_id = _grade_id(cell)
        if grade_id and grade_id in seen:
            cell.metadata.pop("nbgrader", None)
        elif grade_id:
            seen.add(grade_id)
    return [
        Issue(name, f"cell {gid!r} appears {n} times: the first is graded, copies run as ordinary")
        for gid, n in counts.items()
        if n > 1
    ]


def restore_structure(
    name: str, notebook: NotebookNode, release: NotebookNode
) -> tuple[NotebookNode, list[Issue]]:
    """Rebuild ``notebook`` on the release's graded cells, in the release's order.

    Locked cells come from the release (with the outputs the student's run left in them, when
    unedited); answer cells keep the student's text with the release's metadata and cell
    type; a deleted graded cell is put back as released. Every other cell of the student
    stays after the graded cell it followed.
    """
    released = {_grade_id(cell): cell for cell in release.cells if _grade_id(cell)}
    leading: list[NotebookNode] = []
    answers: dict[str, NotebookNode] = {}
    trailing: dict[str, list[NotebookNode]] = {}
    current = leading
    for cell in notebook.cells:
        grade_id = _grade_id(cell)
        if grade_id in released and grade_id not in answers:
            answers[grade_id] = cell
            current = trailing.setdefault(grade_id, [])
        else:
            cell.metadata.pop("nbgrader", None)  # unknown grade ids are not graded
            current.append(cell)

    issues = []
    order = [gid for gid in released if gid in answers]
    if order != list(answers):
        issues.append(Issue(name, "graded cells were moved: put back in the released order"))
    cells = list(leading)
    for grade_id, original in released.items():
        cell = answers.get(grade_id)
        if cell is None:
            issues.append(Issue(name, f"cell {grade_id!r} was deleted: restored as released"))
            cells.append(_copy(original))
            continue
        if original.metadata["nbgrader"].get("locked"):
            restored = _copy(original)
            if cell.source != original.source or cell.cell_type != original.cell_type:
                issues.append(Issue(name, f"locked cell {grade_id!r} was edited: restored"))
            elif cell.cell_type == "code":  # what the student's own run showed there
                restored.outputs = cell.get("outputs", [])
            cells.append(restored)
        else:
            if cell.cell_type != original.cell_type:
                issues.append(
                    Issue(
                        name,
                        f"cell {grade_id!r} was changed to {cell.cell_type}: "
                        f"turned back into {original.cell_type}",
                    )
                )
            cells.append(_retyped(cell, original))
        cells.extend(trailing.get(grade_id, []))
    notebook.cells = _with_unique_ids(cells)
    return notebook, issues


def scan_for_tampering(name: str, notebook: NotebookNode) -> list[Issue]:
    """Report student code that assigns attributes of imported modules or of ``grader``,
    rebinds ``grader``, or mentions exits, builtins or test files."""
    cells = [
        cell
        for cell in notebook.cells
        if cell.cell_type == "code" and not cell.metadata.get("nbgrader", {}).get("locked")
    ]
    trees = []
    for cell in cells:
        try:
            with _PARSE_LOCK:
                trees.append(ast.parse(cell.source))
        except SyntaxError:
            continue  # reported by the run itself
    imported = {"grader"}
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                imported.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    found: list[str] = []
    for tree in trees:
        for node in ast.walk(tree):
            found.extend(_suspicious(node, imported))
    return [
        Issue(name, f"possible tampering, read the code: {what}") for what in dict.fromkeys(found)
    ]


def scan_check_outputs(name: str, notebook: NotebookNode) -> list[Issue]:
    """Report test cells whose stored outputs are not what ``grader.check`` shows (a report
    headed by the question): written by hand. They score nothing (the kit writes the
    graded outputs), but a grader should know."""
    issues = []
    for cell in notebook.cells:
        question = shortcuts.checked_question(cell.source) if cell.cell_type == "code" else None
        if question is None:
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") not in ("execute_result", "display_data"):
                continue
            text = output.get("data", {}).get("text/plain", "")
            if not "".join(text).startswith(f"{question}:"):
                issues.append(
                    Issue(
                        name,
                        f"possible tampering, read the code: the stored output of the check "
                        f"of {question} is not a check report",
                    )
                )
                break
    return issues


def scan_own_cells(
    name: str, notebook: NotebookNode, release: NotebookNode, rules: Mapping[str, Sequence[str]]
) -> list[Issue]:
    """Report code cells of the student's own (neither given nor answer cells) that call what
    a question of the notebook forbids. A question's reading covers its answer cells, and
    calling PyTorch to compare with one's own answer is fair, so these cost no point: the
    grader reads whether the answer uses them."""
    given = {cell.source for cell in release.cells if cell.cell_type == "code"}
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    own = [c.source for c in code if not c.metadata.get("nbgrader") and c.source not in given]
    questions = [q for cell in release.cells if (q := shortcuts.checked_question(cell.source))]
    issues = []
    for question in questions if own else []:
        with _PARSE_LOCK:
            found = shortcuts.find_shortcuts(own, [c.source for c in code], rules.get(question, ()))
        names = sorted(shortcuts.short_name(n) for n in found if n != shortcuts.COMPUTED)
        if shortcuts.COMPUTED in found:
            names.append("a name it computes at run time")
        if names:
            issues.append(
                Issue(
                    name,
                    f"possible shortcut, read the code: a cell of the student's own reaches "
                    f"{', '.join(names)}, which {question} forbids (does its answer use it?)",
                )
            )
    return issues


def scan_markdown(name: str, notebook: NotebookNode) -> list[Issue]:
    """Report markdown that would run code in a browser (feedback pages show it inert)."""
    cells = [cell for cell in notebook.cells if cell.cell_type == "markdown"]
    if not any(ACTIVE_HTML.search(cell.source) for cell in cells):
        return []
    return [Issue(name, "markdown with scripts or event handlers: shown inert in feedback")]


def _suspicious(node: ast.AST, imported: set[str]) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign | ast.Delete):
        targets = list(node.targets)
    elif isinstance(node, ast.AugAssign | ast.AnnAssign):
        targets = [node.target]
    found = []
    for target in targets:
        for part in ast.walk(target):
            if isinstance(part, ast.Attribute) and _root(part) in imported:
                found.append(f"assigns {ast.unparse(part)}")
            elif isinstance(part, ast.Name) and part.id in {"grader", "Grader", "AssertionError"}:
                found.append(f"rebinds {part.id}")
    if isinstance(node, ast.Name | ast.Attribute):
        label = node.id if isinstance(node, ast.Name) else node.attr
        if label in SUSPICIOUS_NAMES:
            found.append(f"uses {ast.unparse(node)}")
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and any(text in node.value for text in SUSPICIOUS_TEXT)
    ):
        found.append(f"mentions {node.value[:60]!r}")
    return found


def _root(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Call):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else ""


def _grade_id(cell: NotebookNode) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _copy(node: NotebookNode) -> NotebookNode:
    return nbformat.from_dict(json.loads(json.dumps(node)))


def _retyped(cell: NotebookNode, original: NotebookNode) -> NotebookNode:
    """The student's text in a cell of the released type, with the released metadata."""
    metadata = _copy(original.metadata)
    if original.cell_type == "code":
        return nbformat.v4.new_code_cell(cell.source, metadata=metadata, id=original.id)
    return nbformat.v4.new_markdown_cell(cell.source, metadata=metadata, id=original.id)


def _with_unique_ids(cells: list[NotebookNode]) -> list[NotebookNode]:
    seen: set[str] = set()
    for number, cell in enumerate(cells):
        if not cell.get("id") or cell.id in seen:
            cell.id = f"cell-{number}-copy"
        seen.add(cell.id)
    return cells
