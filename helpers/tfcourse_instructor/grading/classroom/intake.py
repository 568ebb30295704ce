"""Intake: submissions from an LMS download, or already in nbgrader's ``submitted/``.

An LMS (Canvas, Moodle, ...) hands graders one zip of every student's files. The kit files
each notebook under ``submitted/<student>/<assignment>/<notebook>.ipynb``, taking the student
id from the entry's top-level name in that zip only, never from anything inside it:
``<student>_<anything>_<notebook>.ipynb`` or ``<student>_<notebook>.ipynb`` (Canvas's
``jdoe_12345_67890_01_attention.ipynb``), or a top-level folder ``<student>/`` holding
``<notebook>.ipynb``. Ids must match :data:`STUDENT_ID`.

Every entry is checked on its own (:mod:`tfcourse_instructor.grading.classroom.archive` reads the
zip within caps), and a refused entry costs only its student, with a line saying why: names with no
valid id, ``..`` or an absolute path; links and special files; nested archives; files that are not
the assignment's notebook; notebooks over :data:`MAX_NOTEBOOK_BYTES`, :data:`MAX_CELLS` cells or
:data:`MAX_OUTPUT_BYTES` of stored outputs; past :data:`MAX_TOTAL_BYTES` read from the whole
download. Of two or more files for one notebook of one student, the one with the latest timestamp in
the zip is kept (on a tie, the name that sorts last). A file that is not valid notebook JSON is
collected: the pre-flight checks report it. A student with a notebook collected has their folder
replaced by what the download holds; folders are made by the kit and files written without following
links.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from tfcourse_instructor.grading.classroom.archive import (
    entry_problem,
    looks_like_archive,
    open_zip,
    read_capped,
)
from tfcourse_instructor.grading.classroom.summary import Record
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission.issues import Issue

STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
"""A student id as the kit accepts it: a folder name, safe in a CSV cell and on a page."""
UNATTRIBUTED = "(unattributed)"
"""Who a problem belongs to when the entry's name gives no valid id (no id can be this)."""
MAX_NOTEBOOK_BYTES = 10 * 2**20
MAX_CELLS = 1_000
MAX_OUTPUT_BYTES = 8 * 2**20
"""Stored outputs of one notebook (the pre-flight checks clear them above 5 MiB)."""
MAX_TOTAL_BYTES = 4 * 2**30
"""Bytes read from one download, refused entries included."""
_HEAD = 512  # bytes enough to recognise an archive, tar's header included
_NOTEBOOK_NAMING = "<student>_<notebook>.ipynb, <student>_<anything>_<notebook>.ipynb"


@dataclass(frozen=True)
class Problem:
    """An entry of the download that was not collected, and why."""

    student: str
    """Whom it costs: the id its name gives, or :data:`UNATTRIBUTED`."""
    line: str

    def __str__(self) -> str:
        return f"{self.student}: {self.line}"


def collect_lms_zip(course: Course, archive: Path) -> list[Problem]:
    """File the notebooks of the LMS download ``archive`` under ``submitted/``; return what
    was refused. Raise :class:`~tfcourse_instructor.grading.classroom.archive.ArchiveRefused`,
    before anything is written, if the download as a whole cannot be read safely."""
    notebooks = course.notebook_names()
    problems: list[Problem] = []
    candidates: dict[str, dict[str, list[zipfile.ZipInfo]]] = defaultdict(lambda: defaultdict(list))
    with open_zip(archive) as bundle:
        for info in bundle.infolist():
            if info.is_dir():
                continue
            student, notebook, problem = _classify(info, notebooks)
            if problem:
                problems.append(Problem(student, f"{_shown(info.filename)}: {problem}"))
            else:
                candidates[student][notebook].append(info)
        budget = MAX_TOTAL_BYTES
        # One student at a time, written before the next is read: memory holds one student's.
        for student, entries in sorted(candidates.items()):
            files = {}
            for notebook, infos in sorted(entries.items()):
                kept, *others = sorted(infos, key=lambda i: (i.date_time, i.filename), reverse=True)
                problems += [
                    Problem(
                        student,
                        f"{_shown(other.filename)}: not collected: {_shown(kept.filename)} is "
                        f"the later file for {notebook} (latest timestamp in the zip, then last "
                        "name)",
                    )
                    for other in others
                ]
                data, problem = _read_notebook(bundle, kept, budget)
                budget -= len(data)
                if problem:
                    problems.append(Problem(student, f"{_shown(kept.filename)}: {problem}"))
                else:
                    files[notebook] = data
            if files and (problem := _store(course, student, files)):
                problems.append(Problem(student, problem))
    return sorted(problems, key=lambda problem: (problem.student, problem.line))


def with_intake_problems(
    records: Mapping[str, Record], problems: Sequence[Problem]
) -> dict[str, Record]:
    """``records`` with each attributed intake problem among its student's issues (a student
    with no record, every file refused, shows as not graded); ``records`` is not changed."""
    merged = {student: replace(r, issues=[*r.issues]) for student, r in records.items()}
    for problem in problems:
        if problem.student != UNATTRIBUTED:
            record = merged.setdefault(problem.student, Record("", graded=False))
            record.issues.append(Issue("", f"intake: {problem.line}"))
    return merged


def _classify(info: zipfile.ZipInfo, notebooks: Sequence[str]) -> tuple[str, str, str | None]:
    """Whom the entry ``info`` belongs to by its top-level name, which notebook it is, and
    why it is refused (None: it is a candidate)."""
    parts = info.filename.replace("\\", "/").split("/")
    if len(parts) == 1:
        student, separator, rest = parts[0].partition("_")
        if not separator:
            return UNATTRIBUTED, "", f"no student id in the name (expected {_NOTEBOOK_NAMING})"
    else:
        student, rest = parts[0], "/".join(parts[1:])
    if not STUDENT_ID.fullmatch(student):  # also "", "..", "C:": absolute or escaping paths
        return (
            UNATTRIBUTED,
            "",
            f"{_shown(student)} is not a valid student id (1 to 64 letters, digits, '.', '_', "
            "'-', starting with a letter or digit)",
        )
    if any(part in ("", ".", "..") for part in parts):
        return student, "", "a path with '..', '.' or an empty part"
    if problem := entry_problem(info):
        return student, "", problem
    stem = rest.removesuffix(".ipynb")
    for notebook in sorted(notebooks, key=len, reverse=True):
        named = stem == notebook or (len(parts) == 1 and stem.endswith(f"_{notebook}"))
        if rest.endswith(".ipynb") and named:
            return student, notebook, None
    return student, "", f"not the assignment's notebook ({', '.join(notebooks)}.ipynb)"


def _read_notebook(
    bundle: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int
) -> tuple[bytes, str | None]:
    """The entry's bytes (at most one more than its cap) and why it is refused, or None."""
    cap = max(0, min(MAX_NOTEBOOK_BYTES, budget))
    try:
        data = read_capped(bundle, info, cap)
    except Exception as error:  # a corrupt or hostile entry must cost only its student
        return b"", f"unreadable ({type(error).__name__}: {str(error)[:100]})"
    if len(data) > cap:
        if cap < MAX_NOTEBOOK_BYTES:
            return data, f"not read: the download's limit of {MAX_TOTAL_BYTES:,} bytes is reached"
        return data, f"over {MAX_NOTEBOOK_BYTES:,} bytes uncompressed"
    if looks_like_archive(data[:_HEAD]):
        return data, "a nested archive: archives inside the download are not opened"
    return data, _over_limits(data)


def _over_limits(data: bytes) -> str | None:
    """Which of the notebook limits ``data`` exceeds, or None (also for what is not
    notebook JSON: the pre-flight checks report that)."""
    try:
        notebook = json.loads(data)
        cells = notebook.get("cells") if isinstance(notebook, dict) else None
        if not isinstance(cells, list):
            return None
        if len(cells) > MAX_CELLS:
            return f"{len(cells):,} cells, over the limit of {MAX_CELLS:,}"
        outputs = sum(len(json.dumps(c.get("outputs", []))) for c in cells if isinstance(c, dict))
    except (ValueError, RecursionError):
        return None
    if outputs > MAX_OUTPUT_BYTES:
        return f"{outputs:,} bytes of stored outputs, over the limit of {MAX_OUTPUT_BYTES:,}"
    return None


def _store(course: Course, student: str, files: Mapping[str, bytes]) -> str | None:
    """Replace ``submitted/<student>/<assignment>/`` with ``files`` (notebook name -> bytes);
    return why that could not be done, or None."""
    home = course.submitted_dir / student
    staging = None
    try:
        course.submitted_dir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            home.mkdir()
        if not stat.S_ISDIR(home.lstat().st_mode):
            return f"not written: submitted/{student} is a link or not a folder"
        staging = Path(tempfile.mkdtemp(prefix=".intake-", dir=home))
        staging.chmod(0o755)
        for name, data in files.items():
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
            with os.fdopen(os.open(staging / f"{name}.ipynb", flags, 0o644), "wb") as handle:
                handle.write(data)
        target = home / course.assignment
        if target.is_symlink() or (target.exists() and not target.is_dir()):
            target.unlink()
        elif target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    except OSError as error:
        return f"not written ({type(error).__name__}: {error})"
    finally:
        if staging is not None and staging.exists():
            shutil.rmtree(staging)
    return None


def _shown(name: str) -> str:
    """``name`` quoted, control characters escaped, cut to a readable length."""
    return repr(name if len(name) <= 80 else f"{name[:77]}...")


def submitted_students(course: Course) -> list[str]:
    """Ids of the students with a submission of the assignment under ``submitted/``."""
    if not course.submitted_dir.is_dir():
        return []
    return sorted(
        folder.parent.name
        for folder in course.submitted_dir.glob(f"*/{course.assignment}")
        if folder.is_dir()
    )


def fingerprint(folder: Path, salt: str = "") -> str:
    """A digest of a submission's notebooks and timestamp (and of ``salt``): it changes
    when, and only when, something that affects the grade changed."""
    return _digest(sorted(folder.glob("*.ipynb")) + sorted(folder.glob("timestamp.txt")), salt)


def notebooks_digest(folder: Path) -> str:
    """A digest of a submission's notebooks alone: equal for two submissions that are graded
    alike (the time handed in counts only when the grades are merged)."""
    return _digest(sorted(folder.glob("*.ipynb")))


def _digest(paths: list[Path], salt: str = "") -> str:
    digest = hashlib.sha256(salt.encode())
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def grading_inputs_digest(course: Course) -> str:
    """A digest of what every grade depends on besides the submission: the source
    notebooks, the test files and the release."""
    digest = hashlib.sha256()
    for folder in (course.source_dir, course.release_dir):
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            if "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts:
                continue
            digest.update(str(path.relative_to(course.root)).encode() + path.read_bytes())
    return digest.hexdigest()
