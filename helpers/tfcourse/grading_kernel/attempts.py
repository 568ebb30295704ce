"""What a submission tried that its sandbox refused: writes outside its folders, network.

The sandbox is what stops such attempts; this only names the submission that made them. An
audit hook (:pep:`578`), added in the kernel before any cell runs, appends one line per
attempt to a log in the submission's sockets folder; the grader reads it once the
submission is done. Code that wants to hide can delete its own log, so the record is a
help for the grader, never a protection: the summary says what it found, not that nothing
happened.
"""

from __future__ import annotations

import os
import socket
import stat
import sys
from collections import Counter
from pathlib import Path
from typing import Any

LOG_NAME = "attempts.log"
_MAX_LOG_BYTES = 64 * 1024
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
_WRITE_EVENTS = ("os.mkdir", "os.remove", "os.rmdir", "os.rename", "os.chmod", "os.truncate")
_SHOWN = 3


def install(log: Path, writable: list[Path]) -> None:
    """In the kernel: record attempts to write outside ``writable`` or to reach a network."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    roots = tuple(f"{os.path.realpath(folder)}{os.sep}" for folder in writable)
    written = 0

    def record(kind: str, target: str) -> None:
        nonlocal written
        line = f"{kind}\t{target[:300]}\n".encode("utf-8", "replace")
        if written + len(line) <= _MAX_LOG_BYTES:
            written += len(line)
            os.write(fd, line)

    def outside(path: Any) -> str | None:
        if isinstance(path, int):
            return None  # an open file descriptor
        name = os.path.realpath(os.fsdecode(path))
        if f"{name}{os.sep}".startswith(roots) or "__pycache__" in name:
            return None  # its own folders; Python's byte-code cache (refused, harmlessly)
        return name

    def hook(event: str, args: tuple[Any, ...]) -> None:
        try:
            if event == "open":
                path, mode, flags = args
                writing = (mode and any(c in mode for c in "wax+")) or (
                    mode is None and flags & _WRITE_FLAGS
                )
                if writing and (name := outside(path)):
                    record("write", name)
            elif event in _WRITE_EVENTS:
                if name := outside(args[0]):
                    record("write", name)
            elif event == "socket.connect":
                connection, address = args
                if connection.family != socket.AF_UNIX:
                    record("network", str(address))
        except Exception:  # never let the record-keeping break the student's code
            return

    sys.addaudithook(hook)


def read_capped(path: Path, limit: int) -> str:
    """At most ``limit`` bytes of the regular file at ``path`` as text, "" for anything else:
    a file the sandbox could have made is never followed as a link, never opened as a FIFO
    or device (which could block), never read whole."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return ""
    with os.fdopen(descriptor, "rb") as stream:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return ""
        return stream.read(limit).decode("utf-8", "replace")


def read(folder: Path) -> list[str]:
    """The grader's summary of the attempts logged in ``folder``, one line per kind."""
    text = read_capped(folder / LOG_NAME, _MAX_LOG_BYTES)
    found: dict[str, Counter[str]] = {"write": Counter(), "network": Counter()}
    for line in text.splitlines():
        kind, _, target = line.partition("\t")
        if kind in found and target:
            found[kind][target] += 1
    lines = []
    for kind, words in (
        ("write", "tried to write outside its own folders"),
        ("network", "tried to reach the network"),
    ):
        if found[kind]:
            examples = ", ".join(target for target, _ in found[kind].most_common(_SHOWN))
            more = len(found[kind]) - _SHOWN
            lines.append(
                f"{words} ({sum(found[kind].values())} time(s): {examples}"
                f"{f' and {more} more' if more > 0 else ''}); the sandbox refused"
            )
    return lines
