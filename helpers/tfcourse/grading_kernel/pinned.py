"""Sockets of a sandbox, reached by the grader without following a name the sandbox controls.

The kernels of a sandboxed submission bind their Unix sockets in a folder the sandbox can
write, so any name there may be replaced at any moment by a link to a socket of the host.
The grader therefore never connects to such a name: it opens the file without following
links, checks that it is a socket of the sandbox's user, and then either connects through
that open descriptor (``/proc/self/fd/N`` names the very file it checked) or hard-links that
file into a folder only the grader can write, where jupyter_client and zmq, which reconnect
by name, find it (:func:`link_sockets`).
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import time
from collections.abc import Iterable
from pathlib import Path

POLL_SECONDS = 0.02


def open_socket_file(path: Path, owner: int) -> int:
    """An ``O_PATH`` descriptor of the socket at ``path`` owned by ``owner``; ConnectionError
    for a link, any other kind of file, another owner, or nothing there."""
    try:
        descriptor = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as error:
        raise ConnectionError(f"{path}: {error.strerror}") from None
    status = os.fstat(descriptor)
    if not stat.S_ISSOCK(status.st_mode) or status.st_uid != owner:
        os.close(descriptor)
        raise ConnectionError(f"{path} is not a socket of user {owner}")
    return descriptor


def connect(path: Path, owner: int) -> socket.socket:
    """A stream connection to the socket at ``path`` (see :func:`open_socket_file`)."""
    descriptor = open_socket_file(path, owner)
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        connection.connect(f"/proc/self/fd/{descriptor}")
    except OSError:
        connection.close()
        raise
    finally:
        os.close(descriptor)
    return connection


def clear(paths: Iterable[Path]) -> None:
    """Remove what is at ``paths`` (a kernel restarted at the same names cannot bind while
    its predecessor's sockets are there); a link is removed, never followed."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def link_sockets(
    names: Iterable[tuple[Path, Path]],
    owner: int,
    seconds: float,
) -> bool:
    """Hard-link each socket ``source`` (in the sandbox's folder) to ``target`` (in a folder
    of the grader's) once it exists, as :func:`open_socket_file` checks it; a target already
    there is replaced. Waits up to ``seconds``; True once all are linked."""
    pending = dict(names)
    deadline = time.monotonic() + seconds
    root = os.open("/", os.O_PATH | os.O_CLOEXEC)
    try:
        while pending and time.monotonic() < deadline:
            for source, target in list(pending.items()):
                with contextlib.suppress(ConnectionError):
                    _link(open_socket_file(source, owner), target, root)
                    del pending[source]
            if pending:
                time.sleep(POLL_SECONDS)
    finally:
        os.close(root)
    return not pending


def _link(descriptor: int, target: Path, root: int) -> None:
    """Link the file open as ``descriptor`` at ``target``, replacing what is there."""
    staged = target.with_name(f".{target.name}.{os.getpid()}")
    try:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(staged)
        # linkat(AT_SYMLINK_FOLLOW) on /proc/self/fd/N links the file that descriptor holds.
        os.link(f"/proc/self/fd/{descriptor}", staged, src_dir_fd=root, follow_symlinks=True)
        os.replace(staged, target)
    finally:
        os.close(descriptor)
