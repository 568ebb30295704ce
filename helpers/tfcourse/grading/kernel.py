"""The kernel nbgrader starts to grade a submission: an IPython kernel with limits.

``python -m tfcourse.grading.kernel --memory-mb N --tests DIR --tests-digest SHA -f FILE``
caps the address space of the kernel process (so a memory blow-up raises ``MemoryError``
in the cell that caused it instead of taking the machine down), installs the guard of
:mod:`tfcourse.grading.guard` with the test files of ``DIR`` (which must match ``SHA``),
and then runs ipykernel. jupyter_client reads the kernel spec once, so a restart uses the
digest written before any student code ran.
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


def main() -> None:
    """Apply the limits, install the guard, start the kernel with the remaining arguments."""
    parser = argparse.ArgumentParser(prog="python -m tfcourse.grading.kernel")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--tests", type=Path, required=True)
    parser.add_argument("--tests-digest", required=True)
    args, kernel_args = parser.parse_known_args()
    limit_memory(args.memory_mb)

    from tfcourse.grading import guard

    guard.install(args.tests, args.tests_digest)

    from ipykernel.kernelapp import IPKernelApp

    IPKernelApp.launch_instance(argv=kernel_args)


if __name__ == "__main__":
    sys.exit(main())
