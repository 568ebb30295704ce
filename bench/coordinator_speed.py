"""How fast the coordinator absorbs graded submissions: merge into the class gradebook,
feedback and export, timed apart, for a class far larger than the machine could grade.

    python bench/coordinator_speed.py [--students N] [--batch B] [--assignment NAME]

Builds a scratch copy of the course with one assignment and grades its sample submissions for
real, once each (the model solution, the untouched release and every sample with a bug in
this notebook). Then it makes N graded results without running a kernel: each synthetic
student's executed notebook is the model solution's, with every test cell's output (points,
report, case outcomes) taken from one of the really graded samples, drawn so that students
differ in how many questions they got right; one in ten hands in late. The coordinator's
steps then run as a class graded on a cluster runs them:

- merge:    ``merge_grades`` of the results in batches of B, as they arrive;
- feedback: the gradebook digests and ``write_feedback`` of every student (``--jobs`` runs);
- export:   the per-question scores (``scores.csv``) and ``write_report`` (``grades.csv``
            and the class report).

It prints each phase's seconds and submissions per second, the overall rate, and the time
10,000 submissions take at that rate (N is 10,000 unless ``--students`` says otherwise; a
smaller N gives a projection). A class of 10,000 graded on a cluster in an hour needs about 3
submissions a second.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import nbformat
from nbgrader import utils

from tfcourse_instructor.grading.classroom.feedback import gradebook_digests, write_feedback
from tfcourse_instructor.grading.classroom.merge import TIMESTAMP, merge_grades, record_assignment
from tfcourse_instructor.grading.classroom.pipeline import grade_class
from tfcourse_instructor.grading.classroom.scores import read_scores, write_csv
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.report.class_report import write_report
from tfcourse_instructor.grading.schedule import COURSE_FILE, read_schedule
from tfcourse_instructor.grading.selftest.samples import (
    SAMPLES,
    TIMESTAMP_FORMAT,
    reference_notebooks,
    write_samples,
)
from tfcourse_instructor.grading.submission import sandbox
from tfcourse_instructor.grading.submission.workspace import GradedSubmission

REPO = Path(__file__).resolve().parents[1]
CLASS_SIZE = 10_000
LATE_SHARE = 0.1


def make_course(root: Path, assignment: str) -> Course:
    """A copy of the course holding ``assignment`` only, its gradebook set up."""
    root.mkdir(parents=True)
    shutil.copy(REPO / "nbgrader_config.py", root)
    entry = next(a for a in read_schedule(REPO) if a.name == assignment)
    due = f"due = {entry.due.isoformat()}\n" if entry.due else ""
    (root / COURSE_FILE).write_text(
        f'[[assignment]]\nname = "{assignment}"\nreleased = true\n{due}', encoding="utf-8"
    )
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", ".OTTER_LOG")
    for top in ("source", "release", "authoring"):
        shutil.copytree(REPO / top / assignment, root / top / assignment, ignore=ignore)
    course = Course(root, assignment)
    record_assignment(course)
    return course


def grade_samples(course: Course, jobs: int) -> dict[str, Path]:
    """Grade, for real, the samples whose notebook differs from the model solution's (and the
    model solution); return each one's folder of executed notebooks, by student."""
    write_samples(course)
    reference = reference_notebooks(course)
    students = [
        sample.student_id
        for sample in SAMPLES
        if sample.student_id == "reference" or sample.make(course) != reference
    ]
    sandboxed = sandbox.unavailable_reason() is None
    records = grade_class(course, students, jobs=jobs, feedback=False, sandboxed=sandboxed)
    folders = {}
    for student, record in records.items():
        if not record.graded:
            raise SystemExit(f"sample {student} was not graded: {record.issues}")
        folders[student] = course.root / "graded-samples" / student
        shutil.copytree(course.autograded_dir / student / course.assignment, folders[student])
    shutil.rmtree(course.submitted_dir)
    return folders


def test_outputs(folder: Path) -> dict[str, dict[str, list]]:
    """The outputs of every test cell of the executed notebooks in ``folder``: notebook ->
    grade id -> outputs."""
    return {
        path.stem: {
            cell.metadata.nbgrader["grade_id"]: cell.outputs
            for cell in nbformat.read(path, as_version=4).cells
            if utils.is_grade(cell) and not utils.is_solution(cell)
        }
        for path in sorted(folder.glob("*.ipynb"))
    }


def synthesize(course: Course, samples: dict[str, Path], n: int, seed: int = 0) -> list[str]:
    """Write ``n`` graded results under ``course.root / "graded"`` (and the late ones'
    hand-in times under ``submitted/``); return their student ids."""
    rng = random.Random(seed)
    pool = {student: test_outputs(folder) for student, folder in samples.items()}
    others = sorted(set(pool) - {"reference"})
    base = {
        path.stem: nbformat.read(path, as_version=4)
        for path in sorted(samples["reference"].glob("*.ipynb"))
    }
    due = next(a.due for a in read_schedule(course.root) if a.name == course.assignment)
    students = [f"student{number:05d}" for number in range(n)]
    for student in students:
        skill = rng.random()  # the chance of the model solution's output on a question
        folder = course.root / "graded" / student
        folder.mkdir(parents=True)
        for name, notebook in base.items():
            for cell in notebook.cells:
                if utils.is_grade(cell) and not utils.is_solution(cell):
                    source = "reference" if rng.random() < skill else rng.choice(others)
                    cell.outputs = pool[source][name][cell.metadata.nbgrader["grade_id"]]
            nbformat.write(notebook, folder / f"{name}.ipynb")
        if due is not None and rng.random() < LATE_SHARE:
            handed_in = due + timedelta(hours=rng.uniform(1, 100))
            submitted = course.submitted_dir / student / course.assignment
            submitted.mkdir(parents=True)
            (submitted / TIMESTAMP).write_text(handed_in.strftime(TIMESTAMP_FORMAT) + "\n")
    return students


def timed(step: Callable[[], object]) -> float:
    """Wall seconds of ``step()``."""
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=CLASS_SIZE)
    parser.add_argument("--batch", type=int, default=250, help="submissions per merge")
    parser.add_argument("--assignment", default="01_attention")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    n = args.students
    with tempfile.TemporaryDirectory(prefix="tfcourse-coordinator-") as scratch:
        course = make_course(Path(scratch) / "course", args.assignment)
        start = time.perf_counter()
        samples = grade_samples(course, args.jobs)
        print(
            f"{args.assignment}: graded {len(samples)} samples for real in "
            f"{time.perf_counter() - start:.0f} s ({', '.join(samples)})",
            flush=True,
        )
        start = time.perf_counter()
        students = synthesize(course, samples, n)
        print(f"made {n} graded results in {time.perf_counter() - start:.0f} s", flush=True)
        graded = [GradedSubmission(s, [], course.root / "graded" / s) for s in students]
        batches = [graded[i : i + args.batch] for i in range(0, n, args.batch)]

        def merge() -> None:
            for batch in batches:
                merge_grades(course, batch)

        def feedback() -> None:
            gradebook_digests(course, students)
            write_feedback(course, students, args.jobs)

        def export() -> None:
            write_csv(read_scores(course, students), course.root / "scores.csv")
            write_report(course.root)

        seconds = {}
        for phase, step in (("merge", merge), ("feedback", feedback), ("export", export)):
            seconds[phase] = timed(step)
            print(f"  {phase} done in {seconds[phase]:.1f} s", flush=True)
    print()
    print(
        f"{n} submissions, merged in batches of {args.batch}, feedback with --jobs {args.jobs}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'phase':<10}{'total s':>9}{'ms / submission':>17}{'per s':>9}{'10,000 in':>11}")
    for phase, total in [*seconds.items(), ("overall", sum(seconds.values()))]:
        projected = total / n * CLASS_SIZE
        print(
            f"{phase:<10}{total:>9.1f}{1000 * total / n:>17.1f}{n / total:>9.1f}"
            f"{projected / 60:>9.1f} m"
        )
    rate = n / sum(seconds.values())
    verdict = "met" if rate >= 3 else "NOT met"
    print(f"goal: >= 3 submissions per second overall: {rate:.1f} ({verdict})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
