"""``python -m tfcourse_instructor.grading.bound_to_parent PID MODULE [ARGS...]``: run
``python -m MODULE ARGS`` in this process, killed with the thread that started it.

The kit starts nbgrader this way (:meth:`~tfcourse_instructor.grading.course.Course.nbgrader`)
in a session of its own, so that a timeout stops it with everything it started. A grader that is
itself killed (a cluster's worker lost mid-submission, a grading run stopped with SIGKILL) gets no
chance to stop it: the kernel's parent-death signal does, so no nbgrader outlives the grader.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when the thread that started it ends; exit now if
    ``parent`` (its pid) is already gone. Elsewhere, do nothing."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent:  # it ended before the request took effect
        os._exit(1)


def main() -> None:
    """Bind this process to its parent, then run the module named after the parent's pid."""
    parent, module, *args = sys.argv[1:]
    die_with_parent(int(parent))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
