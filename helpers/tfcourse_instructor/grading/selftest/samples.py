"""The sample submissions the main job grades, derived from ``source/`` and ``release/``.

Deriving them (rather than storing copies) keeps them in step with every edit of the
notebooks: the reference is the source with its solutions as the answers, the untouched one
is the release as students receive it, and each buggy one is the reference with one
realistic mistake put in. One more is correct but noisy: its code prints to stderr and
warns while it is tested, which must not cost a point.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import nbformat

from tfcourse_instructor.grading.classroom.merge import TIMESTAMP
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.schedule import read_schedule

Notebooks = dict[str, nbformat.NotebookNode]
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"
"""How nbgrader's exchange writes the time a submission was handed in."""
LATE, LATE_BY = "late-reference", timedelta(hours=36)


@dataclass(frozen=True)
class Edit:
    """Replace ``old`` by ``new`` in the one cell ``cell_id`` of notebook ``notebook``."""

    notebook: str
    cell_id: str
    old: str
    new: str

    def apply(self, notebooks: Notebooks) -> None:
        cell = next(c for c in notebooks[self.notebook].cells if c.get("id") == self.cell_id)
        if cell.source.count(self.old) != 1:
            raise ValueError(f"edit text not found exactly once in cell {self.cell_id!r}")
        cell.source = cell.source.replace(self.old, self.new)


@dataclass(frozen=True)
class Sample:
    """A sample student: an id, what the submission is, and how to derive it."""

    student_id: str
    description: str
    make: Callable[[Course], Notebooks]


def reference_notebooks(course: Course) -> Notebooks:
    """Source notebooks as a student who wrote the model solutions would submit them."""
    notebooks = {}
    for name in course.notebook_names():
        notebook = nbformat.read(course.source_dir / f"{name}.ipynb", as_version=4)
        for cell in notebook.cells:
            cell.source = "\n".join(
                line
                for line in cell.source.split("\n")
                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
            )
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        notebooks[name] = notebook
    return notebooks


def release_notebooks(course: Course) -> Notebooks:
    """Release notebooks exactly as students receive them."""
    return {
        name: nbformat.read(course.release_dir / f"{name}.ipynb", as_version=4)
        for name in course.notebook_names()
    }


def with_edits(*edits: Edit) -> Callable[[Course], Notebooks]:
    """A sample maker: the reference notebooks with ``edits`` applied."""

    def make(course: Course) -> Notebooks:
        notebooks = reference_notebooks(course)
        for edit in edits:
            if edit.notebook in notebooks:  # the edits of other assignments' notebooks wait
                edit.apply(notebooks)
        return notebooks

    return make


UNSCALED = Edit("01_attention", "sdpa", " / math.sqrt(query.size(-1))", "")
"""The commonest attention bug: scores not divided by sqrt(d_k)."""
NOISY = Edit(
    "01_attention",
    "sdpa",
    "    return weights @ value, weights",
    "    import sys, warnings\n"
    "    print('debug: scores', tuple(scores.shape), file=sys.stderr)\n"
    "    warnings.warn('attention weights computed', stacklevel=1)\n"
    "    return weights @ value, weights",
)
"""Correct code that writes to stderr and warns: it must cost nothing."""

SAMPLES = (
    Sample("reference", "the model solutions", reference_notebooks),
    Sample("untouched", "the release notebooks, nothing filled in", release_notebooks),
    Sample(
        "bug-unscaled",
        "attention scores not divided by sqrt(d_k)",
        with_edits(UNSCALED),
    ),
    Sample(
        "bug-head-split",
        "split_heads reshapes to (B, H, T, D) directly instead of transposing",
        with_edits(
            Edit(
                "01_attention",
                "heads",
                "x.view(batch, length, num_heads, embed_dim // num_heads).transpose(1, 2)",
                "x.reshape(batch, num_heads, length, embed_dim // num_heads)",
            )
        ),
    ),
    Sample(
        "bug-prenorm-residual",
        "pre-norm encoder layer adds the attention output to the normalised input",
        with_edits(
            Edit(
                "02_encoder",
                "encoder_layer",
                "x = x + self.attention_block(self.norm1(x), src_mask, src_key_padding_mask)",
                "x = self.norm1(x)\n"
                "            x = x + self.attention_block(x, src_mask, src_key_padding_mask)",
            )
        ),
    ),
    Sample(
        "bug-unshifted-targets",
        "get_batch returns the inputs themselves as targets, not shifted by one",
        with_edits(
            Edit(
                "03_language_models",
                "batches",
                "y = data[starts[:, None] + offsets + 1]",
                "y = data[starts[:, None] + offsets]",
            )
        ),
    ),
    Sample(
        "bug-attention-cost",
        "attention cost counts the scores QKᵀ but not the product with V",
        with_edits(Edit("04_theory", "cost_functions", "return scores + mixing", "return scores")),
    ),
    Sample(
        "bug-online-nan",
        "block-wise attention shifts the scores by a running maximum that is still -inf: NaN "
        "for rows whose keys so far are all blocked",
        with_edits(
            Edit(
                "05_inference",
                "blockwise",
                "        # Rows that have seen only blocked keys shift by 0: exp then gives 0, "
                "not NaN.\n        shift = new_max.masked_fill(torch.isneginf(new_max), 0.0)",
                "        shift = new_max",
            )
        ),
    ),
    Sample(
        LATE,
        "the model solutions, handed in a day and a half after each due date",
        reference_notebooks,
    ),
    Sample(
        "bug-rope-frequencies",
        "rotary frequencies θ_i = base^(-i/D) instead of base^(-2i/D): pairs turn at the wrong "
        "speeds, so rotated scores differ from the reference's",
        with_edits(
            Edit(
                "06_tokens_positions",
                "rope",
                "base ** (-2.0 * torch.arange",
                "base ** (-1.0 * torch.arange",
            )
        ),
    ),
    Sample(
        "noisy-correct",
        "correct code that prints to stderr and warns while it is tested",
        with_edits(NOISY),
    ),
)


def write_samples(course: Course) -> list[str]:
    """Write every sample's submission of ``course``'s assignment under ``submitted/``;
    return the student ids. The late sample hands every assignment in a day and a half
    after it is due (nbgrader's ``timestamp.txt``), if it has a due date."""
    due = next((a.due for a in read_schedule(course.root) if a.name == course.assignment), None)
    for sample in SAMPLES:
        folder = course.submitted_dir / sample.student_id / course.assignment
        if folder.exists():
            shutil.rmtree(folder)
        shutil.copytree(course.release_dir, folder)
        for name, notebook in sample.make(course).items():
            nbformat.write(notebook, folder / f"{name}.ipynb")
        if sample.student_id == LATE and due is not None:
            handed_in = due + LATE_BY
            (folder / TIMESTAMP).write_text(handed_in.strftime(TIMESTAMP_FORMAT) + "\n")
    return [sample.student_id for sample in SAMPLES]
