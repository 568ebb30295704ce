"""Start bubblewrap for a root grader as an unprivileged user.

Run as root, ``python -m tfcourse_instructor.grading.submission.sandbox.launch --stage DIR --uid N
[--read PATH ...] [--write PATH ...] -- BWRAP-COMMAND`` enters a mount namespace of its own,
binds each ``--read`` and ``--write`` path under ``DIR`` (a tmpfs there, in that namespace
only: the host sees an empty folder), drops every privilege to user and group ``N``, then
runs the bubblewrap command, whose sources lie under ``DIR``
(:func:`~tfcourse_instructor.grading.submission.sandbox.bwrap.command` with ``sources``).

Binding as root first is what lets an unprivileged bubblewrap show the interpreter and the
environment wherever they are installed (under ``/root``, say) without giving its user any
other file of their folders: the user reaches the bound folders through the staging root
only, and their own files only where every user may read them.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import sys
from pathlib import Path

from tfcourse.grading_kernel.confinement import become_user

_CLONE_NEWNS = 0x00020000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def stage(root: Path, paths: list[Path]) -> None:
    """In a mount namespace of this process's own, a tmpfs at ``root`` with each of ``paths``
    bound at ``root``/path."""
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(_CLONE_NEWNS), "unshare")
    _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    _check(libc.mount(b"tmpfs", str(root).encode(), b"tmpfs", 0, b"mode=0755"), f"tmpfs {root}")
    for path in paths:
        if not path.exists():
            continue
        target = root / path.relative_to("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            target.mkdir(exist_ok=True)
        else:
            target.touch()
        flags = _MS_BIND | _MS_REC
        _check(libc.mount(str(path).encode(), str(target).encode(), None, flags, None), str(path))


def main(argv: list[str]) -> int:
    """Stage, drop, then exec the bubblewrap command."""
    parser = argparse.ArgumentParser(
        prog="python -m tfcourse_instructor.grading.submission.sandbox.launch"
    )
    parser.add_argument("--stage", type=Path, required=True)
    parser.add_argument("--uid", type=int, required=True)
    parser.add_argument("--read", type=Path, action="append", default=[])
    parser.add_argument("--write", type=Path, action="append", default=[])
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    stage(args.stage, [path for path in [*args.read, *args.write] if not path.is_symlink()])
    become_user(args.uid)
    os.execv(command[0], command)
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
