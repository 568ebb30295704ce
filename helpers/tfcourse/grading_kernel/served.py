"""What the grading run's helper processes share: the loop that serves the grader's requests
over a socket pair, and running a module as ``python -m`` would in a forked process.

Two processes import once and fork per request: the zygote
(:mod:`~tfcourse.grading_kernel.zygote`, which starts each sandbox's fork server) and nbgrader's
preloaded process (``tfcourse_instructor.grading.submission.preloaded``). Each is reached
through a socket pair it inherits, never a path, and reads one datagram per request.
"""

from __future__ import annotations

import contextlib
import os
import runpy
import socket
import sys
import traceback
import warnings
from collections.abc import Callable

READY = b"ready\n"
"""What a helper process sends once it has imported, before its first request."""


def serve_datagrams(
    connection: socket.socket,
    most_bytes: int,
    descriptors: int,
    handle: Callable[[bytes, list[int]], None],
) -> None:
    """Send :data:`READY`, then give ``handle`` each datagram (at most ``most_bytes``) that
    carries exactly ``descriptors`` descriptors (others are dropped, their descriptors closed),
    until the grader closes ``connection``."""
    try:
        connection.sendall(READY)
    except OSError:  # the grader is gone
        return
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(connection, most_bytes, descriptors)
        except OSError:
            return
        if not message:
            return
        if len(fds) != descriptors:
            for fd in fds:
                os.close(fd)
            continue
        handle(message, fds)


def exit_status(stop: SystemExit) -> int:
    """The status a process exits with after ``stop``, as Python's own exit would give it."""
    return stop.code if isinstance(stop.code, int) else int(stop.code is not None)


def run_module_as_main(module: str, args: list[str]) -> int:
    """Run ``python -m MODULE ARGS`` in this forked process, whose parent imported what it
    imports: its exit status (a traceback on stderr for what it raised); stdout and stderr are
    flushed."""
    sys.argv = [module, *args]
    # runpy warns that the module is imported already: here that is the point.
    warnings.filterwarnings("ignore", "'.*' found in sys.modules", RuntimeWarning)
    code = 1
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as stop:
        code = exit_status(stop)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
    return code
