"""What the grading run's helper processes share: the loop that serves the grader's requests
over a socket pair, running a module as ``python -m`` would in a forked process, and the
framing of a request sent with descriptors (the zygote's, a fork server's).

Two processes import once and fork per request: the zygote
(:mod:`~tfcourse.grading_kernel.zygote`, which starts each sandbox's fork server) and nbgrader's
preloaded process (``tfcourse_instructor.grading.submission.preloaded``). Each is reached
through a socket pair it inherits, never a path, and reads one datagram per request.
"""

from __future__ import annotations

import array
import contextlib
import json
import os
import runpy
import socket
import sys
import traceback
import warnings
from collections.abc import Callable

READY = b"ready\n"
"""What a helper process sends once it has imported, before its first request."""
MAX_REQUEST = 1 << 20
"""The longest request (bytes of JSON) :func:`receive_request` accepts."""


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


def send_request(connection: socket.socket, request: dict, fds: list[int]) -> None:
    """Send ``request`` (length-prefixed JSON) with the descriptors ``fds``
    (:func:`receive_request` reads them)."""
    payload = json.dumps(request).encode()
    connection.sendmsg(
        [len(payload).to_bytes(4, "big") + payload],
        [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())],
    )


def receive_request(
    connection: socket.socket, least_fds: int, most_fds: int = 0
) -> tuple[dict, list[int]]:
    """A request (length-prefixed JSON) and the descriptors sent with it: at least
    ``least_fds`` of them, at most ``most_fds`` (or exactly ``least_fds``)."""
    most_fds = max(least_fds, most_fds)
    fds = array.array("i")
    data, ancillary, _, _ = connection.recvmsg(65536, socket.CMSG_SPACE(most_fds * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
    if len(data) < 4 or not least_fds <= len(fds) <= most_fds:
        for fd in fds:
            os.close(fd)
        raise ConnectionError(f"a request carries its length, then {least_fds} descriptors or more")
    length = int.from_bytes(data[:4], "big")
    if length > MAX_REQUEST:
        raise ValueError(f"a request of {length} bytes")
    data = data[4:]
    while len(data) < length:
        chunk = connection.recv(length - len(data))
        if not chunk:
            raise ConnectionError("the client hung up mid-request")
        data += chunk
    return json.loads(data), list(fds)
