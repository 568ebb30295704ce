"""How a student's copy of a test file records the points of its hidden cases.

The release cuts the hidden cases out of each test file and appends one assignment,
``hidden_points = N``; the in-notebook checker reads it back to say what is still to come.
"""

from __future__ import annotations

import ast

HIDDEN_POINTS_NAME = "hidden_points"


def read_hidden_points(source: str) -> float:
    """The ``hidden_points`` a public test file records (0 when it records none)."""
    for node in ast.parse(source).body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == HIDDEN_POINTS_NAME
        ):
            return float(ast.literal_eval(node.value))
    return 0.0
