"""Answers to notebook 1's q1_sdpa that take a shortcut its test file forbids, and one that
only mentions the forbidden names: edits of the model solution, shared by the grading run
(tests/test_grading_adversarial.py) and the in-notebook check (tests/test_shortcuts.py)."""

from __future__ import annotations

from collections.abc import Callable

import nbformat

from tfcourse_instructor.grading.selftest.samples import Edit

NOTEBOOK = "01_attention"
FIRST_LINE = "    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))\n"
"""The first line of the model solution's body: each cheat returns before it."""
BY_PYTORCH = (
    "    if mask is not None and mask.dtype == torch.bool:\n"
    "        mask = ~mask  # PyTorch's boolean masks say who may attend\n"
    "    identity = torch.eye(key.size(-2), dtype=key.dtype).expand(*key.shape[:-1], "
    "key.size(-2))\n"
    "    weights = ATTEND(query, key, identity, attn_mask=mask).nan_to_num(0.0)\n"
    "    return weights @ value, weights\n"
)
"""Attention weights from PyTorch's attention of identity values (``ATTEND`` is replaced)."""
HELPER_CELL = (
    "def attend(query, key, value, attn_mask=None):\n"
    "    return torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask)\n"
)
"""A cell the student adds above the solution: only the run-time record sees the call. (The
other cell a cheat may add, below the solution, imports the kit's answer over the student's.)"""


def _body(new: str) -> Edit:
    return Edit(NOTEBOOK, "sdpa", FIRST_LINE, new + FIRST_LINE)


def _import(module: str) -> Edit:
    return _body(
        f"    from {module} import scaled_dot_product_attention as answer\n"
        "    return answer(query, key, value, mask)\n"
    )


def _with_helper(notebook: nbformat.NotebookNode) -> None:
    index = next(i for i, cell in enumerate(notebook.cells) if cell.get("id") == "sdpa")
    notebook.cells.insert(index, nbformat.v4.new_code_cell(HELPER_CELL))
    _body(BY_PYTORCH.replace("ATTEND", "attend")).apply({NOTEBOOK: notebook})


def _override(notebook: nbformat.NotebookNode) -> None:
    index = next(i for i, cell in enumerate(notebook.cells) if cell.get("id") == "sdpa")
    override = (
        "from tfcourse_instructor.reference.attention import scaled_dot_product_attention"
        "  # mine, replaced\n"
    )
    notebook.cells.insert(index + 1, nbformat.v4.new_code_cell(override))


def _edit(edit: Edit) -> Callable[[nbformat.NotebookNode], None]:
    return lambda notebook: edit.apply({NOTEBOOK: notebook})


DISGUISED = 'getattr(F, "scaled_dot_" + "product_attention")'
SDPA_LINE = (
    "q1_sdpa: your solution calls F.scaled_dot_product_attention, which this question forbids"
)
CHEATS: dict[str, tuple[Callable[[nbformat.NotebookNode], None], str]] = {
    "cheat-import": (
        _edit(_import("tfcourse_instructor.reference.attention")),
        "q1_sdpa: your solution calls tfcourse_instructor.reference, which this question forbids",
    ),
    "cheat-pytorch": (
        _edit(_body(BY_PYTORCH.replace("ATTEND", "F.scaled_dot_product_attention"))),
        SDPA_LINE,
    ),
    "cheat-getattr": (
        _edit(_body(BY_PYTORCH.replace("ATTEND", DISGUISED))),
        SDPA_LINE,
    ),
    "cheat-helper": (_with_helper, SDPA_LINE),
    "cheat-override": (
        _override,
        "q1_sdpa: your solution calls tfcourse_instructor.reference, which this question forbids",
    ),
}
"""Student id -> (the edit of the model notebook, the feedback line it must get)."""


def mentions_only(notebook: nbformat.NotebookNode) -> None:
    """The model solution, with the forbidden names in a comment and a string only."""
    _body(
        "    # Not F.scaled_dot_product_attention, nor tfcourse.attention: by hand.\n"
        '    rule = "F.scaled_dot_product_attention is forbidden here"\n'
    ).apply({NOTEBOOK: notebook})
