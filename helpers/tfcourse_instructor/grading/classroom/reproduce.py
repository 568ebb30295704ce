"""Reproducibility of a submission: does its code produce the outputs it was saved with?

A grader who doubts a submission ("were these outputs really produced by this code, in this
order?") runs nbval on it: every code cell is re-run top to bottom in a fresh kernel, as
"restart and run all" would, and its new outputs are compared with the stored ones. The
notebook runs in a scratch folder next to the public test files of the release, as the
student ran it, and in a sandbox (:mod:`tfcourse_instructor.grading.submission.sandbox`) where
bubblewrap can run: the submission's code sees neither the course nor the network. Images are not
compared (nbval's rule), nor cells marked ``# NBVAL_IGNORE_OUTPUT``, nor the digits of a
rounding error (:data:`ROUNDING_ERROR`): they depend on the machine, not on the code.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
from defusedxml import ElementTree

from tfcourse.grading_kernel.attempts import read_capped
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission.sandbox import (
    Sandbox,
    submission_mounts,
    unavailable_reason,
)
from tfcourse_instructor.grading.submission.workspace import Limits

REPRODUCE_LIMITS = Limits()

ROUNDING_ERROR = r"-?\b\d\.\d+e-(?:0[5-9]|[1-9]\d)\b|-?\b0\.0+e\+00\b"
"""A number printed in scientific notation below 1e-4, or zero, as the notebooks print a
rounding error (``max |difference| from PyTorch's attention: 2.4e-07``). Its digits depend
on the CPU's vector instructions and the number of threads, so a run on another machine
prints others: nbval compares such numbers as equal (:func:`write_sanitizer`)."""

_MAX_REPORT_BYTES = 16 * 2**20
_COLOUR = re.compile(r"(\x1b|#x1B)(\[[0-9;]*m)?")


@dataclass(frozen=True)
class CellReport:
    """The verdict on one code cell: ``reproduced``, ``differs``, ``error`` or ``skipped``."""

    number: int
    """Position among the notebook's code cells, from 0 (nbval's "Cell N")."""
    label: str
    verdict: str
    detail: str = ""


def write_sanitizer(folder: Path) -> Path:
    """Write, in ``folder``, the file nbval's ``--nbval-sanitize-with`` reads: it replaces
    every :data:`ROUNDING_ERROR` in stored and new outputs alike. Returns its path."""
    path = folder / "nbval-sanitize.cfg"
    path.write_text(f"regex: {ROUNDING_ERROR}\nreplace: ROUNDING-ERROR\n", encoding="utf-8")
    return path


def check_notebook(course: Course, notebook: Path, cell_timeout: int = 300) -> list[CellReport]:
    """Re-run ``notebook`` with nbval and report on each code cell."""
    code_cells = [
        cell for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"
    ]
    with tempfile.TemporaryDirectory(prefix="tfcourse-nbval-") as scratch:
        folder = Path(scratch) / "notebook"
        folder.mkdir()
        shutil.copy(notebook, folder / notebook.name)
        shutil.copytree(course.release_dir / "tests", folder / "tests")
        course.copy_given_modules(folder)
        report = folder / "report.xml"
        sanitizer = write_sanitizer(folder)
        mounts = None
        if unavailable_reason() is None:
            home = Path(scratch) / "home"
            mounts = submission_mounts((folder,), home)
        sandbox = Sandbox(mounts, REPRODUCE_LIMITS.submission_memory_mb, REPRODUCE_LIMITS.processes)
        process = sandbox.popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "--nbval",
                str(folder / notebook.name),
                f"--rootdir={folder}",
                "-p",
                "no:cacheprovider",
                "-q",
                f"--junitxml={report}",
                f"--nbval-cell-timeout={cell_timeout}",
                f"--nbval-sanitize-with={sanitizer}",
                "-o",
                "addopts=",
            ],
            cwd=folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            process.wait()
        finally:
            sandbox.close()
        verdicts = _read_junit(read_capped(report, _MAX_REPORT_BYTES))
    reports = []
    for number, cell in enumerate(code_cells):
        label = cell.metadata.get("nbgrader", {}).get("grade_id") or _first_line(cell.source)
        verdict, detail = verdicts.get(number, ("skipped", "not run (an earlier failure?)"))
        reports.append(CellReport(number, label, verdict, detail))
    return reports


def format_report(name: str, reports: list[CellReport]) -> str:
    """A line per cell, then a count: what a grader reads."""
    width = max((len(r.label) for r in reports), default=0)
    lines = [f"{name}: (in differences, + is the stored output, - the re-run's)"]
    for r in reports:
        lines.append(f"  cell {r.number:>3}  {r.label.ljust(width)}  {r.verdict}")
        for detail_line in r.detail.splitlines()[:8]:
            lines.append(f"            {detail_line}")
    bad = sum(r.verdict != "reproduced" for r in reports)
    lines.append(f"  {len(reports) - bad} of {len(reports)} code cells reproduce their outputs")
    return "\n".join(lines)


def _read_junit(text: str) -> dict[int, tuple[str, str]]:
    """nbval's verdict per cell from its JUnit report (written in the sandbox: read capped,
    parsed without entities)."""
    verdicts: dict[int, tuple[str, str]] = {}
    try:
        root = ElementTree.fromstring(text) if text else None
    except (ElementTree.ParseError, ValueError):
        return verdicts
    for case in root.iter("testcase") if root is not None else ():
        words = case.get("name", "").split()
        if len(words) < 2 or words[0] != "Cell" or not words[1].isdigit():
            continue
        number = int(words[1])
        failure = case.find("failure")
        error = case.find("error")
        skipped = case.find("skipped")
        if failure is not None:
            message = failure.get("message", "") or ""
            verdict = "error" if "exception" in message.lower() else "differs"
            verdicts[number] = (verdict, _trim(failure.text or message))
        elif error is not None:
            verdicts[number] = ("error", _trim(error.text or error.get("message", "")))
        elif skipped is not None:
            verdicts[number] = ("skipped", skipped.get("message", ""))
        else:
            verdicts[number] = ("reproduced", "")
    return verdicts


def _trim(text: str) -> str:
    """What nbval says after "Traceback:" (the mismatch and the two outputs), uncoloured."""
    text = _COLOUR.sub("", text)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    marker = next((i for i, line in enumerate(lines) if line.startswith("Traceback:")), None)
    return "\n".join(lines[marker + 1 :] if marker is not None else lines[-6:])


def _first_line(source: str) -> str:
    line = next((line for line in source.splitlines() if line.strip()), "")
    return line[:40]
