"""Find graded answers in a folder: what must never reach a student.

The answers of a course are

- the code of its graded tasks: every function or method of a source notebook's solution
  cells that holds a solution region, and every function or method of the instructor-side
  references (``tfcourse/reference/``);
- its hidden test cases (from the full test files);
- its written model answers and rubrics (the solution regions of markdown cells).

Code is matched on a *normalised* form, so renaming does not hide it: the function's AST
without its name, docstring, decorators and annotations, every variable and argument renamed
by order of first use (attribute names, the API a body calls, are kept). Bodies smaller than
:data:`MIN_NODES` are too generic to tell an answer from given code and are left out. Text
(test case names, lines of model answers) is matched after collapsing whitespace.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

import tfcourse_instructor.reference
from tfcourse_instructor.grading.build.public_tests import case_name, hidden_cases
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.schedule import assignment_names

MIN_NODES = 15
"""Smallest normalised function (in AST nodes) that counts as an answer."""
MIN_PHRASE = 40
"""Shortest line of a model answer or hidden case name that is looked for as text."""
BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
REFERENCE = Path(tfcourse_instructor.reference.__file__).parent
"""The instructor's reference implementations."""
TEXT_SUFFIXES = {".py", ".ipynb", ".md", ".txt", ".toml", ".cfg", ".json", ".html"}


@dataclass
class Answers:
    """The fingerprints of a course's graded answers; :meth:`find` looks for them."""

    code: dict[str, str] = field(default_factory=dict)
    """Normalised function -> where the answer comes from."""
    phrases: dict[str, str] = field(default_factory=dict)
    """Whitespace-collapsed text -> where it comes from."""

    @classmethod
    def of(cls, root: Path) -> Answers:
        """The answers of every assignment of the course at ``root``, released or not: its
        source notebooks, the references and the full tests."""
        courses = [Course(root, name) for name in assignment_names(root)]
        answers = cls()
        given: set[str] = set()
        for path in sorted(p for course in courses for p in course.source_dir.glob("*.ipynb")):
            given |= answers._add_notebook(path)
        for module in (module for course in courses for module in course.given_modules()):
            given |= fingerprints(module.read_text(encoding="utf-8"))
        # A reference may repeat code the notebooks give (a model students use, not write).
        for path in sorted(REFERENCE.glob("*.py")):
            for fingerprint in fingerprints(path.read_text(encoding="utf-8")) - given:
                answers.code.setdefault(fingerprint, f"reference {path.name}")
        for path in sorted(p for course in courses for p in course.tests_dir.glob("*.py")):
            for case in hidden_cases(path.read_text(encoding="utf-8")):
                where = f"hidden case {case.name} of {path.name}"
                for fingerprint in fingerprints(ast.unparse(case)):
                    answers.code.setdefault(fingerprint, where)
                if name := case_name(case):
                    answers._add_phrase(name, where)
        return answers

    def find(self, folder: Path) -> list[Leak]:
        """Every answer found in the files under ``folder``."""
        leaks = []
        for path in sorted(folder.rglob("*")):
            if not path.is_file() or path.suffix not in TEXT_SUFFIXES:
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            shown = path.relative_to(folder)
            cells = _cells_of(text) if path.suffix == ".ipynb" else []
            sources = [text] if path.suffix == ".py" else [c.source for c in cells if c.code]
            for code in sources:
                leaks += [
                    Leak(shown, "code", self.code[fingerprint])
                    for fingerprint in fingerprints(code)
                    if fingerprint in self.code
                ]
            flat = _collapse("\n".join(c.source for c in cells) if cells else text)
            leaks += [
                Leak(shown, "text", where)
                for phrase, where in self.phrases.items()
                if phrase in flat
            ]
        return leaks

    def _add_notebook(self, path: Path) -> set[str]:
        """Add the solutions of a source notebook; return the fingerprints of its given code."""
        notebook = nbformat.read(path, as_version=4)
        given: set[str] = set()
        for cell in notebook.cells:
            if not cell.metadata.get("nbgrader", {}).get("solution") or BEGIN not in cell.source:
                if cell.cell_type == "code":
                    given |= fingerprints(cell.source)
                continue
            where = f"solution {cell.metadata['nbgrader']['grade_id']} of {path.name}"
            if cell.cell_type == "markdown":
                for line in _solution_lines(cell.source):
                    self._add_phrase(line.lstrip("#*>- ").strip(), where)
                continue
            for function in _functions(cell.source):
                segment = ast.get_source_segment(cell.source, function) or ""
                fingerprint = normalised(function)
                if not fingerprint:
                    continue
                if BEGIN in segment or _inside_region(cell.source, function):
                    self.code.setdefault(fingerprint, where)
                else:  # given code around the answer, e.g. an __init__ the task does not ask for
                    given.add(fingerprint)
        return given

    def _add_phrase(self, text: str, where: str) -> None:
        phrase = _collapse(text)
        if len(phrase) >= MIN_PHRASE:
            self.phrases.setdefault(phrase, where)


@dataclass(frozen=True)
class Leak:
    """A graded answer found in a file."""

    path: Path
    kind: str
    """"code" (a normalised function) or "text" (a hidden case name, a model answer line)."""
    source: str
    """Which answer it is."""

    def __str__(self) -> str:
        return f"{self.path}: {self.kind} of {self.source}"


def fingerprints(source: str) -> set[str]:
    """The normalised form of every function and method of ``source`` large enough to
    count; an empty set when ``source`` is not Python."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    found = (normalised(node) for node in ast.walk(tree) if isinstance(node, _FUNCTIONS))
    return {fingerprint for fingerprint in found if fingerprint}


def normalised(function: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """``function`` as a name-independent AST dump, or "" when it is smaller than
    :data:`MIN_NODES`."""
    copy = ast.parse(ast.unparse(function)).body[0]
    assert isinstance(copy, _FUNCTIONS)
    _Renamer().visit(copy)
    if sum(1 for _ in ast.walk(copy)) < MIN_NODES:
        return ""
    return ast.dump(copy, annotate_fields=False)


_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


class _Renamer(ast.NodeTransformer):
    """Renames variables and arguments by order of first use; drops annotations."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def _name(self, name: str) -> str:
        return self.names.setdefault(name, f"v{len(self.names)}")

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self._name(node.id)
        return node

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.arg, node.annotation = self._name(node.arg), None
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        self.generic_visit(node)
        if node.value is None:
            return ast.Pass()
        return ast.Assign(targets=[node.target], value=node.value, lineno=node.lineno)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.FunctionDef:
        node.name, node.returns, node.decorator_list = self._name(node.name), None, []
        if node.body and _is_docstring(node.body[0]) and len(node.body) > 1:
            node.body = node.body[1:]
        self.generic_visit(node)
        return node


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


def _functions(source: str) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    yield from (node for node in ast.walk(tree) if isinstance(node, _FUNCTIONS))


def _inside_region(source: str, function: ast.AST) -> bool:
    """True when ``function`` lies between a BEGIN and an END SOLUTION line."""
    lines = source.split("\n")
    above = lines[: function.lineno - 1]  # type: ignore[attr-defined]
    begins = sum(BEGIN in line for line in above)
    ends = sum(END in line for line in above)
    return begins > ends


def _solution_lines(source: str) -> Iterator[str]:
    inside = False
    for line in source.split("\n"):
        if BEGIN in line:
            inside = True
        elif END in line:
            inside = False
        elif inside:
            yield line


@dataclass(frozen=True)
class _Cell:
    source: str
    code: bool


def _cells_of(text: str) -> list[_Cell]:
    """The cells of a notebook file (none when it does not parse)."""
    try:
        cells = json.loads(text).get("cells", [])
    except (json.JSONDecodeError, AttributeError):
        return []
    return [
        _Cell("".join(cell.get("source", "")), cell.get("cell_type") == "code") for cell in cells
    ]


def _collapse(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()
