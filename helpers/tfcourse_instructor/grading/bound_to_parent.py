"""``python -m tfcourse_instructor.grading.bound_to_parent PID MODULE [ARGS...]``: run
``python -m MODULE ARGS`` in this process, killed with the thread that started it.

The kit starts nbgrader this way (:meth:`~tfcourse_instructor.grading.course.Course.nbgrader`)
in a session of its own, so that a timeout stops it with everything it started. A grader that is
itself killed (a cluster's worker lost mid-submission, a grading run stopped with SIGKILL) gets no
chance to stop it: the kernel's parent-death signal does, so no nbgrader outlives the grader.
"""

from __future__ import annotations

import runpy
import sys

from tfcourse.grading_kernel.confinement import die_with_parent


def main() -> None:
    """Bind this process to its parent, then run the module named after the parent's pid."""
    parent, module, *args = sys.argv[1:]
    die_with_parent(int(parent))
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
