"""The grader's side of a grading run's zygote (:mod:`tfcourse.grading_kernel.zygote`): the
process that starts each sandbox's ``python -m MODULE`` already imported, by entering the
sandbox.

:class:`Zygote` starts it with an environment of the kit's making (the sandboxes' own, with a
private folder under ``/tmp`` as its home: matplotlib keeps its cache there, and each sandbox
makes the same folder in its own ``/tmp``), and the font list on its standard input.
:meth:`Zygote.start` asks it for one process in one sandbox.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from tfcourse.grading_kernel import forkserver, served, zygote
from tfcourse_instructor.grading.submission.served import ServedProcess

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


class Zygote(ServedProcess):
    """A grading run's zygote, started at once; :meth:`start` waits until it has imported."""

    def __init__(
        self, environment: dict[str, str], font_list: forkserver.FontList | None, home: Path
    ) -> None:
        """``environment``: the sandboxes' (HOME aside); ``home``: a new private folder under
        ``/tmp`` (the only place a sandbox can make the same folder), removed by :meth:`close`."""
        self._home = home
        # Isolated: no folder of the grader's (its working folder) is on the module path.
        command = [sys.executable, "-I", "-m", zygote.__name__]
        stdin = subprocess.DEVNULL
        if font_list is not None:
            stdin = forkserver.font_list_file(font_list)
            command += ["--font-list", font_list.name]
        try:
            super().__init__(
                command,
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                env={**environment, "HOME": str(home), "MPLCONFIGDIR": str(home)},
                cwd=home,
                start_new_session=True,
            )
        finally:
            if font_list is not None:
                os.close(stdin)

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
        self._wait_ready(READY_SECONDS, "the grading run's zygote did not start")
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
            served.send_request(ours, request, [pidfd, *stdio, *groups])
            reply = _reply(ours)
        if not reply.isdigit():
            raise RuntimeError(f"the zygote could not start {argv[2]} in the sandbox: {reply}")
        return int(reply)

    def close(self) -> None:
        """End the zygote (what it started lives on until its sandbox ends)."""
        super().close()
        shutil.rmtree(self._home, ignore_errors=True)


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
