"""Where things live in a course directory, and how nbgrader is run there."""

from __future__ import annotations

import importlib.util
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

GRADEBOOK = "gradebook.db"
"""nbgrader's gradebook at the course root: the grades of every assignment."""
GIVEN_FOLDER = "grading_given"
"""Where a scratch course holds its copy of the modules the assignment gives: the trusted
runner imports them from there, and the sandbox reads them, read-only, on its Python path."""
BOUND_TO_PARENT = "tfcourse_instructor.grading.bound_to_parent"
"""Starts nbgrader so that it ends with the grading process (:mod:`.bound_to_parent`)."""


def find_root(start: Path | None = None) -> Path:
    """The course root (the folder holding ``nbgrader_config.py``), searching upwards from
    ``start`` (default: the working directory)."""
    start = (start or Path.cwd()).resolve()
    for folder in (start, *start.parents):
        if (folder / "nbgrader_config.py").is_file():
            return folder
    raise FileNotFoundError(f"no nbgrader_config.py in {start} or any parent folder")


def import_given(folder: Path) -> None:
    """Import the modules in ``folder`` under their names, once per process: the instructor's
    copy of the modules an assignment gives (:attr:`Course.given_dir`), which its test files
    import by name. While a submission is graded this copy, outside the sandbox, is in place
    before any of the submission's code runs, so a module it writes beside its notebook is
    never the one the checks get."""
    for path in sorted(folder.resolve().glob("*.py")) if folder.is_dir() else []:
        if getattr(sys.modules.get(path.stem), "__file__", None) == str(path):
            continue
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"{path} is not a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)


@dataclass(frozen=True)
class Course:
    """One assignment of a course directory laid out as the kit expects
    (``nbgrader_config.py`` and ``course.toml`` at its root; :mod:`.schedule` lists the
    assignments). Every assignment is one notebook, with its own tests."""

    root: Path
    assignment: str

    @property
    def authoring_dir(self) -> Path:
        """Text twins of the source notebooks (jupytext percent format)."""
        return self.root / "authoring" / self.assignment

    @property
    def source_dir(self) -> Path:
        return self.root / "source" / self.assignment

    @property
    def release_dir(self) -> Path:
        return self.root / "release" / self.assignment

    @property
    def submitted_dir(self) -> Path:
        return self.root / "submitted"

    @property
    def autograded_dir(self) -> Path:
        return self.root / "autograded"

    @property
    def gradebook(self) -> Path:
        return self.root / GRADEBOOK

    @property
    def tests_dir(self) -> Path:
        """Public and hidden test files, one per question (otter's exception format). They
        live beside the twins, outside ``source/``: nbgrader copies every file of a source
        folder to wherever it writes (release, autograde, feedback), so no nbgrader command
        or formgrader button can hand a hidden test out."""
        return self.authoring_dir / "tests"

    @property
    def public_tests_dir(self) -> Path:
        """The students' test files (hidden cases cut out), generated from :attr:`tests_dir`;
        ``nbgrader generate_assignment`` copies them into the release."""
        return self.source_dir / "tests"

    @property
    def given_dir(self) -> Path:
        """Modules the assignment gives (a model to train, say), released beside its notebook
        rather than in the package students install on day one: one that answers an earlier
        assignment's question reaches students with the later assignment."""
        return self.authoring_dir / "given"

    def given_modules(self) -> list[Path]:
        """The given modules' files, in name order (none if the assignment gives none)."""
        return sorted(self.given_dir.glob("*.py"))

    def copy_given_modules(self, folder: Path) -> list[str]:
        """Copy the given modules into ``folder``, where a notebook run there imports them;
        return their file names."""
        for module in self.given_modules():
            shutil.copy(module, folder / module.name)
        return [module.name for module in self.given_modules()]

    def notebook_names(self) -> list[str]:
        """Names (without .ipynb) of the assignment's notebooks, in order."""
        return sorted(path.stem for path in self.source_dir.glob("*.ipynb"))

    def nbgrader(
        self,
        *args: str,
        timeout: float | None = None,
        env: Mapping[str, str] | None = None,
        memory_mb: int | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``nbgrader ARGS`` in the course root; raise with its output if it fails or
        runs longer than ``timeout`` seconds. ``env`` adds environment variables;
        ``memory_mb`` caps the address space nbgrader may map (for a run whose memory a
        submission steers, such as its autograde)."""
        command = [sys.executable, "-m", BOUND_TO_PARENT, str(os.getpid()), "nbgrader", *args]
        # Output goes to files, not pipes: a process a kernel left behind may hold them open,
        # and waiting for the end of a pipe would wait for it. A session of its own, so that a
        # timeout stops nbgrader and whatever it started.
        with (
            tempfile.TemporaryFile("w+") as out,
            tempfile.TemporaryFile("w+") as err,
            subprocess.Popen(
                command,
                cwd=self.root,
                env=nbgrader_environment(env),
                stdout=out,
                stderr=err,
                start_new_session=True,
            ) as process,
        ):
            if memory_mb is not None:
                limit = memory_mb << 20
                resource.prlimit(process.pid, resource.RLIMIT_AS, (limit, limit))
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                raise ran_over(args, timeout) from None
            return check_nbgrader(args, process.returncode, out, err, memory_mb)


def nbgrader_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables an nbgrader run gets: this process's, and ``env``."""
    full_env = {**os.environ, **(env or {})}
    # nbgrader runs `alembic` by name: make this interpreter's scripts folder findable.
    full_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{full_env.get('PATH', '')}"
    return full_env


NbgraderRun = Callable[..., object]
"""``run(course, *args)`` runs ``nbgrader ARGS`` in ``course``, as :meth:`Course.nbgrader` does."""


def ran_over(args: Sequence[str], timeout: float) -> RuntimeError:
    """The error of a run of ``nbgrader ARGS`` stopped after ``timeout`` seconds."""
    return RuntimeError(f"`nbgrader {' '.join(args)}` ran over {timeout} s")


def check_nbgrader(
    args: Sequence[str], returncode: int, out: IO[str], err: IO[str], memory_mb: int | None
) -> subprocess.CompletedProcess[str]:
    """The finished run of ``nbgrader ARGS`` (its output read from the files ``out`` and
    ``err``); raise with its output if it failed, naming its memory cap if it ran out."""
    stdout, stderr = _read(out), _read(err)
    if returncode != 0:
        if memory_mb is not None and any(sign in stderr for sign in _OUT_OF_MEMORY):
            raise RuntimeError(f"`nbgrader {args[0]}` ran out of its {memory_mb} MiB of memory")
        raise RuntimeError(
            f"`nbgrader {' '.join(args)}` failed ({returncode}):\n{stdout}\n{stderr}"
        )
    return subprocess.CompletedProcess(["nbgrader", *args], returncode, stdout, stderr)


_MAX_OUTPUT = 1 << 20
_OUT_OF_MEMORY = (
    "MemoryError",
    "failed to map segment",  # a shared library that no longer fits
    "Cannot allocate memory",
    "std::bad_alloc",
)
"""How a Python process says it reached its address-space limit."""


def _read(stream: IO[str]) -> str:
    """The end of what a command wrote (at most :data:`_MAX_OUTPUT` bytes): grading kernels
    write to the same files, and no submission may make the grader read gigabytes."""
    stream.flush()
    size = os.fstat(stream.fileno()).st_size
    stream.buffer.seek(max(0, size - _MAX_OUTPUT))
    return stream.buffer.read().decode("utf-8", "replace")
