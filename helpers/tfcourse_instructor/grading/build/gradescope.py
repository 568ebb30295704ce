"""Otter autograders for Gradescope, from the same test files nbgrader grades with.

``python -m tfcourse_instructor.grading gradescope`` writes ``gradescope/NN_name.zip`` for each
notebook (Gradescope grades one notebook per assignment) with otter generate's Python entry
point: the notebook's test files from ``source/`` (hidden cases included), the ``tfcourse`` package
and the modules the assignment gives as support files (otter copies them next to the
submission, where the notebook imports them), the package marked so that notebooks train at
their graded size (:mod:`tfcourse.runmode`), and the kit's pins of the package's dependencies.
``otter run -a gradescope/01_attention.zip sub.ipynb`` grades a submission locally, without
Docker. The zips hold hidden tests: never put them in release/.
"""

from __future__ import annotations

import importlib.metadata
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
from otter.generate import main as otter_generate
from otter.utils import chdir as otter_chdir

import tfcourse
from tfcourse.runmode import AUTOGRADER_MARKER
from tfcourse_instructor.grading.course import Course

OUTPUT_DIR = "gradescope"
PYTHON_VERSION = "3.11"  # the kit's pinned environment runs on it
SHIPPED_BY_OTTER = {"otter-grader"}  # otter generate pins its own version


def notebook_questions(course: Course, name: str) -> list[str]:
    """Grade ids of the test cells (``grader.check`` cells) of source notebook ``name``."""
    notebook = nbformat.read(course.source_dir / f"{name}.ipynb", as_version=4)
    return [
        cell.metadata["nbgrader"]["grade_id"]
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        and not cell.metadata["nbgrader"].get("solution")
    ]


def grading_requirements(course: Course) -> list[str]:
    """The helper package's dependencies, pinned as in the kit's ``requirements.txt``."""
    pins = {
        _name(line): line.strip()
        for line in (course.root / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    runtime = [
        _name(spec) for spec in importlib.metadata.requires("tfcourse") or [] if "extra" not in spec
    ]
    return [pins.get(name, name) for name in runtime if name not in SHIPPED_BY_OTTER]


def write_autograder(course: Course, name: str, zip_path: Path) -> Path:
    """Write the otter autograder zip of notebook ``name`` to ``zip_path``; return it."""
    zip_path = zip_path.resolve()
    if course.release_dir.resolve() in zip_path.parents:
        raise ValueError("an autograder holds hidden tests: never write it under release/")
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        stage = Path(scratch)
        (stage / "tests").mkdir()
        for question in notebook_questions(course, name):
            shutil.copy(course.tests_dir / f"{question}.py", stage / "tests")
        package = Path(tfcourse.__file__).parent
        shutil.copytree(package, stage / "tfcourse", ignore=shutil.ignore_patterns("__pycache__"))
        (stage / "tfcourse" / AUTOGRADER_MARKER).write_text(
            "These helpers grade on Gradescope: notebooks train at their graded size.\n"
        )
        given = course.copy_given_modules(stage)
        (stage / "requirements.txt").write_text("\n".join(grading_requirements(course)) + "\n")
        # otter generate takes support files relative to the working directory.
        with otter_chdir(stage):
            otter_generate(
                tests_dir="tests",
                output_path=str(zip_path),
                requirements="requirements.txt",
                python_version=PYTHON_VERSION,
                no_config=True,
                no_environment=True,
                files=["tfcourse", *given],
            )
    return zip_path


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement.strip(), maxsplit=1)[0].lower()
