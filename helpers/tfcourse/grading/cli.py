"""``python -m tfcourse.grading COMMAND``: the instructor's and grader's commands.

build      authoring/ twins -> source/ notebooks (executed, so nbval can check outputs)
release    source/ -> release/ (student notebooks and public test files)
samples    release, write the sample submissions, autograde them, print the scores
autograde  autograde every submission under submitted/, print the scores
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tfcourse.grading import authoring, samples
from tfcourse.grading.autograde import autograde_students, forget_students, submitted_students
from tfcourse.grading.course import Course
from tfcourse.grading.release import generate_release
from tfcourse.grading.scores import format_table, read_scores, write_csv

SCORES_CSV = "grades_by_question.csv"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; return the process exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse.grading",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="write source notebooks from authoring/ twins")
    build.add_argument("notebooks", nargs="*", help="names such as 01_attention (default: all)")
    build.add_argument("--no-run", action="store_true", help="do not execute (no outputs)")
    commands.add_parser("release", help="regenerate release/ from source/")
    commands.add_parser("samples", help="release, then grade the bundled sample submissions")
    commands.add_parser("autograde", help="grade every submission under submitted/")
    args = parser.parse_args(argv)

    course = Course.find()
    if args.command == "build":
        for path in authoring.build_all(course, not args.no_run, args.notebooks):
            print(f"wrote {path.relative_to(course.root)}")
    elif args.command == "release":
        generate_release(course)
        print(f"wrote {course.release_dir.relative_to(course.root)}")
    elif args.command == "samples":
        generate_release(course)
        students = samples.write_samples(course)
        forget_students(course, students)  # derived afresh each run: no stale grades
        grade(course, students)
    elif args.command == "autograde":
        students = submitted_students(course)
        if not students:
            print(f"no submissions under {course.submitted_dir}", file=sys.stderr)
            return 1
        grade(course, students)
    return 0


def grade(course: Course, students: list[str]) -> None:
    """Autograde ``students``, write the CSVs and feedback, print the score table."""
    print(f"autograding {len(students)} submission(s) of {course.assignment!r} ...", flush=True)
    grades_csv = autograde_students(course, students)
    scores = read_scores(course, students)
    write_csv(scores, course.root / SCORES_CSV)
    print()
    print(format_table(scores))
    print()
    print(f"grades: {grades_csv.name}, per question: {SCORES_CSV}, feedback: feedback/")
