"""The kernel nbgrader starts to grade a submission: an IPython kernel with limits.

``python -m tfcourse.grading_kernel.kernel [--fork-server SOCKET [--server-uid UID]
[--kernel-sockets FOLDER] [--server-wait SECONDS]] --memory-mb N [--attempts-log FILE] -f FILE``
caps the size of the files it writes (:data:`FILE_LIMIT_MB`) and the address space of the
kernel process (so a memory blow-up raises ``MemoryError`` in the cell that caused it instead
of taking the machine down), records what the sandbox refuses in ``--attempts-log``
(:mod:`tfcourse.grading_kernel.attempts`) and runs ipykernel with the kernel class that answers
the trusted runner (:mod:`tfcourse.grading_kernel.requests_kernel`). It never reads a test file:
the trusted runner (:mod:`tfcourse_instructor.grading.submission.remote`) runs them outside this
process, so hidden tests never enter a student's kernel.

With ``--fork-server`` the kernel is forked from that server
(:mod:`tfcourse.grading_kernel.forkserver`), which has imported torch and the rest already and runs
in the submission's sandbox; this process stays as the kernel's stand-in for jupyter_client.
With ``--kernel-sockets`` the kernel binds its sockets in that folder of the sandbox's, and
this process links them where the connection file says (:mod:`tfcourse.grading_kernel.pinned`).
With ``--server-wait`` a server still importing is waited for that long: the grader starts it
beside nbgrader. A server that cannot be reached is an error: starting the kernel here instead
would run the submission outside its sandbox.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

FILE_LIMIT_MB = 256
"""The largest file a kernel (or a process it starts) may write: the folder it shares with
the grader lies on the grader's disk. Python ignores SIGXFSZ, so a larger write raises."""


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space at ``megabytes`` MiB (torch then raises on allocation)."""
    limit = megabytes * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def limit_file_size(megabytes: int) -> None:
    """Cap the size of any file this process and its children write at ``megabytes`` MiB."""
    limit = megabytes * 2**20
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def limit_processes(count: int) -> None:
    """Let this process and its children start tasks (processes or threads) only while their
    user runs fewer than ``count`` in its user namespace: in a sandbox of its own, the
    submission's processes (Linux counts ``RLIMIT_NPROC`` per user namespace since 5.14)."""
    resource.setrlimit(resource.RLIMIT_NPROC, (count, count))


def start_kernel(argv: list[str]) -> None:
    """Apply the limits, run the kernel with the remaining arguments."""
    parser = argparse.ArgumentParser(prog="python -m tfcourse.grading_kernel.kernel")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--attempts-log", type=Path)
    args, kernel_args = parser.parse_known_args(argv)
    limit_memory(args.memory_mb)
    limit_file_size(FILE_LIMIT_MB)
    if args.attempts_log:
        from tfcourse.grading_kernel import attempts

        writable = [Path.cwd(), Path("/tmp"), Path("/dev"), args.attempts_log.parent]
        attempts.install(args.attempts_log, writable)

    from ipykernel.kernelapp import IPKernelApp

    from tfcourse.grading_kernel.requests_kernel import GradingKernel

    IPKernelApp.launch_instance(argv=kernel_args, kernel_class=GradingKernel)


def main() -> int:
    """Start the kernel through the fork server if one is named, else here."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--fork-server", type=Path)
    parser.add_argument("--server-uid", type=int)
    parser.add_argument("--kernel-sockets", type=Path)
    parser.add_argument("--server-wait", type=float, default=0)
    args, rest = parser.parse_known_args()
    if args.fork_server is None:
        start_kernel(rest)
        return 0
    from tfcourse.grading_kernel.forkserver import request_kernel

    try:
        return request_kernel(
            args.fork_server, rest, args.server_uid, args.kernel_sockets, args.server_wait
        )
    except (FileNotFoundError, ConnectionError) as error:
        print(f"no grading kernel: its fork server is gone ({error})", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
