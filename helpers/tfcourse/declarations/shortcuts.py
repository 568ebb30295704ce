"""Forbidden shortcuts: what a question's solution may not call, found in its code.

A question's test file may declare, at module level, the calls its solution must not make::

    forbidden = [
        "torch.nn.functional.scaled_dot_product_attention",
        "tfcourse_instructor.reference",
    ]

Each entry is a qualified name: a function, a class (building one is a call) or a whole
module (anything in it). The test file is public, so students can read the rule; the task
text states it too.

:func:`find_shortcuts` reads the solution's code without running it. A name is resolved
through the imports and plain assignments of the whole notebook (``import
torch.nn.functional as F`` then ``F.scaled_dot_product_attention``; ``from torch.nn import
functional``; ``alias = F.scaled_dot_product_attention``), through ``getattr`` with a
literal (or literals joined with ``+``), ``importlib.import_module``, ``__import__``,
``sys.modules[...]`` and ``vars(...)[...]``/``__dict__[...]`` (or their ``.get(...)``). A
lookup the code computes at run time is itself a finding when it could reach a forbidden
name: ``getattr`` or a namespace's ``.get`` with a computed name on a module that holds one,
``__import__`` or ``import_module`` of a computed module, and ``eval``, ``exec`` or
``compile`` (code the reading cannot see). Where the rule forbids a function of PyTorch,
PyTorch's internal entry points (``torch.ops``, ``torch._C``: the same kernels under other
names) are findings too. A name the tests call counts
when the notebook leaves it bound to a forbidden callable (an import below the answer). Names
in comments and strings are not calls. What the solution calls through code outside its
cells is recorded at run time (:mod:`tfcourse.declarations.callwatch`).

Which code is the solution of a question: when graded, the code cells marked as solutions
(nbgrader ``"solution": true``) between the previous test cell and the question's test cell
(:func:`solution_cells`); in the notebook, where the cells' metadata is not at hand, the
last run of each cell that defines a name the question's tests use (:func:`history_cells`).
Both select the same cells in a notebook whose answers stay in their answer cells.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tfcourse.declarations.hidden_points import module_constant

FORBIDDEN_NAME = "forbidden"
_CHECK_CALL = re.compile(r"""^\s*grader\.check\(\s*(["'])(\w+)\1\s*\)\s*$""")
_RUNS_TEXT = {
    f"{prefix}{name}" for prefix in ("", "builtins.") for name in ("eval", "exec", "compile")
}
_TORCH_INTERNALS = ("torch.ops", "torch._C")
"""Where PyTorch's public functions are reachable under other names."""
_LOOKUPS = ("get", "pop", "setdefault", "__getitem__")
_SHORT = (("torch.nn.functional.", "F."), ("torch.nn.", "nn."))
COMPUTED = "<computed>"
"""A finding: a lookup whose name the code computes, where it could reach a forbidden name."""


def forbidden_calls(test_source: str) -> tuple[str, ...]:
    """The qualified names a test file's ``forbidden = [...]`` declares (none without one)."""
    names = module_constant(test_source, FORBIDDEN_NAME)
    if names is None:
        return ()
    if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{FORBIDDEN_NAME} must list qualified names (strings)")
    return tuple(names)


def names_tested(test_source: str) -> list[str]:
    """The notebook names a test file's cases take as arguments, in order of appearance."""
    names: list[str] = []
    for node in ast.parse(test_source).body:
        if isinstance(node, ast.FunctionDef) and node.decorator_list:
            names += [a.arg for a in node.args.args if a.arg != "env" and a.arg not in names]
    return names


def short_name(name: str) -> str:
    """``name`` as the notebooks spell it (``F.``, ``nn.``)."""
    for prefix, short in _SHORT:
        if name.startswith(prefix):
            return short + name[len(prefix) :]
    return name


def verdict(question: str, found: Iterable[str]) -> str:
    """The one feedback line for a solution that calls what ``question`` forbids ("" if not)."""
    found = set(found)
    names = sorted({short_name(name) for name in found - {COMPUTED}})
    parts = [f"calls {', '.join(names)}"] if names else []
    if COMPUTED in found:
        parts.append("looks up a name it computes at run time (getattr or import)")
    if not parts:
        return ""
    return f"{question}: your solution {' and '.join(parts)}, which this question forbids"


def matches(name: str, forbidden: Iterable[str]) -> str | None:
    """The entry of ``forbidden`` that covers the qualified ``name`` (itself or a module
    above it), or None."""
    for entry in forbidden:
        if name == entry or name.startswith(entry + "."):
            return entry
    return None


def find_shortcuts(
    solution: Sequence[str],
    context: Sequence[str],
    forbidden: Sequence[str],
    tested: Iterable[str] = (),
) -> list[str]:
    """The forbidden entries the cells ``solution`` reach, and :data:`COMPUTED` when they
    compute a lookup that could reach one; names resolve through the imports and assignments
    of ``context`` (the notebook's cells above, in order) and of ``solution``. A name in
    ``tested`` (what the tests call) that ``context`` leaves bound to a forbidden entry counts
    too: an import in another cell must not replace the answer."""
    if not forbidden:
        return []
    aliases: dict[str, str] = {}
    for source in context:
        tree = _parse(source)
        if tree is not None:
            _Aliases(aliases).visit(tree)
    found = [
        entry
        for entry in (matches(aliases[name], forbidden) for name in tested if name in aliases)
        if entry is not None
    ]
    for source in solution:
        tree = _parse(source)
        if tree is not None:
            _Aliases(aliases).visit(tree)
            found += _Finder(aliases, forbidden).findings(tree)
    return sorted(set(found))


@dataclass(frozen=True)
class Cell:
    """What :func:`solution_cells` needs of a notebook cell."""

    source: str
    code: bool
    solution: bool
    test: bool


def solution_cells(cells: Sequence[Cell], question: str) -> tuple[list[str], list[str]]:
    """The sources of ``question``'s solution cells in a notebook, and of every code cell
    above its test cell (the context its names resolve in)."""
    solution: list[str] = []
    context: list[str] = []
    for cell in cells:
        if not cell.code:
            continue
        checked = checked_question(cell.source) if cell.test else None
        if checked == question:
            return solution, context
        if checked is not None:
            solution = []
        elif cell.solution:
            solution.append(cell.source)
        context.append(cell.source)
    return [], context


def history_cells(history: Sequence[str], names: Iterable[str]) -> tuple[list[str], list[str]]:
    """From the inputs a kernel ran (IPython's ``In``), the last run of each cell that defines
    one of ``names``, and every input (the context)."""
    inputs = [source for source in history if source and checked_question(source) is None]
    defined = [(source, _defined(source)) for source in inputs]
    solution: list[str] = []
    for name in names:
        defining = [source for source, bound in defined if name in bound]
        if defining and defining[-1] not in solution:
            solution.append(defining[-1])
    return solution, inputs


def checked_question(source: str) -> str | None:
    """The question a test cell checks (``grader.check("q1_sdpa")``), or None."""
    match = _CHECK_CALL.match(source.strip())
    return None if match is None else match.group(2)


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # code that does not parse calls nothing; its cell fails on its own


def _defined(source: str) -> set[str]:
    """The names the top level of ``source`` binds."""
    tree = _parse(source)
    names: set[str] = set()
    for node in tree.body if tree else []:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def _literal(node: ast.AST) -> str | None:
    """The string ``node`` always evaluates to (literals joined with ``+``), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, ast.FormattedValue) and node.conversion == -1 and not node.format_spec:
        return _literal(node.value)
    if isinstance(node, ast.JoinedStr):
        parts = [_literal(value) for value in node.values]
        return None if None in parts else "".join(parts)  # type: ignore[arg-type]
    return None


class _Resolver:
    """Qualified names of expressions, through the aliases known so far."""

    def __init__(self, aliases: dict[str, str]) -> None:
        self.aliases = aliases

    def resolve(self, node: ast.AST) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            owner = self.resolve(node.value)
            return None if owner is None else f"{owner}.{node.attr}"
        if isinstance(node, ast.Call):
            return self._resolve_call(node)
        if isinstance(node, ast.Subscript):
            key = _literal(node.slice)
            if key is None:
                return None
            if self.resolve(node.value) == "sys.modules":
                return key
            owner = self._namespace_of(node.value)
            return None if owner is None else f"{owner}.{key}"
        return None

    def _resolve_call(self, node: ast.Call) -> str | None:
        function = self.resolve(node.func)
        first = _literal(node.args[0]) if node.args else None
        if function in ("getattr", "builtins.getattr") and len(node.args) >= 2:
            owner, attribute = self.resolve(node.args[0]), _literal(node.args[1])
            return None if owner is None or attribute is None else f"{owner}.{attribute}"
        if function == "importlib.import_module":
            return first
        if function in ("__import__", "builtins.__import__") and first is not None:
            from_list = any(k.arg == "fromlist" for k in node.keywords) or len(node.args) >= 4
            return first if from_list else first.split(".")[0]
        owner = self._looked_up_in(node)
        if owner is not None and first is not None:
            return first if owner == "sys.modules" else f"{owner}.{first}"
        return None

    def _looked_up_in(self, node: ast.Call) -> str | None:
        """The module whose namespace (or ``sys.modules``) ``node`` looks a key up in with
        ``.get(...)`` and the like, or None."""
        if not (isinstance(node.func, ast.Attribute) and node.func.attr in _LOOKUPS):
            return None
        if self.resolve(node.func.value) == "sys.modules":
            return "sys.modules"
        return self._namespace_of(node.func.value)

    def _namespace_of(self, node: ast.AST) -> str | None:
        """The module whose namespace ``node`` is (``vars(m)``, ``m.__dict__``), or None."""
        if isinstance(node, ast.Attribute) and node.attr == "__dict__":
            return self.resolve(node.value)
        if isinstance(node, ast.Call) and self.resolve(node.func) == "vars" and node.args:
            return self.resolve(node.args[0])
        return None


class _Aliases(ast.NodeVisitor, _Resolver):
    """Records what the imports and plain assignments of a cell bind, in order."""

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.aliases[alias.asname] = alias.name
            else:
                root = alias.name.split(".")[0]
                self.aliases[root] = root

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level or node.module is None:
            return
        for alias in node.names:
            if alias.name != "*":
                self.aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.aliases.pop(node.name, None)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Assign(self, node: ast.Assign) -> None:
        self.generic_visit(node)
        target = self.resolve(node.value)
        for name in (t for t in node.targets if isinstance(t, ast.Name)):
            if target is None:
                self.aliases.pop(name.id, None)
            else:
                self.aliases[name.id] = target


class _Finder(_Resolver):
    """The forbidden names a solution cell reaches."""

    def __init__(self, aliases: dict[str, str], forbidden: Sequence[str]) -> None:
        super().__init__(aliases)
        self.forbidden = forbidden

    def findings(self, tree: ast.AST) -> list[str]:
        found, internal = [], set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                found += self._imported(node)
            elif isinstance(node, ast.Call) and self._computed(node):
                found.append(COMPUTED)
            elif isinstance(node, ast.Name | ast.Attribute | ast.Call | ast.Subscript):
                if not isinstance(getattr(node, "ctx", ast.Load()), ast.Load):
                    continue  # assigning to a name calls nothing
                name = self.resolve(node)
                entry = None if name is None else matches(name, self.forbidden)
                if entry is not None:
                    found.append(entry)
                if name is not None and self._torch_internal(name):
                    internal.add(name)
        # ``torch.ops.aten.f`` is also walked as ``torch.ops.aten`` and ``torch.ops``: the
        # longest name is the one used.
        return found + [
            name
            for name in internal
            if matches(name, self.forbidden) is None
            and not any(other.startswith(name + ".") for other in internal)
        ]

    def _torch_internal(self, name: str) -> bool:
        """``name`` is an internal entry point of PyTorch and the rule forbids a function of
        PyTorch (reachable there under another name)."""
        internal = any(matches(name, (prefix,)) for prefix in _TORCH_INTERNALS)
        return internal and any(entry.startswith("torch.") for entry in self.forbidden)

    def _imported(self, node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif node.level or node.module is None:
            return []
        else:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        return [e for e in (matches(name, self.forbidden) for name in names) if e is not None]

    def _computed(self, node: ast.Call) -> bool:
        """A lookup whose name the code computes, that could reach a forbidden name."""
        function = self.resolve(node.func)
        if function in _RUNS_TEXT:
            return True
        if function in ("importlib.import_module", "__import__", "builtins.__import__"):
            return bool(node.args) and _literal(node.args[0]) is None
        if function in ("getattr", "builtins.getattr") and len(node.args) >= 2:
            owner = self.resolve(node.args[0])
            if owner is None or _literal(node.args[1]) is not None:
                return False
            return any(entry.startswith(owner + ".") for entry in self.forbidden)
        owner = self._looked_up_in(node)
        if owner is not None and node.args and _literal(node.args[0]) is None:
            return owner == "sys.modules" or any(
                entry.startswith(owner + ".") for entry in self.forbidden
            )
        return False
