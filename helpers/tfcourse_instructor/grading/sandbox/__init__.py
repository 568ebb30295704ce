"""One sandbox per submission: what its code can see, write, reach and start.

:class:`Sandbox` starts a process (the submission's kernel fork server) confined by
bubblewrap (:mod:`.bwrap`) inside a control group (:mod:`.resources`), and when the
submission is done, reports what the code in it did against its limits, kills everything it
left and removes the group. Without bubblewrap (``Sandbox(..., mounts=None)``) the same
process runs unconfined: a grader must ask for that explicitly (``grade --unsandboxed``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import tfcourse
from tfcourse_instructor.grading.sandbox import bwrap, resources
from tfcourse_instructor.grading.sandbox.bwrap import Mounts

__all__ = ["Mounts", "Sandbox", "protection", "submission_mounts", "unavailable_reason"]

unavailable_reason = bwrap.unavailable_reason

_GRACE_SECONDS = 3.0


def protection(sandboxed: bool) -> str:
    """A line for the summary: how submissions were confined and limited in this run."""
    group = resources.create(f"tfcourse-probe-{uuid.uuid4().hex[:8]}", 64, 16)
    limits = group.mechanism if group else "per-process limits only (no control group here)"
    if group:
        group.remove()
    if not sandboxed:
        return (
            "submissions ran UNSANDBOXED (--unsandboxed): grades are not protected against "
            f"hostile code; limits: {limits}"
        )
    return f"each submission ran in its own bubblewrap sandbox; limits: {limits}"


def submission_mounts(
    course_root: Path, run_root: Path, shared: tuple[Path, ...], workdir: Path
) -> Mounts:
    """What a submission's code sees: not the course, the grading run's folder, the grader's
    home or the kit's own checkout; the interpreter, its environment and the helper package
    read-only; ``shared`` read-write; ``workdir`` as a private folder."""
    package = Path(tfcourse.__file__).resolve().parent
    hidden = {course_root.resolve(), run_root.resolve(), Path.home().resolve()}
    if (package.parents[1] / "pyproject.toml").is_file():  # the kit's own checkout
        hidden.add(package.parents[1])
    readable = {Path(sys.prefix), Path(sys.base_prefix), package}
    readable |= {path.resolve() for path in readable}
    return Mounts(
        hidden=tuple(sorted(path for path in hidden if path != Path("/"))),
        readable=tuple(sorted(readable)),
        shared=shared,
        workdir=workdir,
    )


class Sandbox:
    """Processes of one submission: confined by ``mounts`` (None: unconfined) and limited
    together to ``memory_mb`` MiB and ``processes`` tasks."""

    def __init__(self, mounts: Mounts | None, memory_mb: int, processes: int) -> None:
        self.mounts = mounts
        self.group = resources.create(f"tfcourse-{uuid.uuid4().hex[:12]}", memory_mb, processes)
        self._process: subprocess.Popen[bytes] | None = None

    def popen(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` in the sandbox (one process per sandbox)."""
        line = bwrap.command(self.mounts, argv) if self.mounts else argv
        if self.group:
            line = self.group.wrap(line)
        self._process = subprocess.Popen(line, start_new_session=True, **options)
        return self._process

    def close(self) -> list[str]:
        """Stop everything in the sandbox; return what its code did that a grader should
        know: limits hit, processes that were still running once its work was done."""
        problems = []
        survivors = self._wait_for_survivors()
        if survivors:
            problems.append(
                f"left {survivors} process(es) running after its kernels were shut down "
                "(killed with the sandbox)"
            )
        if self.group:
            usage = self.group.usage()
            if usage.memory_limit_hits:
                problems.append(
                    f"hit the memory limit of the whole submission ({usage.memory_limit_hits} "
                    "time(s))"
                )
            if usage.process_limit_hits:
                problems.append(
                    f"hit the limit on processes ({usage.process_limit_hits} fork(s) refused)"
                )
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
        if self.group:
            self.group.remove()
        return problems

    def _wait_for_survivors(self) -> int:
        """Processes of the submission other than the sandbox's own and its first process,
        after a grace period for kernels that are shutting down."""
        if self._process is None:
            return 0
        deadline = time.monotonic() + _GRACE_SECONDS
        while True:
            others = [pid for pid in _descendants(self._process.pid) if not self._own(pid)]
            if not others or time.monotonic() > deadline:
                return len(others)
            time.sleep(0.1)

    def _own(self, pid: int) -> bool:
        """True for bubblewrap's processes and the process it started (pid 2 inside)."""
        if not self.mounts:
            return False  # unconfined: every descendant is the submission's
        namespace_pids = _namespace_pids(pid)
        return len(namespace_pids) == 1 or namespace_pids[-1] in (1, 2)


def _descendants(root: int) -> list[int]:
    """Every live process below ``root`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = (entry / "stat").read_text()
                parent = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _namespace_pids(pid: int) -> list[int]:
    """The ids of ``pid`` in its PID namespace and those above it, outermost first."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(value) for value in line.split()[1:]]
    return [pid]
