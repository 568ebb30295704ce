"""How long each phase of grading took, for the grading benchmark (``bench/grading_speed.py``).

Off unless :data:`VARIABLE` names a file: then the trusted processes of a grading run (the
class pipeline, and the nbgrader process that runs a submission's checks) append one JSON line
per phase to it (``{"phase": ..., "seconds": ..., "ended": ..., "round_trips": ...}``, ``ended``
in seconds since the epoch: when the phase was recorded). Only trusted code
writes it: a submission's kernel gets none of the grader's variables and cannot reach the file,
and nothing read from it feeds a grade.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

VARIABLE = "TFCOURSE_GRADING_TIMINGS"
"""The environment variable naming the file the phases are appended to."""


@contextlib.contextmanager
def phase(name: str) -> Iterator[dict[str, Any]]:
    """Time the block as phase ``name``; counts put in the yielded dict are recorded with it."""
    counts: dict[str, Any] = {}
    start = time.perf_counter()
    try:
        yield counts
    finally:
        record(name, time.perf_counter() - start, **counts)


def record(name: str, seconds: float, **counts: Any) -> None:
    """Append phase ``name`` of ``seconds`` (and ``counts``) to the file, if one is named."""
    path = os.environ.get(VARIABLE)
    if not path:
        return
    line = json.dumps({"phase": name, "seconds": seconds, "ended": time.time(), **counts}) + "\n"
    # One write on a descriptor opened for appending: lines of parallel processes never mix.
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        os.write(descriptor, line.encode())
    finally:
        os.close(descriptor)


def read(path: Path) -> list[dict[str, Any]]:
    """The phases recorded in ``path``, in order (none if it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
