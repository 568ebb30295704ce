"""How far the kit's grading is from the floor: running the submissions' notebooks once.

    python bench/grading_speed.py [--students N] [--jobs J] [--assignment NAME ...]

Builds a scratch copy of the course for each mode, with N synthetic submissions of each
assignment named (default: every released one; the bundled samples in turn: model solutions,
realistic bugs, the untouched release), then times, one after the other in the same run:

- floor: each submission's notebooks executed bare by nbclient in quick mode, one fresh
  kernel per notebook, test cells left out (no checks, no nbgrader, no sandbox);
- plain: `nbgrader autograde` of all N in one process (nbgrader's own Execute, the public
  checks run in the kernel by otter, no limits, no sandbox);
- kit --jobs 1 and kit --jobs J: `python -m tfcourse_instructor.grading grade`.

The kit's runs record their phases (:mod:`tfcourse_instructor.grading.submission.timings`):
it prints them per submission (kernel start, the cells, the checks and their round trips to
the kernel, nbgrader's own work, merge, feedback, the copy report, the CSVs and class
report). Then the ratios: kit / floor per submission (goal: at most 1.15 with
--jobs 1) and the throughput of --jobs J against --jobs 1 (goal: at least 0.9 J), both once
every job is busy (from when each autograde ended: what a class of thousands sees) and over
the whole runs (with what a run pays once: its start, the class's set-up, feedback and
reports). Other work on the machine changes every figure: the load average is printed before
and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbgrader import utils
from notebook_time import cell_seconds  # this folder, on the path when run as a script

from tfcourse.runmode import GRADING_VARIABLE, QUICK_VARIABLE
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.schedule import COURSE_FILE, courses, select
from tfcourse_instructor.grading.selftest.samples import SAMPLES
from tfcourse_instructor.grading.submission import timings

REPO = Path(__file__).resolve().parents[1]
KIT_PHASES = (
    "pre-flight",
    "scratch course",
    "kernel start",
    "cells",
    "checks",
    "kernel stop",
    "nbgrader's own",
    "submitted outputs",
    "class set-up",
    "merge",
    "feedback",
    "copy report",
    "class report",
)
"""The phases printed for the kit, in order; "nbgrader's own" is its autograde run less the
kernels' starts and stops, cells and checks in it. A kernel's start includes waiting for the
submission's fork server, which imports while nbgrader starts."""


PER_SUBMISSION = KIT_PHASES[: KIT_PHASES.index("submitted outputs") + 1]
"""The phases every submission pays; the others are paid once per class or per batch."""


def make_course(root: Path, names: list[str], students: int) -> list[Course]:
    """A released copy of the course with ``students`` synthetic submissions of each
    assignment of ``names``; those assignments. Each ends with a note of its own, so that no
    two are identical (the kit grades identical submissions once)."""
    root.mkdir(parents=True)
    for name in ("nbgrader_config.py", COURSE_FILE, "requirements.txt"):
        shutil.copy(REPO / name, root)
    for folder in ("source", "release", "authoring"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    chosen = [course for course in courses(root) if course.assignment in names]
    for course in chosen:
        for number in range(students):
            sample = SAMPLES[number % len(SAMPLES)]
            folder = course.submitted_dir / f"s{number:03d}-{sample.student_id}" / course.assignment
            shutil.copytree(course.release_dir, folder)
            for name, notebook in sample.make(course).items():
                note = nbformat.v4.new_markdown_cell(f"Submission {number} of the benchmark.")
                notebook.cells.append(note)
                nbformat.write(notebook, folder / f"{name}.ipynb")
    return chosen


def environment(**extra: str) -> dict[str, str]:
    """This environment with the interpreter's scripts first on ``PATH`` (nbgrader runs
    ``alembic`` by name), without quick mode, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in (GRADING_VARIABLE, QUICK_VARIABLE)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def timed(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall seconds of ``command``; fails loudly if it fails."""
    start = time.perf_counter()
    result = subprocess.run(
        command, cwd=cwd, env=env or environment(), capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return seconds


def floor(chosen: list[Course]) -> dict[str, float]:
    """Run every submitted notebook's cells but its test cells, in quick mode, each in a
    fresh kernel; seconds spent starting and stopping kernels, and running cells."""
    spent = {"kernel start": 0.0, "cells": 0.0}
    env = environment(**{GRADING_VARIABLE: "autograde"})
    for course in chosen:
        for folder in sorted(course.submitted_dir.glob(f"*/{course.assignment}")):
            for path in sorted(folder.glob("*.ipynb")):
                notebook = nbformat.read(path, as_version=4)
                notebook.cells = [
                    cell
                    for cell in notebook.cells
                    if not (utils.is_grade(cell) and not utils.is_solution(cell))
                    or cell.cell_type != "code"
                ]
                client = NotebookClient(
                    notebook,
                    timeout=600,
                    kernel_name="python3",
                    allow_errors=True,
                    record_timing=True,
                    resources={"metadata": {"path": str(folder)}},
                )
                start = time.perf_counter()
                client.execute(env=env)
                total = time.perf_counter() - start
                cells = sum(cell_seconds(cell) for cell in notebook.cells)
                spent["cells"] += cells
                spent["kernel start"] += total - cells
    return spent


def plain(chosen: list[Course], scratch: Path) -> float:
    """Seconds of plain ``nbgrader autograde`` of every submission (its set-up not counted)."""
    nbgrader = [sys.executable, "-m", "nbgrader"]
    exporter = "--Autograde.exporter_class=nbconvert.exporters.NotebookExporter"
    for course in chosen:
        release = f"--CourseDirectory.release_directory={scratch / 'plain-release'}"
        timed(
            [*nbgrader, "generate_assignment", course.assignment, "--force", release], course.root
        )
    start = time.perf_counter()
    for course in chosen:
        timed([*nbgrader, "autograde", course.assignment, exporter], course.root)
    return time.perf_counter() - start


@dataclass
class KitRun:
    """What one run of the kit's ``grade`` took."""

    seconds: float
    phases: dict[str, float]
    """Seconds per phase, summed over submissions and assignments."""
    round_trips: int
    """The round trips to the kernel of every check."""
    graded_at: list[float]
    """When each submission's autograde ended (seconds since the epoch), in order."""
    jobs: int

    def steady_rate(self) -> float:
        """Submissions graded per second once every job is busy: the submissions after the
        first ``jobs`` over the time from the end of the ``jobs``-th to the end of the last
        (what a class of thousands sees; the run's start and end are paid once)."""
        ends = self.graded_at
        return (len(ends) - self.jobs) / (ends[-1] - ends[self.jobs - 1])


def kit(chosen: list[Course], jobs: int, log: Path) -> KitRun:
    """The kit's ``grade --jobs jobs`` of ``chosen``, timed."""
    names = [arg for course in chosen for arg in ("--assignment", course.assignment)]
    command = [sys.executable, "-m", "tfcourse_instructor.grading", "grade", "--jobs", str(jobs)]
    seconds = timed([*command, *names], chosen[0].root, environment(**{timings.VARIABLE: str(log)}))
    phases: dict[str, float] = defaultdict(float)
    round_trips = 0
    graded_at = []
    for entry in timings.read(log):
        phases[entry["phase"]] += entry["seconds"]
        round_trips += entry.get("round_trips", 0)
        if entry["phase"] == "nbgrader autograde":
            graded_at.append(entry["ended"])
    inside = sum(phases[name] for name in ("kernel start", "cells", "checks", "kernel stop"))
    phases["nbgrader's own"] = phases.pop("nbgrader autograde", 0.0) - inside
    return KitRun(seconds, phases, round_trips, sorted(graded_at), jobs)


def load() -> str:
    """The load average and the busiest processes that are not this benchmark's."""
    average = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    ps = subprocess.run(
        ["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, check=False
    )
    busy = [line.strip()[:110] for line in ps.stdout.splitlines()[1:6]]
    return f"load average {average}; busiest processes:\n    " + "\n    ".join(busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--assignment", action="append", help="grade only this one (repeatable; default: all)"
    )
    args = parser.parse_args()
    n, jobs = args.students, args.jobs
    if n <= jobs:
        parser.error("--students must exceed --jobs: the rates are taken once every job is busy")
    names = select(REPO, args.assignment, released_only=True)
    with tempfile.TemporaryDirectory(prefix="tfcourse-bench-") as folder:
        scratch = Path(folder)
        modes = ("floor", "plain", "serial", "parallel")
        chosen = {mode: make_course(scratch / mode, names, n) for mode in modes}
        print(f"{n} submissions of {', '.join(names)}; {os.cpu_count()} cores; --jobs {jobs}")
        print(f"before: {load()}")
        start = time.perf_counter()
        floor_phases = floor(chosen["floor"])
        seconds = {"floor": time.perf_counter() - start}
        seconds["plain"] = plain(chosen["plain"], scratch)
        serial_run = kit(chosen["serial"], 1, scratch / "serial.jsonl")
        parallel_run = kit(chosen["parallel"], jobs, scratch / "par.jsonl")
        seconds["serial"], seconds["parallel"] = serial_run.seconds, parallel_run.seconds
        serial, parallel = serial_run.phases, parallel_run.phases
        print(f"after: {load()}")
    labels = {
        "floor": "floor: nbclient, quick mode",
        "plain": "plain nbgrader autograde",
        "serial": "kit grade --jobs 1",
        "parallel": f"kit grade --jobs {jobs}",
    }
    print()
    print(f"{'mode':<30}{'total s':>9}{'s / submission':>16}{'x floor':>9}")
    for mode, total in seconds.items():
        print(f"{labels[mode]:<30}{total:>9.1f}{total / n:>16.1f}{total / seconds['floor']:>8.2f}x")
    print()
    print(f"per submission, s{'':<16}{'floor':>8}{'kit -j 1':>10}{f'kit -j {jobs}':>10}")
    for name in KIT_PHASES:
        base = f"{floor_phases[name] / n:>8.2f}" if name in floor_phases else f"{'':>8}"
        print(
            f"  {name:<30}{base}{serial.get(name, 0) / n:>10.2f}{parallel.get(name, 0) / n:>10.2f}"
        )
    recorded = sum(serial.values())
    print(f"  {'rest of the command':<30}{'':>8}{(seconds['serial'] - recorded) / n:>10.2f}")
    print(f"  checks: {serial_run.round_trips / n:.0f} round trips to the kernel per submission")
    print()
    ratio = seconds["serial"] / seconds["floor"]
    print(
        f"goal: kit --jobs 1 <= 1.15 x the floor: {ratio:.2f}x "
        f"({'met' if ratio <= 1.15 else 'NOT met'})"
    )
    # Set-up, merge, feedback, the reports and the command's start are paid once per
    # class or per batch: what a class of thousands pays per submission is the rest.
    marginal = sum(serial.get(name, 0) for name in PER_SUBMISSION) / seconds["floor"]
    print(f"  each submission's own phases with --jobs 1: {marginal:.2f}x the floor")
    whole = seconds["serial"] / seconds["parallel"] / jobs
    steady = parallel_run.steady_rate() / serial_run.steady_rate() / jobs
    print(
        f"goal: --jobs {jobs} grades >= 0.9 x {jobs} times as fast as --jobs 1, once every job "
        f"is busy: {steady:.2f} x {jobs} ({'met' if steady >= 0.9 else 'NOT met'})"
    )
    print(
        f"  steady rates: {serial_run.steady_rate() * 60:.1f} and "
        f"{parallel_run.steady_rate() * 60:.1f} submissions a minute; whole runs, with what "
        f"each pays once (start, set-up, feedback, reports): {whole:.2f} x {jobs}"
    )


if __name__ == "__main__":
    main()
