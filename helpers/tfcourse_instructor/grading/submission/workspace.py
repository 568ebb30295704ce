"""Grade one submission in a scratch course of its own, its code in a sandbox of its own.

Every submission gets a fresh copy of a template course: the source notebooks (without
their tests, so nbgrader copies no test file next to the student's notebook), a copy of the
class gradebook without its students (it knows the assignment), the test files in a folder
of their own (read by the trusted runner only), the modules the assignment gives in another
(which the trusted runner imports and the sandbox reads), and a Jupyter kernel spec that
starts :mod:`tfcourse.grading_kernel.kernel` with the memory limit. nbgrader there runs
:class:`~tfcourse_instructor.grading.submission.execution.GuardedExecute` outside the sandbox, and
with it the test cells' checks; the submission's kernels are forked by a fork server inside it
(:mod:`tfcourse_instructor.grading.submission.sandbox`), and reached through Unix sockets in a
folder of their own, the only place the sandbox shares with the grader. That folder lies on a memory
file system where there is one, so what a submission writes there counts against its memory limit
and never reaches the grader's disk; the grader reaches the sockets through links it makes in a
folder of its own (:mod:`tfcourse.grading_kernel.pinned`). Submissions graded in parallel thus never
share a gradebook, a kernel or a test file, and none can see another's files, the course repository
or the grading run; the class gradebook is written later by one process
(:mod:`tfcourse_instructor.grading.classroom.merge`).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbgrader import utils
from nbgrader.api import Gradebook

from tfcourse.grading_kernel import attempts, forkserver
from tfcourse_instructor.grading.course import GIVEN_FOLDER, Course
from tfcourse_instructor.grading.submission import graded_outputs, timings
from tfcourse_instructor.grading.submission.folders import memory_folder
from tfcourse_instructor.grading.submission.graded_outputs import limit_notes
from tfcourse_instructor.grading.submission.issues import (
    Issue,
    execution_issues,
    graded_better_than_stored,
)
from tfcourse_instructor.grading.submission.sandbox import (
    Mounts,
    Sandbox,
    submission_mounts,
)
from tfcourse_instructor.grading.submission.sandbox.bwrap import GRADING_UID
from tfcourse_instructor.grading.submission.shown_outputs import show_submitted_outputs
from tfcourse_instructor.grading.submission.warm import WarmProcesses

KIT_EXPORTER = "nbconvert.exporters.NotebookExporter"
"""The exporter nbgrader's autograde uses by default, named where the kit runs it."""

GRADING_CONFIG = """
# Added for grading one submission in a scratch course
# (tfcourse_instructor.grading.submission.workspace).
from nbgrader.preprocessors import (
    AssignLatePenalties, CheckCellMetadata, IgnorePattern, LimitOutput, SaveAutoGrades,
)
from nbconvert.preprocessors import ClearMetadataPreprocessor
from tfcourse_instructor.grading.submission.execution import GuardedExecute

c.Autograde.autograde_preprocessors = [
    GuardedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, SaveAutoGrades,
    AssignLatePenalties, CheckCellMetadata,
]
c.Autograde.exporter_class = "{exporter}"
c.GuardedExecute.timeout = {cell_seconds}
c.GuardedExecute.notebook_timeout = {notebook_seconds}
# A graded notebook's kernel has nothing left to do: killed, not asked to shut down (which
# jupyter_client waits for in steps of 0.1 s); its sandbox ends what it started.
c.GuardedExecute.shutdown_kernel = "immediate"
# Kernels run in a sandbox without a network: they are reached through Unix sockets.
c.KernelManager.transport = "ipc"
"""

SCRATCH_STUDENT = "student"
"""The id every submission is graded under in its scratch course (the class gradebook gets
the real one when the grades are merged)."""

SERVER_WAIT_SECONDS = 50
"""How long a kernel waits for its fork server to finish importing: within nbclient's 60 s for a
kernel to start."""

_MAX_SOCKET_PATH = 100
"""Unix socket paths are limited to 107 bytes; jupyter_client appends about 50."""


@dataclass(frozen=True)
class Limits:
    """Per-cell and per-notebook seconds, memory (MiB) per kernel, and limits on the whole
    submission: memory of all its processes together, processes (threads count)."""

    cell_seconds: int = 120
    notebook_seconds: int = 600
    memory_mb: int = 3072
    submission_memory_mb: int = 4096
    processes: int = 256
    threads: int = 1
    """Threads torch may use in each kernel, and in the process that runs its checks (cores
    divided by parallel jobs)."""
    grader_memory_mb: int = 4096
    """Address space of the trusted process that grades the submission (nbgrader with the
    test runner, which holds what the kernel sends back)."""


@dataclass
class GradedSubmission:
    """The outcome of grading one submission in its scratch course."""

    student: str
    issues: list[Issue]
    autograded: Path | None = None
    """Folder of the executed notebooks (None if grading failed altogether)."""


class Workspace:
    """Scratch courses under ``root``, one per submission, copied from a template."""

    def __init__(
        self,
        course: Course,
        root: Path,
        limits: Limits,
        warm: WarmProcesses,
    ) -> None:
        self.course = course
        self.root = root
        self.limits = limits
        self.warm = warm
        """The processes nbgrader's runs and the fork servers start from (the caller ends
        them)."""
        self.template = root / "template"
        self._secret = os.urandom(32)
        self.exchange = root
        """Where the sandboxes' sockets folders and the connection files live (same file
        system: the grader hard-links the sockets), on a memory file system if there is one."""

    @property
    def sandboxed(self) -> bool:
        """Whether each submission's kernels run in a bubblewrap sandbox (as the warm
        processes were made for)."""
        return self.warm.sandboxed

    def prepare(self) -> None:
        """Write the template course. Its gradebook is a copy of the class gradebook, which
        must already record the assignment
        (:func:`tfcourse_instructor.grading.classroom.merge.record_assignment`), without its
        students."""
        template = Course(self.template, self.course.assignment)
        config = (self.course.root / "nbgrader_config.py").read_text(encoding="utf-8")
        config += GRADING_CONFIG.format(
            exporter=KIT_EXPORTER,
            cell_seconds=self.limits.cell_seconds,
            notebook_seconds=self.limits.notebook_seconds,
        )
        self.template.mkdir(parents=True)
        (self.template / "nbgrader_config.py").write_text(config, encoding="utf-8")
        shutil.copytree(
            self.course.source_dir,
            template.source_dir,
            ignore=shutil.ignore_patterns(
                self.course.public_tests_dir.name, "__pycache__", ".ipynb_checkpoints"
            ),
        )
        shutil.copytree(self.course.tests_dir, self.template / "grading_tests")
        if self.course.given_dir.is_dir():
            shutil.copytree(self.course.given_dir, self.template / GIVEN_FOLDER)
        with (
            contextlib.closing(sqlite3.connect(self.course.gradebook)) as class_gradebook,
            contextlib.closing(sqlite3.connect(template.gradebook)) as copy,
        ):
            class_gradebook.backup(copy)
        # Student code can read the scratch course's files: leave no other student in it.
        with Gradebook(f"sqlite:///{template.gradebook}") as gradebook:
            for student in gradebook.students:
                gradebook.remove_student(student.id)
        with contextlib.closing(sqlite3.connect(template.gradebook)) as copy:
            copy.execute("VACUUM")  # deleted rows would stay readable in free pages

    def open(self) -> None:
        """Make the folders the submissions' sandboxes share with the grader, and start the
        warm processes if they are not running: before :meth:`prepare`, so that they import
        while the class is set up. A workspace whose template was written elsewhere (a
        cluster's worker unpacks it) needs only this."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.exchange = memory_folder() or self.root
        (self.exchange / "sockets").mkdir()
        (self.exchange / "connections").mkdir(mode=0o700)
        self.warm.start()

    def close(self) -> None:
        """Remove what :meth:`open` put outside ``root``."""
        if self.exchange != self.root:
            shutil.rmtree(self.exchange, ignore_errors=True)

    def grade(self, student: str, notebooks: dict[str, nbformat.NotebookNode]) -> GradedSubmission:
        """Autograde ``notebooks`` (name -> prepared notebook) of ``student``; the limits
        they hit, what their code tried in its sandbox and the outputs withheld become issues.
        The scratch course (:meth:`scratch_folder`) names no student: what the submission's
        code sees of it, and so what it can print, is the same for every student."""
        scratch = Course(self.scratch_folder(student), self.course.assignment)
        with timings.phase("scratch course"):
            if scratch.root.exists():
                shutil.rmtree(scratch.root)
            shutil.copytree(self.template, scratch.root)
            folder = scratch.submitted_dir / SCRATCH_STUDENT / scratch.assignment
            folder.mkdir(parents=True)
            for name, notebook in notebooks.items():
                nbformat.write(_without_check_outputs(notebook), folder / f"{name}.ipynb")
        autograded = scratch.autograded_dir / SCRATCH_STUDENT / scratch.assignment
        sockets = Path(tempfile.mkdtemp(prefix="k", dir=self.exchange / "sockets"))
        connections = Path(tempfile.mkdtemp(prefix="k", dir=self.exchange / "connections"))
        sandbox = Sandbox(
            self._mounts(sockets, autograded) if self.sandboxed else None,
            self.limits.submission_memory_mb,
            self.limits.processes,
            self.warm.zygote,
        )
        issues: list[Issue] = []
        try:
            issues = self._autograde(scratch, len(notebooks), (sockets, connections), sandbox)
        finally:
            tried = sandbox.close() + attempts.read(sockets)
            issues = [Issue("", problem) for problem in tried] + issues
            shutil.rmtree(sockets, ignore_errors=True)
            shutil.rmtree(connections, ignore_errors=True)
        if any(issue.problem.startswith("not graded") for issue in issues):
            return GradedSubmission(student, issues)
        with timings.phase("submitted outputs"):
            issues += self._check_outputs(autograded, notebooks)
        return GradedSubmission(student, issues, autograded)

    def scratch_folder(self, student: str) -> Path:
        """Where ``student``'s submission is graded: a folder named by a digest of the id
        keyed with this workspace's secret, which no submission can reverse."""
        digest = hmac.new(self._secret, student.encode(), hashlib.sha256).hexdigest()
        return self.root / "students" / digest[:24]

    def _autograde(
        self,
        scratch: Course,
        count: int,
        folders: tuple[Path, Path],
        sandbox: Sandbox,
    ) -> list[Issue]:
        """Start the submission's fork server in ``sandbox``, and nbgrader's autograde while
        the server imports (its kernels wait for it). ``folders``: the sandbox's sockets (it
        writes there) and the kernels' connection files (the grader writes there, where the
        sandbox cannot: the kernel gets a copy)."""
        sockets, connections = folders
        server = None
        if forkserver.SUPPORTED:
            server = forkserver.ForkServer(
                sockets / "fork.sock",
                popen=sandbox.popen,
                font_list=self.warm.font_list,
                processes=sandbox.process_limit_without_group,
            )
        workdir = scratch.autograded_dir / SCRATCH_STUDENT / scratch.assignment
        env = {
            "JUPYTER_PATH": str(self._kernel_spec(scratch.root, server, workdir)),
            # The checks' own torch computations, as many threads as the kernel's: parallel
            # jobs that each spread over every core slow one another down.
            **thread_variables(self.limits.threads),
        }
        budget = self.limits.notebook_seconds * max(1, count) + 300
        try:
            with timings.phase("nbgrader autograde"):
                self.warm.nbgrader(
                    scratch,
                    "autograde",
                    scratch.assignment,
                    f"--student={SCRATCH_STUDENT}",
                    "--force",
                    f"--KernelManager.connection_file={connections / 'kernel.json'}",
                    # Where the client finds the kernel's sockets (kernel-ipc-N): links the
                    # kernel's stand-in makes to the sockets it binds in the sandbox's folder.
                    f"--KernelManager.ip={connections / 'kernel-ipc'}",
                    timeout=budget,
                    env=env,
                    memory_mb=self.limits.grader_memory_mb,
                )
        except RuntimeError as error:
            # nbgrader may fail before its kernel asks for the server: ask the server itself.
            if server and not server.wait_ready(timeout=SERVER_WAIT_SECONDS):
                return [Issue("", "not graded: its sandbox did not start (see `grade --help`)")]
            return [Issue("", f"not graded: {_last_line(error)}")]
        return []

    def _mounts(self, sockets: Path, workdir: Path) -> Mounts:
        """The submission's view
        (:func:`~tfcourse_instructor.grading.submission.sandbox.submission_mounts`)."""
        if len(str(sockets)) > _MAX_SOCKET_PATH - 50:
            raise RuntimeError(f"{sockets}: too long a path for Unix sockets (set TMPDIR)")
        given = self.template / GIVEN_FOLDER
        return submission_mounts((sockets,), workdir, (given,) if given.is_dir() else ())

    def _check_outputs(
        self, autograded: Path, submitted: dict[str, nbformat.NotebookNode]
    ) -> list[Issue]:
        """Report the limits each executed notebook hit and what its cells raised; then let
        it show the outputs the student submitted."""
        issues = []
        notes = limit_notes(self.limits.cell_seconds, self.limits.notebook_seconds)
        for path in sorted(autograded.glob("*.ipynb")):
            notebook = nbformat.read(path, as_version=4)
            issues += execution_issues(path.stem, notebook)
            issues += graded_better_than_stored(path.stem, notebook, submitted[path.stem])
            show_submitted_outputs(notebook, submitted[path.stem], notes)
            graded_outputs.rewrite(notebook, path)
        return issues

    def _kernel_spec(
        self, scratch: Path, server: forkserver.ForkServer | None, workdir: Path
    ) -> Path:
        """A ``python3`` kernel spec (found before the installed one) that starts the
        grading kernel from the submission's fork server, at home in ``workdir``."""
        jupyter = scratch / "jupyter"
        spec = jupyter / "kernels" / "python3"
        spec.mkdir(parents=True)
        server_args = []
        if server:
            log = server.socket_path.parent / attempts.LOG_NAME
            server_args = ["--fork-server", str(server.socket_path), "--attempts-log", str(log)]
            server_args += ["--kernel-sockets", str(server.socket_path.parent)]
            server_args += ["--server-wait", str(SERVER_WAIT_SECONDS)]
            if os.geteuid() == 0 and self.sandboxed:
                server_args += ["--server-uid", str(GRADING_UID)]
        argv = [
            sys.executable,
            "-m",
            "tfcourse.grading_kernel.kernel",
            *server_args,
            "--memory-mb",
            str(self.limits.memory_mb),
            "-f",
            "{connection_file}",
        ]
        kernel = {
            "argv": argv,
            "display_name": "Python 3 (grading)",
            "language": "python",
            "env": {
                **thread_variables(self.limits.threads),
                # Its own folder (for IPython's profile, matplotlib's cache) and /tmp are
                # the places a kernel may write in its sandbox.
                "HOME": str(workdir),
                "TMPDIR": "/tmp",
            },
        }
        (spec / "kernel.json").write_text(json.dumps(kernel, indent=1), encoding="utf-8")
        return jupyter


def thread_variables(threads: int) -> dict[str, str]:
    """The variables that give torch (OpenMP, MKL) ``threads`` threads in a process started
    with them (:mod:`.preloaded` applies them to the runs it forks)."""
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _without_check_outputs(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose test cells hold no output: what the student's own run
    left there is compared with the grading afterwards, and never reaches nbgrader, which
    would read points in it."""
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            cell.outputs = []
    return copy


def _last_line(error: Exception) -> str:
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1][:200] if lines else type(error).__name__
