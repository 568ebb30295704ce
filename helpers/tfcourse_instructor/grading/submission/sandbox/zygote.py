"""The grader's side of a grading run's zygote (:mod:`tfcourse.grading_kernel.zygote`): the
process that starts each sandbox's ``python -m MODULE`` already imported, by entering the
sandbox.

:class:`Zygote` starts it with an environment of the kit's making (the sandboxes' own, with a
home of its own in a private folder under ``/tmp``: matplotlib keeps its cache there, and a
sandbox makes the same folder in its own ``/tmp``), and the font list on its standard input.
:meth:`Zygote.start` asks it for one process in one sandbox.
"""

from __future__ import annotations

import os
import platform
import select
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

from tfcourse.grading_kernel import forkserver, zygote

SUPPORTED = (
    forkserver.SUPPORTED
    and hasattr(os, "pidfd_open")
    and tuple(int(part) for part in platform.release().split(".")[:2] if part.isdigit()) >= (5, 8)
)
"""Where a process can enter another's namespaces through a pidfd (Linux 5.8)."""

READY_SECONDS = 120
"""How long the zygote may take to import (a first run on a cold disk)."""
REPLY_SECONDS = 30
_MAX_REPLY = 256


class Zygote:
    """A grading run's zygote, started at once; :meth:`start` waits until it has imported."""

    def __init__(self, environment: dict[str, str], font_list: forkserver.FontList | None) -> None:
        self._home = Path(tempfile.mkdtemp(prefix="tfcourse-zygote-", dir="/tmp"))
        # Datagrams in order: each request's socket arrives whole, however many threads send.
        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        command = [sys.executable, "-P", "-m", zygote.__name__, str(theirs.fileno())]
        stdin = subprocess.DEVNULL
        if font_list is not None:
            stdin = forkserver.font_list_file(font_list)
            command += ["--font-list", font_list.name]
        try:
            self._process = subprocess.Popen(
                command,
                pass_fds=[theirs.fileno()],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                env={**environment, "HOME": str(self._home), "MPLCONFIGDIR": str(self._home)},
                cwd=self._home,
                start_new_session=True,
            )
        finally:
            theirs.close()
            if font_list is not None:
                os.close(stdin)
        self._lock = threading.Lock()
        self._ready: bool | None = None

    def start(
        self,
        pidfd: int,
        argv: Sequence[str],
        stdio: Sequence[int],
        *,
        groups: Sequence[int],
        uid: int | None,
        cwd: Path,
        environment: dict[str, str],
        path: Sequence[Path],
    ) -> int:
        """Start ``argv`` (``python -m MODULE ARGS``) in the sandbox whose first process
        ``pidfd`` refers to: its pid outside the sandbox. ``stdio``: its stdin, stdout and
        stderr; ``groups``: the ``cgroup.procs`` files of its control groups, open for writing;
        ``uid``: the user outside to become first (a root grader's); ``environment`` and
        ``path``: its variables and the folders first on its module path."""
        if list(argv[:2]) != [sys.executable, "-m"] or len(argv) < 3:
            raise ValueError(f"the zygote starts python -m MODULE only, not {argv[:3]}")
        self._wait_ready()
        request = {
            "module": argv[2],
            "args": list(argv[3:]),
            "uid": uid,
            "cwd": str(cwd),
            "env": environment,
            "path": [str(folder) for folder in path],
        }
        ours, theirs = socket.socketpair()
        with ours:
            with theirs:
                socket.send_fds(self._socket, [b"start"], [theirs.fileno()])
            forkserver.send_request(ours, request, [pidfd, *stdio, *groups])
            reply = _reply(ours)
        if not reply.isdigit():
            raise RuntimeError(f"the zygote could not start {argv[2]} in the sandbox: {reply}")
        return int(reply)

    def close(self) -> None:
        """End the zygote (what it started lives on until its sandbox ends)."""
        self._socket.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        shutil.rmtree(self._home, ignore_errors=True)

    def _wait_ready(self) -> None:
        with self._lock:
            if self._ready is None:
                readable = select.select([self._socket], [], [], READY_SECONDS)[0]
                self._ready = bool(readable) and self._socket.recv(16) == zygote.READY
        if not self._ready:
            raise RuntimeError("the grading run's zygote did not start")


def _reply(connection: socket.socket) -> str:
    """The zygote child's one-line reply: a pid, or what went wrong (at most
    :data:`_MAX_REPLY` bytes)."""
    connection.settimeout(REPLY_SECONDS)
    received = b""
    try:
        while b"\n" not in received and len(received) < _MAX_REPLY:
            chunk = connection.recv(_MAX_REPLY - len(received))
            if not chunk:
                break
            received += chunk
    except OSError as error:
        return f"no reply ({error})"
    return received.decode("ascii", "replace").strip() or "no reply"
