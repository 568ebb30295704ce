"""Write the student distribution: everything a student may see, and nothing else.

The instructor's repository stays private: it holds the solutions (``source/``, the twins),
the hidden tests, the rubrics, the reference implementations and the grading tools. What
students get is generated into one folder, meant to be pushed as a repository of its own
(the one the Colab set-up cell clones,
:data:`~tfcourse_instructor.grading.build.cells.COURSE_REPOSITORY`)::

    README.md            for students: set-up (PyTorch's CPU build on a laptop), checking,
                           validating, submitting (authoring/student/README.md)
    requirements.txt     exact pins for a laptop (the kit's own pins of the runtime packages
                           and of the ``lab`` extra: JupyterLab, nbgrader's Validate button)
    pyproject.toml       the student package: loose lower bounds, so Colab keeps its torch
    helpers/tfcourse/    the student package (:data:`STUDENT_PACKAGE`), whole
    release/<assignment>/  the release notebooks and their public test files

The student package is a folder of its own (``helpers/tfcourse``); the instructor's references
and grading tools live in another package (``helpers/tfcourse_instructor``), so the boundary
is a folder, not a list. Before anything is written, the folder is searched
for graded answers (:mod:`tfcourse_instructor.grading.build.answers`); one found stops the
publication.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

import tfcourse
from tfcourse_instructor.grading.build.answers import Answers, Leak
from tfcourse_instructor.grading.build.cells import placeholder_warning
from tfcourse_instructor.grading.course import Course

STUDENT_PACKAGE = Path(tfcourse.__file__).resolve().parent
"""The student package, whole: what students install and what a grading sandbox mounts. The
instructor's side (references, grading) is another package, so nothing here is left out."""
RUNTIME_PACKAGES = ("torch", "numpy", "matplotlib", "tqdm", "otter-grader", "nbformat")
"""What the student package needs at run time (the ``lab`` extra comes on top, for a laptop)."""
LAB_EXTRA = "lab"
"""The kit's extra of what a student's laptop adds: JupyterLab, and nbgrader for its Validate
button (which runs the notebook as a grader would and shows the report of a failing check)."""
MARKER = ".tfcourse-student"
"""A file that marks a folder as a student distribution, so that it may be replaced."""
README = Path("authoring", "student", "README.md")


class AnswersFound(RuntimeError):
    """The distribution would hold a graded answer; nothing was published."""

    def __init__(self, leaks: Sequence[Leak]) -> None:
        listed = "\n".join(f"  {leak}" for leak in leaks)
        super().__init__(f"{len(leaks)} graded answers in the student distribution:\n{listed}")
        self.leaks = list(leaks)


def publish(
    root: Path, assignments: Sequence[str], out: Path, package: Path = STUDENT_PACKAGE
) -> None:
    """Write the student distribution of the course at ``root`` with the releases of
    ``assignments`` (as they are in ``release/`` now) to ``out``, replacing everything there
    but a ``.git`` folder.

    It is built in a scratch folder and searched for graded answers first: when one is found
    :class:`AnswersFound` is raised and ``out`` is left as it was.
    """
    out = out.resolve()
    existing = [entry for entry in out.iterdir() if entry.name != ".git"] if out.exists() else []
    if existing and not (out / MARKER).is_file():
        raise FileExistsError(f"{out} exists and is not a student distribution: choose another")
    with tempfile.TemporaryDirectory(prefix="student-") as scratch:
        staged = Path(scratch) / "student"
        write_distribution(root, assignments, staged, package)
        leaks = Answers.of(root).find(staged)
        if leaks:
            raise AnswersFound(leaks)
        _replace_contents(out, staged)


def _replace_contents(out: Path, staged: Path) -> None:
    """Make ``out`` hold exactly the files of ``staged``, keeping its ``.git``: a clone of
    the students' repository stays one, ready to commit and push."""
    out.mkdir(parents=True, exist_ok=True)
    for entry in out.iterdir():
        if entry.name == ".git":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    shutil.copytree(staged, out, dirs_exist_ok=True)


def write_distribution(
    root: Path, assignments: Sequence[str], out: Path, package: Path = STUDENT_PACKAGE
) -> None:
    """Write the files of the student distribution to the new folder ``out``."""
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc", "*.egg-info")
    for name in assignments:
        release = Course(root, name).release_dir
        shutil.copytree(release, out / "release" / name, ignore=ignore)
    shutil.copytree(package, out / "helpers" / "tfcourse", ignore=ignore)
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    (out / "pyproject.toml").write_text(_pyproject(project["project"]), encoding="utf-8")
    lab = project["project"]["optional-dependencies"][LAB_EXTRA]
    (out / "requirements.txt").write_text(
        _requirements(root / "requirements.txt", lab), encoding="utf-8"
    )
    shutil.copy(root / README, out / "README.md")
    (out / ".gitignore").write_text("build/\n*.egg-info/\n__pycache__/\n.ipynb_checkpoints/\n")
    (out / MARKER).write_text("Generated by `make publish`; replaced by the next one.\n")


def _pyproject(project: dict[str, object]) -> str:
    """The student package's pyproject: the kit's name and version, its runtime packages and
    its ``lab`` extra."""
    lower_bounds = {_name(spec): spec for spec in project["dependencies"]}  # type: ignore[attr-defined]
    lower_bounds.setdefault("nbformat", "nbformat>=5.9")
    dependencies = "".join(f'    "{lower_bounds[name]}",\n' for name in RUNTIME_PACKAGES)
    lab = ", ".join(f'"{spec}"' for spec in project["optional-dependencies"][LAB_EXTRA])  # type: ignore[index]
    return f"""\
[build-system]
requires = ["setuptools>=77"]
build-backend = "setuptools.build_meta"

[project]
name = "{project["name"]}"
version = "{project["version"]}"
description = "The helpers the transformer course notebooks import: checks, data, plots."
readme = "README.md"
license = "MIT"
requires-python = "{project["requires-python"]}"
# Lower bounds only, so that the package installs into Colab's stack without replacing
# torch; requirements.txt pins the versions the course was tested with.
dependencies = [
{dependencies}]

[project.optional-dependencies]
{LAB_EXTRA} = [{lab}]

[tool.setuptools.packages.find]
where = ["helpers"]
"""


def _requirements(kit_requirements: Path, lab: Sequence[str]) -> str:
    """The kit's exact pins of the student runtime packages and of the ``lab`` extra's."""
    wanted = {*RUNTIME_PACKAGES, *map(_name, lab)}
    pins = [
        line
        for line in kit_requirements.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#") and _name(line) in wanted
    ]
    header = (
        "# The versions the course was tested with. On Linux, install PyTorch's CPU build first\n"
        "# (see README.md): a plain `pip install torch` there is a CUDA build of several GB.\n"
        '# pip install -r requirements.txt && pip install ".[lab]"\n'
    )
    return header + "\n".join(pins) + "\n"


def _name(spec: str) -> str:
    return re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0].strip().lower().replace("_", "-")


def main(root: Path, assignments: Sequence[str], out: Path) -> int:
    """``python -m tfcourse_instructor.grading publish``: write, report, warn; the exit code."""
    warning = placeholder_warning()
    if warning:
        print(warning, file=sys.stderr)
    try:
        publish(root, assignments, out)
    except AnswersFound as error:
        print(error, file=sys.stderr)
        return 1
    print(f"wrote the student distribution to {out}: {', '.join(assignments)}")
    return 0
