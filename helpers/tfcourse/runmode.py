"""Which size a notebook that trains runs at: full for a student, quick when it is graded.

Quick mode is the size the graded thresholds are set for. It is on while

- nbgrader autogrades or validates the notebook (nbgrader sets ``NBGRADER_EXECUTION``);
- the kit runs its own notebooks: build, nbval, its checks (``TFCOURSE_QUICK=1``);
- an otter autograder grades it, e.g. on Gradescope. Otter sets no variable of its own, so
  the copy of the helpers an autograder ships carries a marker file beside this module.
"""

from __future__ import annotations

import os
from pathlib import Path

GRADING_VARIABLE = "NBGRADER_EXECUTION"
QUICK_VARIABLE = "TFCOURSE_QUICK"
AUTOGRADER_MARKER = "AUTOGRADER"
"""Name of the file that marks the helpers shipped inside an otter autograder."""


def quick_mode() -> bool:
    """True when the notebook is graded or run by the kit: train at the graded size."""
    return bool(
        os.environ.get(GRADING_VARIABLE)
        or os.environ.get(QUICK_VARIABLE)
        or Path(__file__).with_name(AUTOGRADER_MARKER).is_file()
    )
