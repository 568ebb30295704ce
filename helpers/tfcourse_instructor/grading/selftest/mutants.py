"""Mutation testing of the graders: every wrong answer loses points, every right one keeps them.

Next to each notebook's twin, ``authoring/mutants/NN_name.py`` declares, per question,
plausible wrong answers (*mutants*) and correct alternatives to the model solution, each as
:class:`~tfcourse_instructor.grading.selftest.samples.Edit` records of the reference notebook (the
same records the sample submissions use, so they break loudly when a solution changes). The folder
is outside ``source/``, so nbgrader never copies it into the release.

:func:`run_variants` grades them all in one class run of the real grading path
(:func:`~tfcourse_instructor.grading.classroom.pipeline.grade_class`) in a scratch copy of the
course: a ``reference`` student submits the model solutions, and every variant is a student whose
submission holds only the notebook it changes (graded alone, without feedback pages), so the run
costs one notebook per variant. A mutant is *killed* when its question scores below full automatic
points; an alternative is *accepted* when every autograded question of its notebook keeps full
points.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tfcourse_instructor.grading.build.release import generate_release
from tfcourse_instructor.grading.classroom.pipeline import grade_class
from tfcourse_instructor.grading.classroom.scores import QuestionScore, read_scores
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.schedule import COURSE_FILE
from tfcourse_instructor.grading.selftest.samples import Edit, Notebooks, reference_notebooks
from tfcourse_instructor.grading.submission.warm import WarmProcesses
from tfcourse_instructor.grading.submission.workspace import Limits

REFERENCE = "reference"


@dataclass(frozen=True)
class Variant:
    """An answer to one question: the reference notebook with ``edits`` applied."""

    question: str
    """Grade id of the question's test cell, e.g. ``q1_sdpa``."""
    description: str
    edits: tuple[Edit, ...]
    correct: bool
    """True for a correct alternative (must keep full points), False for a mutant."""

    @property
    def notebook(self) -> str:
        return self.edits[0].notebook

    @property
    def student(self) -> str:
        """A student id that says what the variant is."""
        slug = re.sub(r"[^a-z0-9]+", "-", self.description.lower()).strip("-")[:60]
        return f"{'alt' if self.correct else 'mut'}-{self.question}-{slug}"


def mutant(question: str, description: str, *edits: Edit) -> Variant:
    """A wrong answer to ``question``: it must score below full points."""
    return Variant(question, description, edits, correct=False)


def alternative(question: str, description: str, *edits: Edit) -> Variant:
    """A correct answer to ``question`` unlike the model solution: it must keep full points."""
    return Variant(question, description, edits, correct=True)


@dataclass(frozen=True)
class Outcome:
    """How the graders treated one variant."""

    variant: Variant
    score: float
    max_score: float
    lost: tuple[str, ...]
    """Questions of the variant's notebook scored below full points."""

    @property
    def as_expected(self) -> bool:
        """Killed (a mutant lost points on its question) or accepted (an alternative lost none)."""
        if self.variant.correct:
            return not self.lost
        return self.variant.question in self.lost


def declarations_dir(course: Course) -> Path:
    """Where the per-notebook declaration modules live."""
    return course.root / "authoring" / "mutants"


def load_variants(course: Course, notebooks: Iterable[str] | None = None) -> list[Variant]:
    """The variants declared for ``notebooks`` (default: every notebook), in file order.

    Each ``authoring/mutants/NN_name.py`` defines ``VARIANTS``, a list of :class:`Variant`
    whose edits all change notebook ``NN_name``."""
    variants = []
    for name in notebooks or course.notebook_names():
        path = declarations_dir(course) / f"{name}.py"
        if not path.is_file():
            continue
        spec = importlib.util.spec_from_file_location(f"_tfcourse_mutants_{name}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        for variant in module.VARIANTS:
            if any(edit.notebook != name for edit in variant.edits) or not variant.edits:
                raise ValueError(f"{path.name}: {variant.student} must edit {name} only")
            variants.append(variant)
    students = [variant.student for variant in variants]
    duplicates = sorted({s for s in students if students.count(s) > 1})
    if duplicates:
        raise ValueError(f"variants with the same description: {duplicates}")
    return variants


def write_submissions(course: Course, variants: Sequence[Variant]) -> list[str]:
    """Write one student per variant under ``submitted/``, and the reference student with
    the notebooks they change."""
    reference = reference_notebooks(course)
    touched = {variant.notebook for variant in variants}
    submissions: dict[str, Notebooks] = {
        REFERENCE: {name: nb for name, nb in reference.items() if name in touched}
    }
    for variant in variants:
        notebooks = {variant.notebook: copy.deepcopy(reference[variant.notebook])}
        for edit in variant.edits:
            try:
                edit.apply(notebooks)
            except ValueError as error:
                raise ValueError(f"{variant.student}: {error}") from None
        submissions[variant.student] = notebooks
    for student, notebooks in submissions.items():
        folder = course.submitted_dir / student / course.assignment
        folder.mkdir(parents=True)
        for name, notebook in notebooks.items():
            nbformat.write(notebook, folder / f"{name}.ipynb")
    return list(submissions)


def scratch_course(course: Course, destination: Path) -> Course:
    """A copy of the course's configuration, sources, full tests and given modules, with its
    release regenerated."""
    for name in ("nbgrader_config.py", COURSE_FILE):
        shutil.copy(course.root / name, destination / name)
    given = [course.given_dir] if course.given_dir.is_dir() else []
    for folder in (course.source_dir, course.tests_dir, *given):
        shutil.copytree(
            folder,
            destination / folder.relative_to(course.root),
            ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".OTTER_LOG"),
        )
    scratch = Course(destination, course.assignment)
    generate_release(scratch)
    return scratch


def run_variants(
    course: Course,
    variants: Sequence[Variant],
    *,
    jobs: int = 1,
    limits: Limits | None = None,
    progress: bool = True,
    sandboxed: bool = True,
    warm: WarmProcesses | None = None,
) -> tuple[list[QuestionScore], list[Outcome]]:
    """Grade the reference and every variant (all of ``course``'s notebook) in one class
    run in a scratch copy of ``course``, its processes forked from ``warm`` if given (see
    :func:`~tfcourse_instructor.grading.classroom.pipeline.grade_class`); return the
    reference's scores and each variant's outcome."""
    strangers = [v.student for v in variants if v.notebook not in course.notebook_names()]
    if strangers:
        raise ValueError(f"not variants of {course.assignment}: {strangers}")
    with tempfile.TemporaryDirectory(prefix="tfcourse-mutants-") as folder:
        scratch = scratch_course(course, Path(folder))
        students = write_submissions(scratch, variants)
        grade_class(
            scratch,
            students,
            jobs=jobs,
            limits=limits,
            force=True,
            progress=progress,
            only_submitted=True,
            feedback=False,
            sandboxed=sandboxed,
            warm=warm,
        )
        scores = read_scores(scratch, students)
    by_student: dict[str, list[QuestionScore]] = {}
    for score in scores:
        if score.autograded:
            by_student.setdefault(score.student, []).append(score)
    outcomes = []
    for variant in variants:
        own = [s for s in by_student[variant.student] if s.notebook == variant.notebook]
        question = next(s for s in own if s.question == variant.question)
        lost = tuple(s.question for s in own if (s.score or 0.0) < s.max_score)
        outcomes.append(Outcome(variant, question.score or 0.0, question.max_score, lost))
    touched = {variant.notebook for variant in variants}
    return [s for s in by_student[REFERENCE] if s.notebook in touched], outcomes


def reference_shortfalls(reference: Sequence[QuestionScore]) -> list[str]:
    """Questions the model solutions do not get full points on (each spoils the run)."""
    return [s.question for s in reference if (s.score or 0.0) < s.max_score]


def format_report(reference: Sequence[QuestionScore], outcomes: Sequence[Outcome]) -> str:
    """Per question: mutants killed / declared, alternatives accepted / declared, then every
    survivor and rejected alternative with its score."""
    rows = [["question", "mutants killed", "alternatives accepted"]]
    for question in dict.fromkeys(s.question for s in reference):
        own = [o for o in outcomes if o.variant.question == question]
        mutants = [o for o in own if not o.variant.correct]
        alternatives = [o for o in own if o.variant.correct]
        rows.append(
            [
                question,
                f"{sum(o.as_expected for o in mutants)}/{len(mutants)}",
                f"{sum(o.as_expected for o in alternatives)}/{len(alternatives)}",
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in rows
    ]
    for question in reference_shortfalls(reference):
        lines.append(f"REFERENCE SHORT  {question}: the model solution loses points")
    for outcome in outcomes:
        if outcome.as_expected:
            continue
        variant = outcome.variant
        verdict = "REJECTED " if variant.correct else "SURVIVED "
        where = f"lost on {', '.join(outcome.lost)}" if outcome.lost else "full points"
        lines.append(
            f"{verdict} {variant.question}: {variant.description} "
            f"({outcome.score:g}/{outcome.max_score:g}; {where})"
        )
    return "\n".join(lines)


def all_as_expected(reference: Sequence[QuestionScore], outcomes: Sequence[Outcome]) -> bool:
    """True when the reference has full points, every mutant died and every alternative lived."""
    return not reference_shortfalls(reference) and all(o.as_expected for o in outcomes)
