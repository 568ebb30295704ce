"""Memory and process limits for every process of one submission together: a control group.

A limit per process (``RLIMIT_AS``) does not stop three children of 2 GiB each, nor a fork
bomb; a control group does, and counts how often its limits were hit. Version 2 (the unified
hierarchy) is used where the grader's own group delegates the ``memory`` and ``pids``
controllers, version 1 where their hierarchies are mounted writable (a root grader on a
hybrid system). Elsewhere :func:`create` returns None and only the per-process limits hold.

A group is named after the grading process that made it, so that the next group made on the
machine (or a cluster's next worker, at its start) ends what a killed grader left
(:func:`remove_abandoned`), as the scratch folders are removed:
bubblewrap's own clean-up when its parent dies has a gap (its child can be left waiting for
good if the parent dies while the sandbox is being made), and a group holds every process a
sandbox ever started, whoever their parent is now.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from tfcourse_instructor.grading.submission.folders import of_ended_process, process_prefix

CGROUP_ROOT = Path("/sys/fs/cgroup")
_CONTROLLERS = ("memory", "pids")


@dataclass(frozen=True)
class Usage:
    """What a group's processes did against its limits."""

    memory_limit_hits: int
    """Allocations refused or processes killed for memory."""
    process_limit_hits: int
    """Forks refused at the process limit."""
    alive: int
    """Processes still in the group."""


@dataclass(frozen=True)
class ResourceGroup:
    """A control group (one folder for version 2, one per controller for version 1)."""

    version: int
    folders: tuple[Path, ...]

    @property
    def mechanism(self) -> str:
        """How the limits are enforced, for the summary."""
        caps = "caps the memory and the processes of each submission together"
        return f"a control group (cgroup v{self.version}) {caps}"

    def wrap(self, argv: list[str]) -> list[str]:
        """``argv`` started from inside the group (so its first process is already limited)."""
        join = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
        procs = [str(folder / "cgroup.procs") for folder in self.folders]
        return ["/bin/sh", "-c", join, "sh", *procs, "--", *argv]

    def usage(self) -> Usage:
        """Limit hits so far and the processes alive now."""
        if self.version == 2:
            (folder,) = self.folders
            memory = _counters(folder / "memory.events")
            memory_hits = memory.get("oom_kill", 0) + memory.get("max", 0)
        else:
            folder = self.folders[_CONTROLLERS.index("memory")]
            memory_hits = _read_int(folder / "memory.failcnt")
        pids = self.folders[-1] if self.version == 1 else self.folders[0]
        return Usage(memory_hits, _counters(pids / "pids.events").get("max", 0), len(self._pids()))

    def kill_all(self) -> None:
        """Kill every process of the group, including those started while killing."""
        if self.version == 2:
            # Linux 5.14 and later kill the whole group at once, with no pid to reuse.
            with contextlib.suppress(OSError):
                (self.folders[0] / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 10
        while (pids := self._pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def remove(self) -> None:
        """Kill what is left and delete the group."""
        self.kill_all()
        for folder in self.folders:
            for _ in range(100):  # the kernel frees a group shortly after its last process
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)

    def _pids(self) -> list[int]:
        pids: set[int] = set()
        for folder in self.folders:
            with contextlib.suppress(OSError):
                pids.update(int(line) for line in (folder / "cgroup.procs").read_text().split())
        return sorted(pids)


def create(memory_mb: int, processes: int) -> ResourceGroup | None:
    """A new group under the grader's own (``tfcourse-<its pid>-…``), holding at most
    ``memory_mb`` MiB and ``processes`` tasks (threads count), after removing those of
    processes that no longer run (:func:`remove_abandoned`); None where this process may not
    create one."""
    remove_abandoned()
    name = f"{process_prefix()}{uuid.uuid4().hex[:12]}"
    return _create_v2(name, memory_mb, processes) or _create_v1(name, memory_mb, processes)


def remove_abandoned() -> list[str]:
    """Kill the processes of the groups :func:`create` made under this process's own for
    grading processes that no longer run, and remove those groups; return their names."""
    removed = []
    for version in (2, 1):
        found: dict[str, list[Path]] = {}
        for parent in _own_folders(version):
            with contextlib.suppress(OSError):
                for folder in parent.iterdir():
                    found.setdefault(folder.name, []).append(folder)
        for name, folders in sorted(found.items()):
            if of_ended_process(name):
                ResourceGroup(version, tuple(folders)).remove()
                removed.append(name)
    return removed


def _create_v2(name: str, memory_mb: int, processes: int) -> ResourceGroup | None:
    own = _own_group("")
    if own is None or not (CGROUP_ROOT / "cgroup.controllers").is_file():
        return None
    parent = CGROUP_ROOT / own.lstrip("/")
    try:
        delegated = (parent / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    if not set(_CONTROLLERS) <= set(delegated):
        return None
    folder = parent / name
    try:
        folder.mkdir()
        (folder / "memory.max").write_text(str(memory_mb * 2**20))
        (folder / "memory.swap.max").write_text("0")
        (folder / "pids.max").write_text(str(processes))
    except OSError:
        with contextlib.suppress(OSError):
            folder.rmdir()
        return None
    return ResourceGroup(2, (folder,))


def _create_v1(name: str, memory_mb: int, processes: int) -> ResourceGroup | None:
    folders = []
    settings = {
        "memory": {"memory.limit_in_bytes": memory_mb * 2**20},
        "pids": {"pids.max": processes},
    }
    try:
        for controller in _CONTROLLERS:
            own = _own_group(controller)
            mount = CGROUP_ROOT / controller
            if own is None or not mount.is_dir():
                raise OSError(f"no {controller} hierarchy")
            folder = mount / own.lstrip("/") / name
            folder.mkdir()
            folders.append(folder)
            for setting, value in settings[controller].items():
                (folder / setting).write_text(str(value))
    except OSError:
        for folder in folders:
            with contextlib.suppress(OSError):
                folder.rmdir()
        return None
    return ResourceGroup(1, tuple(folders))


def _own_folders(version: int) -> list[Path]:
    """The folders of this process's own groups: one for version 2, one per controller."""
    if version == 2:
        own = _own_group("")
        unified = (CGROUP_ROOT / "cgroup.controllers").is_file()
        return [CGROUP_ROOT / own.lstrip("/")] if own is not None and unified else []
    return [
        CGROUP_ROOT / controller / own.lstrip("/")
        for controller in _CONTROLLERS
        if (own := _own_group(controller)) is not None
    ]


def _own_group(controller: str) -> str | None:
    """This process's group in the hierarchy of ``controller`` ("" for version 2)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(",") or (not controller and controllers == ""):
                return path
    return None


def _counters(path: Path) -> dict[str, int]:
    with contextlib.suppress(OSError, ValueError):
        lines = path.read_text().splitlines()
        return {key: int(value) for key, value in (line.split() for line in lines)}
    return {}


def _read_int(path: Path) -> int:
    with contextlib.suppress(OSError, ValueError):
        return int(path.read_text().strip())
    return 0
