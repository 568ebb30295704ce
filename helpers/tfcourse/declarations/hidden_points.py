"""How a student's copy of a test file records the points of its hidden cases.

The release cuts the hidden cases out of each test file and appends one assignment,
``hidden_points = N``; the in-notebook checker reads it back to say what is still to come.
"""

from __future__ import annotations

import ast

HIDDEN_POINTS_NAME = "hidden_points"


def read_hidden_points(source: str) -> float:
    """The ``hidden_points`` a public test file records (0 when it records none)."""
    value = module_constant(source, HIDDEN_POINTS_NAME)
    return 0.0 if value is None else float(value)


def module_constant(source: str, name: str) -> object:
    """The literal a test file assigns to ``name`` at module level (None without one)."""
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == name
        ):
            return ast.literal_eval(node.value)
    return None
