"""How fast a class is graded: the kit's `grade` command, serial and parallel, against plain
serial `nbgrader autograde` of the same submissions.

    python bench/grading_speed.py [--students N] [--jobs J]

Builds a scratch copy of the course (every notebook of the assignment), writes N synthetic
submissions (the bundled samples in turn: model solutions, realistic bugs, the untouched
release), then times, one after the other in the same run:

- plain:       `nbgrader autograde` of all N in one process, nbgrader's own Execute, no
               limits, no sandbox;
- unsandboxed: `python -m tfcourse_instructor.grading grade --jobs 1 --unsandboxed`;
- serial:      `python -m tfcourse_instructor.grading grade --jobs 1` (each submission sandboxed);
- parallel:    `python -m tfcourse_instructor.grading grade --jobs J`.

It prints seconds per submission for each, the speed-up of each kit mode over plain, the
cost of the sandbox (serial against unsandboxed), and what else was using the CPU (the load
average and the busiest other processes), since other work on the machine changes every
figure. Goals: a full submission in <= 60 s (serial figure), the sandbox at most 15% more
time per submission, class throughput >= 4x plain serial nbgrader (parallel speed-up). The
last line says how many cores 4x takes at the measured speed-up of one core.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.schedule import COURSE_FILE, courses
from tfcourse_instructor.grading.selftest.samples import SAMPLES

REPO = Path(__file__).resolve().parents[1]


def make_course(root: Path, students: int) -> list[Course]:
    """A released copy of the course with ``students`` synthetic submissions of every
    assignment; its assignments."""
    root.mkdir(parents=True)
    for name in ("nbgrader_config.py", COURSE_FILE, "requirements.txt"):
        shutil.copy(REPO / name, root)
    for folder in ("source", "release", "authoring"):
        shutil.copytree(REPO / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    for course in courses(root):
        for number in range(students):
            sample = SAMPLES[number % len(SAMPLES)]
            student = f"s{number:03d}-{sample.student_id}"
            folder = course.submitted_dir / student / course.assignment
            shutil.copytree(course.release_dir, folder)
            for name, notebook in sample.make(course).items():
                nbformat.write(notebook, folder / f"{name}.ipynb")
    return courses(root)


def timed(command: list[str], cwd: Path) -> float:
    """Wall seconds of ``command``; fails loudly if it fails."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(
            f"{' '.join(command)} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return seconds


def other_load() -> str:
    """The load average and the busiest processes that are not this benchmark's."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    ps = subprocess.run(
        ["ps", "-eo", "pcpu,args", "--sort=-pcpu"], capture_output=True, text=True, check=False
    )
    busy = [line.strip()[:110] for line in ps.stdout.splitlines()[1:6]]
    return f"load average {load}; busiest processes:\n    " + "\n    ".join(busy)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=4)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    n = args.students
    kit = [sys.executable, "-m", "tfcourse_instructor.grading", "grade"]
    with tempfile.TemporaryDirectory(prefix="tfcourse-bench-") as scratch:
        modes = ("plain", "unsandboxed", "serial", "parallel")
        courses = {mode: make_course(Path(scratch) / mode, n) for mode in modes}
        notebooks = len(courses["plain"])
        print(f"{n} submissions of {notebooks} notebooks each, {os.cpu_count()} cores")
        print(f"before: {other_load()}")
        release = Path(scratch) / "plain-release"
        plain = [sys.executable, "-m", "nbgrader"]
        for course in courses["plain"]:
            timed(
                [*plain, "generate_assignment", course.assignment, "--force",
                 f"--CourseDirectory.release_directory={release}"],
                course.root,
            )
        start = time.perf_counter()
        for course in courses["plain"]:
            timed([*plain, "autograde", course.assignment], course.root)
        seconds = {
            "plain": time.perf_counter() - start,
            "unsandboxed": timed(
                [*kit, "--jobs", "1", "--unsandboxed"], courses["unsandboxed"][0].root
            ),
            "serial": timed([*kit, "--jobs", "1"], courses["serial"][0].root),
            "parallel": timed([*kit, "--jobs", str(args.jobs)], courses["parallel"][0].root),
        }
        print(f"after: {other_load()}")
    print()
    print(f"{'mode':<28}{'total s':>9}{'s / submission':>16}{'speed-up':>10}")
    labels = {
        "plain": "plain nbgrader autograde",
        "unsandboxed": "kit --jobs 1 --unsandboxed",
        "serial": "kit grade --jobs 1",
        "parallel": f"kit grade --jobs {args.jobs}",
    }
    for mode, total in seconds.items():
        speedup = seconds["plain"] / total
        print(f"{labels[mode]:<28}{total:>9.1f}{total / n:>16.1f}{speedup:>9.2f}x")
    print()
    per_submission = seconds["serial"] / n
    print(
        f"goal: a full submission in <= 60 s: {per_submission:.1f} s "
        f"({'met' if per_submission <= 60 else 'NOT met'})"
    )
    cost = seconds["serial"] / seconds["unsandboxed"] - 1
    print(
        f"goal: the sandbox costs at most 15% more time per submission: {cost:+.0%} "
        f"({'met' if cost <= 0.15 else 'NOT met'})"
    )
    throughput = seconds["plain"] / seconds["parallel"]
    print(
        f"goal: class throughput >= 4x plain serial nbgrader: {throughput:.2f}x "
        f"({'met' if throughput >= 4 else 'NOT met'})"
    )
    # --jobs J divides the kit's serial time by at most J, so J cores give at most J times
    # the one-core speed-up: the fewest cores that can reach 4x follow from the serial run.
    per_core = seconds["plain"] / seconds["serial"]
    print(
        f"one core of the kit grades {per_core:.2f}x as fast as plain nbgrader: 4x needs at "
        f"least {math.ceil(4 / per_core)} cores"
    )


if __name__ == "__main__":
    main()
