"""nbgrader runs forked from a process that imported nbgrader, torch and the trusted runner once.

Every submission's autograde is an nbgrader process of its own (a timeout or a memory cap
stops that one alone), and such a process spends seconds importing nbgrader, torch and the
test runner before a cell runs: more than the submission's kernel takes to start. A grading
run therefore starts one *preloaded* process (:class:`Preloaded`), which imports them once and
forks a fresh nbgrader process for each request, as the kernels are forked from a fork server
in the sandbox.

It is the grader's own process, outside every sandbox, and it is reached through a socket pair
it inherits, not a path: nothing a submission can name reaches it. Per request it forks a
monitor, which forks the nbgrader run in a session of its own, with the request's working
folder, variables, output files and address-space cap, then reports its pid and exit status
on a socket of the request's own. The grader closing that socket (a timeout, or the grader
dying) makes the monitor kill the run's process group; the grader closing the main socket ends
the preloaded process. Nothing is imported before the fork that starts threads (torch's pools
start on first use), so each run starts as a fresh interpreter would.

torch imports parts of itself on first use: ``torch._dynamo`` (about 1 s) when a check makes an
optimiser or counts FLOPs. A run reports, with its exit status, the parts of torch it imported
so; the grader passes them on with its next request, and the preloaded process imports them
before it forks that run. Only names of torch's own modules are reported and imported, from
the installed torch (never a file a course or a submission holds); importing ``torch._dynamo``
starts no thread.

``python -m tfcourse_instructor.grading.submission.preloaded FD`` is the preloaded process.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from tfcourse.grading_kernel.confinement import die_with_parent
from tfcourse.grading_kernel.forkserver import apply_thread_count
from tfcourse.grading_kernel.served import run_module_as_main, serve_datagrams
from tfcourse_instructor.grading.course import check_nbgrader, nbgrader_environment, ran_over
from tfcourse_instructor.grading.submission.served import ServedProcess

SUPPORTED = sys.platform == "linux" and hasattr(os, "pidfd_open")
_MAX_REQUEST = 1 << 20
_MAX_REPORT = 16 * 1024
"""Most bytes of a run's report (its exit status, then the parts of torch it imported): well
under a pipe's buffer, so the run never waits for its monitor to read it."""
_LEARNABLE = re.compile(r"torch(\.\w+)+")


class Preloaded(ServedProcess):
    """A preloaded process of this grader's, started at once; :meth:`run` waits until it has
    imported what nbgrader's runs need, then forks one run per call (from any thread)."""

    def __init__(self) -> None:
        super().__init__([sys.executable, "-m", __name__], stdin=subprocess.DEVNULL)
        self._learned: set[str] = set()
        """Parts of torch the runs imported on first use, for the preloaded process to import."""
        self._passed_on: set[str] = set()

    def run(
        self,
        root: Path,
        *args: str,
        timeout: float | None,
        env: Mapping[str, str] | None = None,
        memory_mb: int | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``nbgrader ARGS`` in ``root``, as :meth:`~tfcourse_instructor.grading.course.Course.
        nbgrader` runs it (same variables, cap, timeout and errors), forked from this process."""
        self._wait_ready(timeout, "nbgrader's preloaded process did not start")
        request = {
            "args": list(args),
            "cwd": str(root),
            "env": nbgrader_environment(env),
            "memory_mb": memory_mb,
        }
        ours, theirs = socket.socketpair()
        with (
            ours,
            tempfile.TemporaryFile("w+") as out,
            tempfile.TemporaryFile("w+") as err,
        ):
            with theirs, self._lock:
                request["imports"] = sorted(self._learned - self._passed_on)
                self._passed_on |= self._learned
                socket.send_fds(
                    self._socket,
                    [json.dumps(request).encode()],
                    [theirs.fileno(), out.fileno(), err.fileno()],
                )
            status, imported = _report(ours, timeout)
            with self._lock:
                self._learned.update(imported)
            if status is None and timeout is None:
                raise RuntimeError(f"`nbgrader {args[0]}` ended without an exit status")
            if status is None:
                # Closing our end makes the monitor kill the run's process group.
                raise ran_over(args, timeout)
            return check_nbgrader(args, status, out, err, memory_mb)


def _report(connection: socket.socket, timeout: float | None) -> tuple[int | None, list[str]]:
    """The run's exit status as its monitor reports it, or None past ``timeout`` seconds
    (None: no limit), and the parts of torch the run imported on first use."""
    received = b""
    with contextlib.suppress(OSError):
        connection.settimeout(timeout)
        while len(received) < _MAX_REPORT and (chunk := connection.recv(_MAX_REPORT)):
            received += chunk
    status, _, imported = received.decode("ascii", "replace").partition("\n")
    status = status.strip()
    if not status.lstrip("-").isdigit():
        return None, []
    with contextlib.suppress(ValueError):
        names = json.loads(imported)
        if isinstance(names, list):
            return int(status), [name for name in names if isinstance(name, str)]
    return int(status), []


def _serve(connection: socket.socket) -> None:
    """The preloaded process: import, say so, then fork a monitor per request until the
    grader closes the connection."""
    import nbformat.validator
    import nbgrader.apps.nbgraderapp  # noqa: F401
    import otter.test_files.exception_test  # noqa: F401 (tfcourse.checking imports it when run)
    import sqlalchemy.dialects.sqlite  # the gradebook's
    import sqlalchemy.orm
    import torch.fx.experimental.symbolic_shapes  # noqa: F401 (a test's first backward: 0.4 s)

    import tfcourse_instructor.grading.classroom.merge  # nbgrader_config.py's
    import tfcourse_instructor.grading.submission.execution  # noqa: F401

    # What every run's first gradebook query would do (about 0.1 s): nbgrader's mappers set up.
    sqlalchemy.orm.configure_mappers()
    # What every run's first reading of a notebook would do: compile nbformat's schema, strict
    # and relaxed (about 0.1 s).
    for relaxed in (False, True):
        nbformat.validator.get_validator(4, relax_add_props=relaxed)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped as they end

    def fork_monitor(message: bytes, fds: list[int]) -> None:
        request = json.loads(message)
        _import_learned(request.pop("imports", []))
        known = frozenset(sys.modules)
        if os.fork() == 0:
            connection.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _monitor(request, *fds, known)
        for fd in fds:
            os.close(fd)

    serve_datagrams(connection, _MAX_REQUEST, 3, fork_monitor)


def _import_learned(names: list[str]) -> None:
    """Import the parts of torch earlier runs imported on first use (others are ignored)."""
    for name in names:
        if _LEARNABLE.fullmatch(name):
            with contextlib.suppress(Exception):
                importlib.import_module(name)


def _learned(known: frozenset[str]) -> list[str]:
    """The parts of torch this run imported that the preloaded process had not: the first
    module of each such part (importing it imports the rest)."""
    return sorted(
        name
        for name in sys.modules
        if name not in known and _LEARNABLE.fullmatch(name) and name.rpartition(".")[0] in known
    )


def _monitor(request: dict, reply: int, stdout: int, stderr: int, known: frozenset[str]) -> None:
    """Fork the run, report its pid's exit status on ``reply``, then what it imported of torch
    (:func:`_learned`, against ``known``); kill its process group if the grader closes
    ``reply`` first. Never returns."""
    status = 1
    try:
        monitor = os.getpid()
        imported, report = os.pipe()  # neither is inherited by what the run starts
        run = os.fork()
        if run == 0:
            os.close(reply)
            os.close(imported)
            _run_nbgrader(request, stdout, stderr, monitor, report, known)
        os.close(stdout)
        os.close(stderr)
        os.close(report)
        with contextlib.closing(socket.socket(fileno=reply)) as grader:
            pidfd = os.pidfd_open(run)
            ready = select.select([pidfd, grader], [], [])[0]
            if pidfd not in ready:  # the grader gave up, or is gone
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run, signal.SIGKILL)
            status = os.waitstatus_to_exitcode(os.waitpid(run, 0)[1])
            os.set_blocking(imported, False)  # the run has ended: what it wrote is there
            try:
                names = os.read(imported, _MAX_REPORT // 2)
            except BlockingIOError:  # it wrote nothing, and something it forked lives on
                names = b""
            with contextlib.suppress(OSError):
                grader.sendall(f"{status}\n".encode() + names)
    finally:
        os._exit(0)


def _run_nbgrader(
    request: dict, stdout: int, stderr: int, monitor: int, report: int, known: frozenset[str]
) -> None:
    """In the forked run: become ``nbgrader ARGS`` as a fresh process would; at the end, write
    to ``report`` what it imported of torch (:func:`_learned`). Never returns."""
    code = 1
    try:
        os.setsid()
        die_with_parent(monitor)
        devnull = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((devnull, 0), (stdout, 1), (stderr, 2)):
            os.dup2(source, target)
            os.close(source)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        apply_thread_count()
        if request["memory_mb"] is not None:
            limit = request["memory_mb"] << 20
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        code = run_module_as_main("nbgrader", request["args"])
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            names = json.dumps(_learned(known)).encode()
            if len(names) <= _MAX_REPORT // 2:
                os.write(report, names)
        os._exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    """Serve the connection whose descriptor is the only argument, then end the process at
    once: it has nothing to write back or flush, and the interpreter's clean-up of all it
    imported takes about a second of the grading command's end."""
    (descriptor,) = sys.argv[1:] if argv is None else argv
    _serve(socket.socket(fileno=int(descriptor)))
    os._exit(0)


if __name__ == "__main__":
    main()
