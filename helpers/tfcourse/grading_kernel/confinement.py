"""Linux calls that bind a process to its parent, and that put it into a sandbox made elsewhere.

:mod:`~tfcourse.grading_kernel.zygote` enters the namespaces of a sandbox bubblewrap made, then
gives up what entering gave it, as bubblewrap does for the processes it starts itself: every
capability (effective, permitted, inheritable, bounding and ambient), and the right to gain any
again through a program it runs (``no_new_privs``).
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
from pathlib import Path

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_PR_CAPBSET_DROP = 24
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_CLEAR_ALL = 4
_LINUX_CAPABILITY_VERSION_3 = 0x20080522

NAMESPACES = {
    "user": 0x10000000,
    "mnt": 0x00020000,
    "pid": 0x20000000,
    "net": 0x40000000,
    "ipc": 0x08000000,
    "uts": 0x04000000,
    "cgroup": 0x02000000,
}
"""Every namespace a sandbox has of its own (``CLONE_NEW*`` flags), by its name in
``/proc/PID/ns``: a process entering the sandbox enters them all."""


class _CapabilityHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapabilitySets(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"{what}: {os.strerror(error)}")


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the thread that started it ends; exit now if
    ``parent`` (its pid) is already gone. Elsewhere, do nothing."""
    if not sys.platform.startswith("linux"):
        return
    _check(_libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it ended before the request took effect
        os._exit(1)


def become_user(uid: int) -> None:
    """Become ``uid`` (user and group) for good, with no supplementary group."""
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)


def enter_namespaces(pidfd: int) -> None:
    """Enter every namespace (:data:`NAMESPACES`) of the process ``pidfd`` refers to, at once;
    the user namespace first, so this process must own it. The working folder becomes the root
    of the new mount namespace."""
    flags = 0
    for name, flag in NAMESPACES.items():
        if Path(f"/proc/self/ns/{name}").exists():
            flags |= flag
    _check(_libc().setns(pidfd, flags), "setns")


def drop_capabilities() -> None:
    """Give up every capability for good: the bounding and ambient sets, then the effective,
    permitted and inheritable ones; and set ``no_new_privs``, so that no program this process
    runs gains any."""
    libc = _libc()
    capability = 0
    while libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) == 0:
        capability += 1
    if ctypes.get_errno() != errno.EINVAL or capability == 0:  # EINVAL: past the last one
        _check(-1, f"prctl(PR_CAPBSET_DROP, {capability})")
    _check(libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clear ambient")
    header = _CapabilityHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    empty = (_CapabilitySets * 2)()
    _check(libc.capset(ctypes.byref(header), empty), "capset")
    _check(libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")
