"""The grader's handle on a helper process of the grading run's, reached through a socket pair
it inherits (no path a submission could name): nbgrader's preloaded process
(:mod:`.preloaded`) and the sandboxes' zygote (:mod:`.sandbox.zygote`). Each says
:data:`~tfcourse.grading_kernel.served.READY` once it has imported, and ends when the grader
closes its end."""

from __future__ import annotations

import select
import socket
import subprocess
import threading
from typing import Any

from tfcourse.grading_kernel.served import READY

_CLOSE_SECONDS = 30


class ServedProcess:
    """``command`` started at once with one end of a new socket pair, whose descriptor is
    appended to ``command``; ``options`` go to :class:`subprocess.Popen`."""

    def __init__(self, command: list[str], **options: Any) -> None:
        # Datagrams in order: each request arrives whole, however many threads send.
        self._socket, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = subprocess.Popen(
                [*command, str(theirs.fileno())], pass_fds=[theirs.fileno()], **options
            )
        finally:
            theirs.close()
        self._lock = threading.Lock()
        self._ready: bool | None = None

    def close(self) -> None:
        """End the process (what it forked ends as it was told to)."""
        self._socket.close()
        try:
            self._process.wait(timeout=_CLOSE_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def _wait_ready(self, timeout: float | None, failure: str) -> None:
        """Return once the process has said it is ready (waiting at most ``timeout`` seconds the
        first time); RuntimeError(``failure``) if it did not."""
        with self._lock:
            if self._ready is None:
                readable = select.select([self._socket], [], [], timeout)[0]
                self._ready = bool(readable) and self._socket.recv(len(READY)) == READY
        if not self._ready:
            raise RuntimeError(failure)
