"""The kernel nbgrader starts to grade a submission: an IPython kernel with limits.

``python -m tfcourse.grading.kernel [--fork-server SOCKET] --memory-mb N --tests DIR
--tests-digest SHA -f FILE`` caps the address space of the kernel process (so a memory
blow-up raises ``MemoryError`` in the cell that caused it instead of taking the machine
down) and runs ipykernel. ``--tests`` and ``--tests-digest`` are accepted and unused.

With ``--fork-server`` the kernel is forked from that server
(:mod:`tfcourse.grading.forkserver`), which has imported torch and the rest already; this
process stays as the kernel's stand-in for jupyter_client. Without a server to reach, the
kernel starts here.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path


def limit_memory(megabytes: int) -> None:
    """Cap this process's address space at ``megabytes`` MiB (torch then raises on allocation)."""
    limit = megabytes * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def start_kernel(argv: list[str]) -> None:
    """Apply the limits, run the kernel with the remaining arguments."""
    parser = argparse.ArgumentParser(prog="python -m tfcourse.grading.kernel")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--tests", type=Path, required=True)
    parser.add_argument("--tests-digest", required=True)
    args, kernel_args = parser.parse_known_args(argv)
    limit_memory(args.memory_mb)
    # The test files are not read here: the trusted runner (tfcourse.grading.remote) runs
    # them outside this process, so hidden tests never enter a student's kernel.

    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=kernel_args)


def main() -> int:
    """Start the kernel through the fork server when there is one, else here."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--fork-server", type=Path)
    args, rest = parser.parse_known_args()
    if args.fork_server is not None:
        from tfcourse.grading.forkserver import request_kernel

        try:
            return request_kernel(args.fork_server, rest)
        except (FileNotFoundError, ConnectionError):
            pass  # no server (any more): start the kernel the slow way
    start_kernel(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
