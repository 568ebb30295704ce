"""Entry point of ``python -m tfcourse_instructor.grading``."""

import sys

from tfcourse_instructor.grading.cli import main

sys.exit(main())
