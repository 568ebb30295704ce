"""Students' copies of the test files: the hidden test cases cut out.

A test file in ``source/`` holds public and hidden cases (``@test_case(..., hidden=True)``).
The copy a student receives keeps the public cases and records only how many points the
hidden ones are worth, as ``hidden_points``, so the in-notebook report can say so. Imports
only the hidden cases used go too: a student's copy names nothing it does not need.
"""

from __future__ import annotations

import ast
import re

from tfcourse.declarations.hidden_points import HIDDEN_POINTS_NAME, read_hidden_points

__all__ = [
    "case_lines",
    "case_name",
    "case_points",
    "hidden_cases",
    "public_test_source",
    "read_hidden_points",
]


def hidden_cases(source: str) -> list[ast.FunctionDef]:
    """The functions of ``source`` decorated with ``@test_case(..., hidden=True)``."""
    return [
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef) and _is_hidden(_test_case_call(node))
    ]


def case_points(case: ast.FunctionDef) -> float:
    """The literal ``points=`` of a test case's decorator; every case must state its points."""
    call = _test_case_call(case)
    for keyword in call.keywords if call else []:
        if keyword.arg == "points":
            return float(ast.literal_eval(keyword.value))
    raise ValueError(f"test case {case.name!r} does not state its points")


def case_name(case: ast.FunctionDef) -> str | None:
    """The literal ``name=`` of a test case's decorator (None if it states none)."""
    call = _test_case_call(case)
    for keyword in call.keywords if call else []:
        if keyword.arg == "name" and isinstance(keyword.value, ast.Constant):
            return str(keyword.value.value)
    return None


def case_lines(case: ast.FunctionDef) -> range:
    """The line numbers of a test case in its file, its decorators included."""
    first = min([case.lineno, *(decorator.lineno for decorator in case.decorator_list)])
    return range(first, case.end_lineno + 1)  # type: ignore[operator]


def public_test_source(source: str) -> str:
    """``source`` without its hidden test cases, plus a ``hidden_points`` total."""
    cases = hidden_cases(source)
    dropped: set[int] = set()
    for case in cases:
        dropped.update(case_lines(case))
    lines = source.splitlines(keepends=True)
    kept = "".join(line for number, line in enumerate(lines, 1) if number not in dropped)
    kept = _without_unused_imports(kept)
    kept = re.sub(r"\n{3,}", "\n\n\n", kept).rstrip() + "\n"
    total = sum(case_points(case) for case in cases)
    return f"{kept}\n{HIDDEN_POINTS_NAME} = {total:g}\n"


def _without_unused_imports(source: str) -> str:
    """``source`` with the names its top-level imports bring in but nothing uses removed."""
    tree = ast.parse(source)
    imports = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    used = {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store)
    }
    lines = source.splitlines(keepends=True)
    for node in reversed(imports):
        kept = [alias for alias in node.names if _bound_name(alias) in used]
        if len(kept) == len(node.names):
            continue
        replacement = ""
        if kept:
            reduced = ast.ImportFrom(node.module, kept, node.level)
            if isinstance(node, ast.Import):
                reduced = ast.Import(kept)
            replacement = ast.unparse(reduced) + "\n"
        lines[node.lineno - 1 : node.end_lineno] = [replacement]
    return "".join(lines)


def _bound_name(alias: ast.alias) -> str:
    return alias.asname or alias.name.split(".")[0]


def _test_case_call(node: ast.FunctionDef) -> ast.Call | None:
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and _name_of(decorator.func) == "test_case":
            return decorator
    return None


def _is_hidden(call: ast.Call | None) -> bool:
    if call is None:
        return False
    return any(
        keyword.arg == "hidden" and ast.literal_eval(keyword.value) is True
        for keyword in call.keywords
    )


def _name_of(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""
