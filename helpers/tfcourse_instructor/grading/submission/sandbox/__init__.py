"""One sandbox per submission: what its code can see, write, reach and start.

:class:`Sandbox` starts a process (the submission's kernel fork server) confined by
bubblewrap (:mod:`.bwrap`) inside a control group (:mod:`.resources`), and when the
submission is done, reports what the code in it did against its limits, kills everything it
left and removes the group. With the grading run's zygote (:mod:`.zygote`), a ``python -m``
process is not started by bubblewrap but by the zygote entering the sandbox, already imported:
bubblewrap's first process then only holds the sandbox open. Without bubblewrap
(``Sandbox(..., mounts=None)``) the same process runs unconfined: a grader must ask for that
explicitly (``grade --unsandboxed``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import tfcourse
import tfcourse_instructor
from tfcourse.grading_kernel import forkserver
from tfcourse_instructor.grading.submission.folders import process_folder
from tfcourse_instructor.grading.submission.sandbox import bwrap, resources, zygote
from tfcourse_instructor.grading.submission.sandbox.bwrap import Mounts
from tfcourse_instructor.grading.submission.sandbox.zygote import Zygote

__all__ = [
    "JoinedProcess",
    "Mounts",
    "Sandbox",
    "Zygote",
    "explain",
    "font_list",
    "protection",
    "sandbox_environment",
    "submission_mounts",
    "unavailable_reason",
]

_GRACE_SECONDS = 3.0
_INFO_SECONDS = 30
_MAX_INFO = 4096
_PLACEHOLDER = [
    *(sys.executable, "-I", "-S", "-c"),
    "import os, signal\nos.write(1, b'.')\nos.close(1)\nwhile True: signal.pause()",
]
"""bubblewrap's first process when the zygote starts the sandbox's process: it says that the
sandbox is built (bubblewrap runs it last), then holds the sandbox open and does nothing else."""


def protection(sandboxed: bool) -> str:
    """A line for the summary: how submissions were confined and limited in this run."""
    group = resources.create(64, 16)
    if group:
        group.remove()
        limits = group.mechanism
    elif sandboxed:
        limits = "each process has limits of its own, and each sandbox's fork server limits"
        limits += " the number of its processes (no control group)"
    else:
        limits = "each process has limits of its own (no control group)"
    if not sandboxed:
        return (
            "submissions ran UNSANDBOXED (--unsandboxed): grades are not protected against "
            f"hostile code; {limits}"
        )
    return f"each submission ran in its own bubblewrap sandbox; {limits}"


def submission_mounts(
    shared: tuple[Path, ...], workdir: Path, importable: tuple[Path, ...] = ()
) -> Mounts:
    """What a submission's code sees (an allowlist): the system's runtime, the interpreter,
    its environment and the student package read-only, with any instructor package among
    them masked; ``shared`` read-write; ``workdir`` as a private folder; an environment of
    the kit's making, in which the folders ``importable`` (read-only: the modules the
    assignment gives) are on Python's path."""
    package = Path(tfcourse.__file__).resolve().parent
    readable = {Path(sys.prefix), Path(sys.base_prefix), package, *importable}
    readable |= {path.resolve() for path in readable}
    readable |= {Path(path) for path in bwrap.SYSTEM_RUNTIME}
    instructor = Path(tfcourse_instructor.__file__).resolve().parent
    masked = tuple(
        folder
        for folder in {instructor, Path(tfcourse_instructor.__file__).parent}
        if any(folder.is_relative_to(path) for path in readable)
    )
    environment = sandbox_environment(workdir)
    if importable:
        environment["PYTHONPATH"] = os.pathsep.join(map(str, importable))
    return Mounts(
        readable=tuple(sorted(readable)),
        shared=shared,
        workdir=workdir,
        environment=tuple(sorted(environment.items())),
        masked=masked,
    )


@functools.cache
def unavailable_reason() -> str | None:
    """Why submissions cannot be sandboxed on this machine, or None if they can: a sandbox
    is started the way grading starts one (as the unprivileged user, for a root grader)."""
    if reason := bwrap.unavailable_reason():
        return reason
    with tempfile.TemporaryDirectory(prefix="tfcourse-probe-") as folder:
        sandbox = Sandbox(submission_mounts((), Path(folder) / "work"), 256, 32)
        probe = sandbox.popen(
            [sys.executable, "-c", "import tfcourse"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, error = probe.communicate(timeout=120)
        sandbox.close()
    if probe.returncode != 0:
        lines = error.decode(errors="replace").strip().splitlines() or ["no message"]
        return f"a sandbox cannot start here ({lines[-1][:200]})"
    return None


def explain(mounts: Mounts) -> str:
    """What a submission confined by ``mounts`` sees, as a grader reads it
    (``python -m tfcourse_instructor.grading sandbox``)."""
    if reason := unavailable_reason():
        return f"submissions cannot be sandboxed here: {reason}"
    outside = (
        f"uid {bwrap.GRADING_UID} (the grader is root: it drops to this user before bwrap)"
        if os.geteuid() == 0
        else f"uid {os.geteuid()} (the grader's own: run as root to grade as another user)"
    )
    lines = [
        f"user: uid {bwrap.SANDBOX_UID} inside, {outside}; every capability dropped",
        "namespaces: user, mount, PID (its own /proc), network (none reachable), IPC, UTS",
        "file system: an empty root, and only",
        *(
            f"  read-only  {path}" + (f" -> {os.readlink(path)}" if path.is_symlink() else "")
            for path in mounts.readable
            if path.is_symlink() or path.exists()
        ),
        *(f"  masked     {path} (an empty folder)" for path in mounts.masked),
        *(f"  writable   {path} (shared with the grader)" for path in mounts.shared),
        f"  private    {mounts.workdir} (tmpfs, {mounts.workdir_mb} MiB: its working folder)",
        f"  private    /tmp, /dev/shm (tmpfs, {mounts.tmp_mb} MiB each), a minimal /dev",
        "environment (nothing else of the grader's):",
        *(f"  {name}={value}" for name, value in mounts.environment),
        "given: matplotlib's list of the system's fonts (a memory file, the standard input of",
        "  its kernels' fork server)",
    ]
    if zygote.SUPPORTED:
        lines += [
            "started by: the grading run's zygote, which imported what kernels import once,",
            "  outside every sandbox; its child enters the sandbox's namespaces and control",
            "  group, drops every capability, sets no_new_privs, then forks the fork server",
        ]
    return "\n".join(lines)


def sandbox_environment(home: Path) -> dict[str, str]:
    """The whole environment a sandbox starts with: nothing of the grader's but the settings
    that keep OpenBLAS computing correctly on this processor."""
    path = [str(Path(sys.prefix) / "bin"), "/usr/local/bin", "/usr/bin", "/bin"]
    environment = {
        "PATH": os.pathsep.join(path),
        "HOME": str(home),
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "USER": "student",
        "LOGNAME": "student",
    }
    for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"):
        if name in os.environ:
            environment[name] = os.environ[name]
    return environment


def font_list() -> forkserver.FontList:
    """matplotlib's list of this machine's fonts, for a sandbox's fork server
    (:class:`~tfcourse.grading_kernel.forkserver.FontList`): what would scan the system's fonts
    again in every sandbox (about 0.3 s) is done once by the grader."""
    from matplotlib import font_manager

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fonts.json"
        font_manager.json_dump(font_manager.fontManager, path)
        content = path.read_bytes()
    return forkserver.FontList(f"fontlist-v{font_manager.FontManager.__version__}.json", content)


@dataclass(frozen=True)
class JoinedProcess:
    """A process the zygote started in a sandbox: its pid outside the sandbox, and the read
    ends of its stdout and stderr where they were asked for as pipes."""

    pid: int
    stdout: IO[bytes] | None = None
    stderr: IO[bytes] | None = None


class Sandbox:
    """Processes of one submission: confined by ``mounts`` (None: unconfined) and limited
    together to ``memory_mb`` MiB and ``processes`` tasks. A root grader's sandbox runs as
    :data:`~.bwrap.GRADING_UID` outside its namespace (:mod:`.launch`), and its shared
    folders are given to that user. With ``zygote``, ``python -m`` processes start already
    imported (:meth:`popen`)."""

    def __init__(
        self,
        mounts: Mounts | None,
        memory_mb: int,
        processes: int,
        zygote: Zygote | None = None,
    ) -> None:
        self.mounts = mounts
        self.zygote = zygote if mounts else None
        self.group = resources.create(memory_mb, processes)
        self._process_limit = processes
        self._process: subprocess.Popen[bytes] | None = None
        self._joined: tuple[int, str] | None = None
        """The process the zygote started: its pid outside, and the sandbox's PID namespace."""
        self._stage: Path | None = None
        if mounts and os.geteuid() == 0:
            # In /tmp, which the sandbox's user can enter; named after this process, so that
            # the next sandbox made on the machine removes what a killed grader left.
            self._stage = process_folder(Path("/tmp"), "stage-")
            self._stage.chmod(0o755)
            for folder in mounts.shared:
                os.chown(folder, bwrap.GRADING_UID, bwrap.GRADING_UID)

    @property
    def process_limit_without_group(self) -> int | None:
        """The number of processes the sandbox's first process must hold itself and all it
        starts to, where no control group holds them (counted in the sandbox's user namespace;
        unconfined, the count would be the grader's own): else None."""
        return self._process_limit if self.mounts and self.group is None else None

    def popen(self, argv: list[str], **options: Any) -> subprocess.Popen[bytes] | JoinedProcess:
        """Start ``argv`` in the sandbox (one process per sandbox). With a zygote, a
        ``python -m MODULE ARGS`` is started by the zygote, forked from its imports
        (:class:`JoinedProcess`; ``options`` are then ``stdin``, ``stdout`` and ``stderr``
        only: a descriptor, ``DEVNULL`` or, for the outputs, ``PIPE``)."""
        if self.zygote and list(argv[:2]) == [sys.executable, "-m"]:
            return self._start_joined(argv, **options)
        self._process = subprocess.Popen(self._command(argv), start_new_session=True, **options)
        return self._process

    def _command(self, argv: list[str], info_fd: int | None = None) -> list[str]:
        """The command that starts ``argv`` in the sandbox, inside its control group."""
        line = argv
        if self.mounts and self._stage:
            line = [
                *(sys.executable, "-m", "tfcourse_instructor.grading.submission.sandbox.launch"),
                *("--stage", str(self._stage), "--uid", str(bwrap.GRADING_UID)),
                *(f"--read={path}" for path in self.mounts.readable),
                *(f"--write={path}" for path in self.mounts.shared),
                "--",
                *bwrap.command(self.mounts, argv, sources=self._stage, info_fd=info_fd),
            ]
        elif self.mounts:
            line = bwrap.command(self.mounts, argv, info_fd=info_fd)
        if self.group:
            line = self.group.wrap(line)
        return line

    def _start_joined(
        self, argv: list[str], stdin: Any = None, stdout: Any = None, stderr: Any = None
    ) -> JoinedProcess:
        """bubblewrap builds the sandbox around a placeholder; then the zygote starts ``argv``
        in it, before anything else runs there."""
        assert self.mounts is not None and self.zygote is not None
        first = self._start_placeholder()
        pidfd = os.pidfd_open(first)
        namespace = os.readlink(f"/proc/{first}/ns/pid")
        groups = [
            os.open(folder / "cgroup.procs", os.O_WRONLY)
            for folder in (self.group.folders if self.group else ())
        ]
        opened = [pidfd, *groups]
        read_ends: list[IO[bytes] | None] = []
        try:
            stdio = []
            for number, option in enumerate((stdin, stdout, stderr)):
                descriptor, read_end = _descriptor(option, output=number > 0)
                if descriptor != option:
                    opened.append(descriptor)
                stdio.append(descriptor)
                read_ends.append(read_end)
            environment = dict(self.mounts.environment)
            pid = self.zygote.start(
                pidfd,
                argv,
                stdio,
                groups=groups,
                uid=bwrap.GRADING_UID if self._stage else None,
                cwd=self.mounts.workdir,
                environment=environment,
                path=[Path(p) for p in environment.get("PYTHONPATH", "").split(os.pathsep) if p],
            )
        except BaseException:
            for stream in read_ends:
                if stream is not None:
                    stream.close()
            raise
        finally:
            for descriptor in opened:
                os.close(descriptor)
        self._joined = (pid, namespace)
        return JoinedProcess(pid, read_ends[1], read_ends[2])

    def _start_placeholder(self) -> int:
        """Start bubblewrap around :data:`_PLACEHOLDER`; once it has built the sandbox, the pid
        of the sandbox's first process (whose namespaces are the sandbox's)."""
        reading, writing = os.pipe()
        try:
            self._process = subprocess.Popen(
                self._command(_PLACEHOLDER, info_fd=writing),
                pass_fds=[writing],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(writing)
        with os.fdopen(reading, "rb") as info:
            first = _first_process(info)
        # bubblewrap names its first process before it has built the sandbox around it (its
        # mounts): entered earlier, the sandbox would still show the grader's file system.
        assert self._process.stdout is not None
        with self._process.stdout as built:
            if not _one_byte(built):
                raise RuntimeError("the sandbox was not built in time")
        return first

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
        if self._stage:
            with contextlib.suppress(OSError):
                self._stage.rmdir()  # empty on the host: the staging lived in the launcher
        return problems

    def _wait_for_survivors(self) -> int:
        """Processes of the submission other than the sandbox's own and its first process,
        after a grace period for kernels that are shutting down."""
        if self._process is None:
            return 0
        deadline = time.monotonic() + _GRACE_SECONDS
        while True:
            others = [pid for pid in self._processes() if not self._own(pid)]
            if not others or time.monotonic() > deadline:
                return len(others)
            time.sleep(0.1)

    def _processes(self) -> list[int]:
        """bubblewrap's processes and those below them; and the zygote's process and those
        below it, while they are in the sandbox (a pid the sandbox no longer holds may have
        been given to another process)."""
        assert self._process is not None
        found = _descendants(self._process.pid)
        if self._joined:
            joined, namespace = self._joined
            found += [
                pid for pid in [joined, *_descendants(joined)] if _pid_namespace(pid) == namespace
            ]
        return found

    def _own(self, pid: int) -> bool:
        """True for bubblewrap's processes and the process it started (pid 2 inside), and for
        the process the zygote started."""
        if not self.mounts:
            return False  # unconfined: every descendant is the submission's
        if self._joined and pid == self._joined[0]:
            return True
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


def _first_process(info: IO[bytes]) -> int:
    """The pid of the sandbox's first process, from what bubblewrap writes on its info
    descriptor (read for at most :data:`_INFO_SECONDS`, :data:`_MAX_INFO` bytes)."""
    received = b""
    deadline = time.monotonic() + _INFO_SECONDS
    while b"}" not in received and len(received) < _MAX_INFO:
        if not select.select([info], [], [], max(0.0, deadline - time.monotonic()))[0]:
            break
        chunk = os.read(info.fileno(), _MAX_INFO - len(received))
        if not chunk:
            break
        received += chunk
    try:
        pid = json.loads(received[: received.index(b"}") + 1])["child-pid"]
    except (ValueError, KeyError, TypeError) as error:
        raise RuntimeError("bubblewrap did not say which process the sandbox holds") from error
    if not isinstance(pid, int):
        raise RuntimeError("bubblewrap did not say which process the sandbox holds")
    return pid


def _one_byte(stream: IO[bytes]) -> bool:
    """Whether ``stream`` gives a byte within :data:`_INFO_SECONDS`."""
    if not select.select([stream], [], [], _INFO_SECONDS)[0]:
        return False
    return os.read(stream.fileno(), 1) == b"."


def _descriptor(option: Any, output: bool) -> tuple[int, IO[bytes] | None]:
    """The descriptor to give a joined process for one of ``Popen``'s stdio options (a
    descriptor; ``None`` and ``DEVNULL``: the null device; ``PIPE``), and the read end of a pipe
    the caller asked for (outputs only)."""
    if isinstance(option, int) and option >= 0:
        return option, None
    if option in (None, subprocess.DEVNULL):
        return os.open(os.devnull, os.O_WRONLY if output else os.O_RDONLY), None
    if option == subprocess.PIPE and output:
        reading, writing = os.pipe()
        return writing, os.fdopen(reading, "rb")
    raise ValueError(f"a process the zygote starts cannot have {option!r} as its stdio")


def _pid_namespace(pid: int) -> str | None:
    """The PID namespace ``pid`` is in (``pid:[INODE]``), or None if it is gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _namespace_pids(pid: int) -> list[int]:
    """The ids of ``pid`` in its PID namespace and those above it, outermost first."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("NSpid:"):
                return [int(value) for value in line.split()[1:]]
    return [pid]
