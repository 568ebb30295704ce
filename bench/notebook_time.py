"""Wall time of a source notebook run top to bottom in full mode, as a student runs it.

Executes ``source/NAME/NAME.ipynb`` (the model solutions) in a scratch copy of its
folder, without ``NBGRADER_EXECUTION`` or ``TFCOURSE_QUICK``, so notebooks that train do so
at full size. Prints the seconds spent in each section (a ``## `` heading), the total and
the slowest cell; notebook 3's goal is at most 15 minutes on a 2-core laptop CPU, and no
cell of any notebook over a minute. With ``--keep PATH`` the executed notebook is written to
PATH, so that the text and model answers can be checked against what a full run shows.

    python bench/notebook_time.py [NAME] [--quick] [--keep PATH]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tfcourse.runmode import GRADING_VARIABLE, QUICK_VARIABLE
from tfcourse_instructor.grading.build.authoring import QUICK_ENV
from tfcourse_instructor.grading.course import Course, find_root


def cell_seconds(cell: nbformat.NotebookNode) -> float:
    """Seconds from the start of a cell's execution to its reply (nbclient's timing record)."""
    timing = cell.metadata.get("execution", {})
    start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
    if not (start and end):
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def section_times(notebook: nbformat.NotebookNode) -> dict[str, float]:
    """Seconds per section, in order; cells before the first ``## `` heading are "setup"."""
    sections: dict[str, float] = {"setup": 0.0}
    current = "setup"
    for cell in notebook.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            current = cell.source.splitlines()[0][3:].strip()
            sections.setdefault(current, 0.0)
        elif cell.cell_type == "code":
            sections[current] += cell_seconds(cell)
    return sections


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", nargs="?", default="03_language_models")
    parser.add_argument("--quick", action="store_true", help="time the quick (graded) mode")
    parser.add_argument("--keep", type=Path, help="write the executed notebook here")
    args = parser.parse_args()

    course = Course(find_root(Path(__file__).parent), args.name)
    env = {k: v for k, v in os.environ.items() if k not in (GRADING_VARIABLE, QUICK_VARIABLE)}
    if args.quick:
        env.update(QUICK_ENV)
    notebook = nbformat.read(course.source_dir / f"{args.name}.ipynb", as_version=4)
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / course.assignment
        shutil.copytree(course.source_dir, folder)
        client = NotebookClient(
            notebook,
            timeout=3600,
            kernel_name="python3",
            record_timing=True,
            resources={"metadata": {"path": str(folder)}},
        )
        start = time.perf_counter()
        client.execute(env=env)
        total = time.perf_counter() - start
    if args.keep:
        nbformat.write(notebook, args.keep)
    mode = "quick" if args.quick else "full"
    print(f"{args.name}, {mode} mode, load average {os.getloadavg()[0]:.1f}:")
    for section, seconds in section_times(notebook).items():
        print(f"  {seconds:7.1f} s  {section}")
    print(f"  {total:7.1f} s  total (kernel start included)")
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    slowest = max(code, key=cell_seconds)
    print(f"  slowest cell: {cell_seconds(slowest):.1f} s ({slowest.get('id', '?')})")


if __name__ == "__main__":
    main()
