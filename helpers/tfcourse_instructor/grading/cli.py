"""``python -m tfcourse_instructor.grading COMMAND``: the instructor's and grader's commands.

Each assignment is one notebook (course.toml lists them: which are released, when each is
due). A command runs for the assignments named with --assignment (build, mutants and
gradescope take them as arguments), by default for every one (grade, publish: every
released one).

build      authoring/ twins -> source/ notebooks (executed, so nbval can check outputs)
release    source/ -> release/ (student notebooks and public test files)
publish    release/ -> the student distribution (default student/): what students may see
samples    release, write the sample submissions, grade them, print the scores
grade      grade a class: intake (an LMS zip or submitted/), pre-flight checks, autograde
           with limits in parallel (on this machine, or on a Dask cluster with --scheduler),
           feedback, grades CSV, class report, summary (alias: autograde)
report     write grades.csv and the class report (report/index.html) again from the
           gradebook, grading nothing: per-question statistics, failed cases, a figure
reproduce  re-run one submitted notebook top to bottom: which stored outputs it reproduces
mutants    grade the wrong answers and correct alternatives declared in authoring/mutants/:
           per question, mutants killed and alternatives accepted (exit 1 if any is not)
parity     check each question of the sample submissions inside a kernel and through the
           trusted runner: the cases whose verdicts differ (exit 1 if any)
gradescope otter autograder zips for Gradescope, one per notebook, in gradescope/
sandbox    explain what a submission's code sees and can do while graded
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from tfcourse_instructor.grading.classroom.pipeline import default_jobs
from tfcourse_instructor.grading.commands import COMMANDS
from tfcourse_instructor.grading.course import find_root
from tfcourse_instructor.grading.schedule import ScheduleError
from tfcourse_instructor.grading.similarity.copies import DEFAULT_THRESHOLD
from tfcourse_instructor.grading.submission.workspace import Limits


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse_instructor.grading",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write source notebooks from authoring/ twins")
    build.add_argument("notebooks", nargs="*", help="names such as 01_attention (default: all)")
    build.add_argument("--no-run", action="store_true", help="do not execute (no outputs)")
    release = commands.add_parser("release", help="regenerate release/ from source/")
    publish_parser = commands.add_parser(
        "publish", help="write the student distribution (release, public tests, student package)"
    )
    publish_parser.add_argument("--out", type=Path, default=Path("student"), metavar="DIR")
    samples = commands.add_parser(
        "samples", help="release, then grade the bundled sample submissions"
    )
    grade_parser = commands.add_parser(
        "grade", aliases=["autograde"], help="grade every submission under submitted/"
    )
    grade_parser.add_argument("--zip", type=Path, help="an LMS download to collect first")
    grade_parser.add_argument("--force", action="store_true", help="re-grade unchanged ones")
    grade_parser.add_argument(
        "--roster",
        type=Path,
        metavar="CSV",
        help="students' names for formgrader: a CSV with nbgrader's columns id, first_name, "
        "last_name, email (checked whole before grading)",
    )
    grade_parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on the Dask cluster of this scheduler (tcp://HOST:8786, tls://..., or a "
        "scheduler file); needs the cluster extra (pip install '.[cluster]')",
    )
    grade_parser.add_argument(
        "--merge-every",
        type=int,
        default=500,
        metavar="N",
        help="merge grades into the gradebook every N submissions graded (and every 5 "
        "minutes): what a stopped run has merged is not graded again (default 500)",
    )
    mutants_parser = commands.add_parser(
        "mutants", help="grade the declared mutants and alternatives of every question"
    )
    mutants_parser.add_argument(
        "notebooks", nargs="*", help="names such as 01_attention (default: all)"
    )
    mutants_parser.add_argument(
        "--question", action="append", help="only the variants of this question (repeatable)"
    )
    for parser_ in (grade_parser, samples, mutants_parser):
        _add_grading_options(parser_)
    for parser_ in (grade_parser, samples):
        parser_.add_argument(
            "--copy-threshold",
            type=float,
            default=DEFAULT_THRESHOLD,
            metavar="SCORE",
            help=f"report answers this similar or more (0 to 1, default {DEFAULT_THRESHOLD:g})",
        )
    parity_parser = commands.add_parser(
        "parity", help="the trusted runner's verdicts against checks inside the notebook"
    )
    parity_parser.add_argument("samples", nargs="*", help="sample ids (default: all)")
    parity_parser.add_argument("--question", action="append", help="only these questions")
    gradescope_parser = commands.add_parser(
        "gradescope", help="write otter autograder zips for Gradescope in gradescope/"
    )
    gradescope_parser.add_argument(
        "notebooks", nargs="*", help="names such as 01_attention (default: all)"
    )
    commands.add_parser(
        "sandbox", help="explain what a submission's code sees and can do while graded"
    )
    commands.add_parser(
        "report", help="write grades.csv and the class report from the gradebook, grading nothing"
    )
    reproduce = commands.add_parser(
        "reproduce", help="re-run a submission: which stored outputs its code reproduces"
    )
    reproduce.add_argument("student", help="a student id under submitted/")
    reproduce.add_argument("--cell-timeout", type=int, default=300, metavar="S")
    for parser_ in (release, samples, grade_parser, parity_parser, reproduce):
        parser_.add_argument(
            "--assignment",
            action="append",
            metavar="NAME",
            help="only this assignment, e.g. 01_attention (repeatable; default: every one, "
            "grade: every released one)",
        )
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](find_root(), args)
    except ScheduleError as error:
        print(error, file=sys.stderr)
        return 2


def _add_grading_options(parser: argparse.ArgumentParser) -> None:
    defaults = Limits()
    parser.add_argument(
        "--jobs", type=int, default=default_jobs(), help="submissions graded at once (cores)"
    )
    parser.add_argument("--cell-timeout", type=int, default=defaults.cell_seconds, metavar="S")
    parser.add_argument(
        "--notebook-timeout", type=int, default=defaults.notebook_seconds, metavar="S"
    )
    parser.add_argument("--memory-mb", type=int, default=defaults.memory_mb, metavar="MB")
    parser.add_argument(
        "--submission-memory-mb",
        type=int,
        default=defaults.submission_memory_mb,
        metavar="MB",
        help="memory of all the processes of one submission together",
    )
    parser.add_argument(
        "--grader-memory-mb",
        type=int,
        default=defaults.grader_memory_mb,
        metavar="MB",
        help="memory of the trusted process that runs one submission's checks",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=defaults.processes,
        help="processes and threads of one submission together",
    )
    parser.add_argument(
        "--unsandboxed",
        action="store_true",
        help="grade without a sandbox where bubblewrap cannot run: grades are then NOT "
        "protected against hostile submissions",
    )
