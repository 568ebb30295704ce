"""Entry point of ``python -m tfcourse.grading``."""

import sys

from tfcourse.grading.cli import main

sys.exit(main())
