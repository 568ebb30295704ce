"""Scratch folders named after the grading process that made them, so that the next run
removes those of a run that was killed before its clean-up (the sandboxes' control groups are
named the same way: :func:`process_prefix`, :func:`of_ended_process`)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path

_FOLDER_PREFIX = "tfcourse-"


def process_prefix(label: str = "") -> str:
    """The start of a name that holds this process's id: ``tfcourse-<pid>-<label>``."""
    return f"{_FOLDER_PREFIX}{os.getpid()}-{label}"


def of_ended_process(name: str) -> bool:
    """Whether ``name`` starts with :func:`process_prefix` of a process that no longer runs."""
    pid = name.removeprefix(_FOLDER_PREFIX).split("-", 1)[0]
    return name.startswith(_FOLDER_PREFIX) and pid.isdigit() and not Path(f"/proc/{pid}").exists()


def process_folder(parent: Path, label: str = "") -> Path:
    """A new folder in ``parent`` whose name holds this process's id
    (``tfcourse-<pid>-<label>…``), after removing those of processes that no longer run."""
    remove_abandoned_folders(parent)
    return Path(tempfile.mkdtemp(prefix=process_prefix(label), dir=parent))


def remove_abandoned_folders(parent: Path) -> list[Path]:
    """Remove the folders :func:`process_folder` made in ``parent`` for grading processes of
    this user that no longer run (a killed run never reached its clean-up); return them. Their
    contents were made by sandboxes: the removal follows no link."""
    removed = []
    for folder in parent.glob(f"{_FOLDER_PREFIX}*-*"):
        with contextlib.suppress(OSError):
            info = folder.lstat()
            mine = stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
            if mine and of_ended_process(folder.name):
                shutil.rmtree(folder)  # fd-based on Linux: never follows a symbolic link
                removed.append(folder)
    return removed


def memory_folder() -> Path | None:
    """A new folder of the grader's on the machine's memory file system (``/dev/shm``), or
    None where there is none: pages written there are charged to the memory control group
    of the process that writes them, and vanish with the folder (:func:`process_folder`: those
    of runs that were killed are removed by the next)."""
    shm = Path("/dev/shm")
    with contextlib.suppress(OSError):
        mounts = Path("/proc/self/mounts").read_text(encoding="utf-8").splitlines()
        if any(line.split()[1:3] == [str(shm), "tmpfs"] for line in mounts):
            return process_folder(shm)
    return None
