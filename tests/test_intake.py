"""Intake from an LMS download: each notebook lands under submitted/<student>/, the student
being the one the download's top-level name gives; a hostile entry costs only its student."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from tfcourse_instructor.grading.classroom import archive, intake
from tfcourse_instructor.grading.classroom.archive import ArchiveRefused
from tfcourse_instructor.grading.classroom.intake import (
    MAX_CELLS,
    MAX_NOTEBOOK_BYTES,
    MAX_OUTPUT_BYTES,
    UNATTRIBUTED,
    Problem,
    collect_lms_zip,
    fingerprint,
    submitted_students,
    with_intake_problems,
)
from tfcourse_instructor.grading.classroom.scores import QuestionScore, write_csv
from tfcourse_instructor.grading.classroom.summary import Record, load_records
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission.issues import Issue

from conftest import REPO, one_notebook_course, run_kit

NOTEBOOK = "01_attention"
RELEASE = REPO / "release" / NOTEBOOK / f"{NOTEBOOK}.ipynb"


def notebook_of(student: str, cells: int | None = None) -> bytes:
    """The released notebook 1, marked as ``student``'s (every student's file differs), with
    its cells repeated up to ``cells`` if given."""
    notebook = json.loads(RELEASE.read_text(encoding="utf-8"))
    notebook["metadata"]["who"] = student
    if cells is not None:
        given = notebook["cells"]
        notebook["cells"] = [dict(given[i % len(given)], id=f"c{i}") for i in range(cells)]
    return json.dumps(notebook).encode()


def write_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data in entries:
            bundle.writestr(name, data)
    return path


def tree(root: Path) -> dict[str, bytes | str]:
    """Every file and link under ``root``: its bytes, or where the link points."""
    found: dict[str, bytes | str] = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = Path(folder, name)
            key = str(path.relative_to(root))
            found[key] = f"-> {os.readlink(path)}" if path.is_symlink() else path.read_bytes()
    return found


def submitted(course: Course, student: str, notebook: str = NOTEBOOK) -> bytes:
    return (course.submitted_dir / student / course.assignment / f"{notebook}.ipynb").read_bytes()


def lines_of(problems: list[Problem], student: str) -> list[str]:
    return [problem.line for problem in problems if problem.student == student]


@pytest.fixture
def course(tmp_path: Path) -> Course:
    """A scratch course with the committed notebooks' names (what intake reads of a course)
    and a victim whose submission is already filed."""
    scratch = Course(tmp_path / "course", NOTEBOOK)
    scratch.source_dir.mkdir(parents=True)
    (scratch.source_dir / f"{NOTEBOOK}.ipynb").touch()
    folder = scratch.submitted_dir / "victim" / scratch.assignment
    folder.mkdir(parents=True)
    (folder / f"{NOTEBOOK}.ipynb").write_bytes(notebook_of("victim"))
    return scratch


@pytest.mark.slow
def test_an_lms_zip_lands_in_submitted(released_course, tmp_path):
    course = Course(tmp_path / "course", NOTEBOOK)
    shutil.copytree(released_course.root, course.root)
    notebook = (course.release_dir / "01_attention.ipynb").read_bytes()
    archive = tmp_path / "download.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("jdoe_12345_67890_01_attention.ipynb", notebook)  # Canvas style
        bundle.writestr("asmith_01_attention.ipynb", notebook)
        bundle.writestr("asmith_notes.txt", "not a notebook")

    problems = collect_lms_zip(course, archive)

    assert submitted_students(course) == ["asmith", "jdoe"]
    for student in ("asmith", "jdoe"):
        folder = course.submitted_dir / student / course.assignment
        assert (folder / "01_attention.ipynb").read_bytes() == notebook
        assert not (folder / "asmith_notes.txt").exists()
    assert [p.student for p in problems] == ["asmith"]
    assert "'asmith_notes.txt': not the assignment's notebook" in problems[0].line


def test_both_namings_collect_every_notebook_and_replace_an_earlier_submission(course, tmp_path):
    names = course.notebook_names()
    old = course.submitted_dir / "folder" / course.assignment / "stale.ipynb"
    old.parent.mkdir(parents=True)
    old.write_text("{}")
    entries = [(f"folder/{name}.ipynb", notebook_of(f"folder {name}")) for name in names]
    entries += [(f"canvas_12_34_{name}.ipynb", notebook_of(f"canvas {name}")) for name in names]

    problems = collect_lms_zip(course, write_zip(tmp_path / "download.zip", entries))

    assert problems == []
    assert submitted_students(course) == ["canvas", "folder", "victim"]
    for student in ("canvas", "folder"):
        folder = course.submitted_dir / student / course.assignment
        assert sorted(p.name for p in folder.iterdir()) == [f"{n}.ipynb" for n in names]
        for name in names:
            assert submitted(course, student, name) == notebook_of(f"{student} {name}")
    assert submitted(course, "victim") == notebook_of("victim")


def test_a_nested_archive_cannot_file_under_another_student(course, tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as bundle:
        bundle.writestr(f"victim_{NOTEBOOK}.ipynb", notebook_of("mallory"))
        bundle.writestr(f"victim/{NOTEBOOK}.ipynb", notebook_of("mallory"))
    before = tree(course.submitted_dir / "victim")
    entries = [
        (f"mallory_{NOTEBOOK}.zip", inner.getvalue()),  # an archive by its name
        (f"eve_{NOTEBOOK}.ipynb", inner.getvalue()),  # ... and by its first bytes
        (f"honest_{NOTEBOOK}.ipynb", notebook_of("honest")),
    ]

    problems = collect_lms_zip(course, write_zip(tmp_path / "download.zip", entries))

    assert tree(course.submitted_dir / "victim") == before
    assert submitted(course, "honest") == notebook_of("honest")
    assert submitted_students(course) == ["honest", "victim"]
    refused = lines_of(problems, "mallory") + lines_of(problems, "eve")
    assert len(refused) == 2 and all("nested archive" in line for line in refused)
    assert {p.student for p in problems} == {"mallory", "eve"}


def test_dotdot_and_absolute_entries_are_refused(course, tmp_path):
    outside = tmp_path / "outside"
    before = tree(tmp_path)
    entries = [
        (f"../escape_{NOTEBOOK}.ipynb", notebook_of("escape")),
        (f"{outside}/abs_{NOTEBOOK}.ipynb", notebook_of("abs")),
        (f"..\\..\\win_{NOTEBOOK}.ipynb", notebook_of("win")),
        (f"mallory/../victim/{NOTEBOOK}.ipynb", notebook_of("mallory")),
        ("mallory/../../nbgrader_config.py", b"c = 1"),
        (f"honest/{NOTEBOOK}.ipynb", notebook_of("honest")),
    ]
    with zipfile.ZipFile(tmp_path / "download.zip", "w") as bundle:
        for name, data in entries:  # writestr would strip the leading "/"
            info = zipfile.ZipInfo(name)
            info.filename = name
            bundle.writestr(info, data)

    problems = collect_lms_zip(course, tmp_path / "download.zip")

    after = tree(tmp_path)
    added = {key for key in after if key not in before}
    expected_added = {f"course/submitted/honest/{NOTEBOOK}/{NOTEBOOK}.ipynb", "download.zip"}
    assert added == expected_added
    assert all(after[key] == value for key, value in before.items())
    assert submitted(course, "honest") == notebook_of("honest")
    assert len(lines_of(problems, UNATTRIBUTED)) == 3
    assert all("not a valid student id" in line for line in lines_of(problems, UNATTRIBUTED))
    assert len(lines_of(problems, "mallory")) == 2
    assert all("'..'" in line for line in lines_of(problems, "mallory"))


def test_a_link_entry_is_refused_and_no_link_is_followed(course, tmp_path):
    link = zipfile.ZipInfo(f"mallory_{NOTEBOOK}.ipynb")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    # A student folder that is a link (made by anything but intake) is not written through.
    (course.submitted_dir / "trudy").symlink_to(course.submitted_dir / "victim")
    before = tree(course.submitted_dir)
    entries = [
        (link, f"../../victim/{NOTEBOOK}/{NOTEBOOK}.ipynb".encode()),
        (f"trudy_{NOTEBOOK}.ipynb", notebook_of("trudy")),
        (f"honest_{NOTEBOOK}.ipynb", notebook_of("honest")),
    ]

    problems = collect_lms_zip(course, write_zip(tmp_path / "download.zip", entries))

    after = tree(course.submitted_dir)
    assert {k: v for k, v in after.items() if not k.startswith("honest/")} == before
    assert submitted(course, "honest") == notebook_of("honest")
    assert not (course.submitted_dir / "mallory").exists()
    assert [line.split(": ", 1)[1] for line in lines_of(problems, "mallory")] == ["a link"]
    assert lines_of(problems, "trudy") == ["not written: submitted/trudy is a link or not a folder"]


def test_ids_that_are_html_or_formulas_are_refused(course, tmp_path):
    hostile = [
        "<img src=x onerror=alert(1)>",
        '=HYPERLINK("evil.example","grades")',
        "@SUM(1+1)*cmd|' -C calc'!A0",
        "-2+3",
        "",
    ]
    entries = [(f"{student}_{NOTEBOOK}.ipynb", notebook_of(student)) for student in hostile]
    entries += [(f"{student}/{NOTEBOOK}.ipynb", notebook_of(student)) for student in hostile[:3]]
    entries.append((f"honest_{NOTEBOOK}.ipynb", notebook_of("honest")))

    problems = collect_lms_zip(course, write_zip(tmp_path / "download.zip", entries))

    assert submitted_students(course) == ["honest", "victim"]
    assert sorted(p.name for p in course.submitted_dir.iterdir()) == ["honest", "victim"]
    assert submitted(course, "victim") == notebook_of("victim")
    assert submitted(course, "honest") == notebook_of("honest")
    assert {p.student for p in problems} == {UNATTRIBUTED}
    for student in hostile:
        assert any(f"{student!r} is not a valid student id" in p.line for p in problems)
    assert len(problems) == len(entries) - 1


def test_every_csv_cell_that_reads_as_a_formula_is_inert(tmp_path):
    hostile = ['=HYPERLINK("http://evil.example")', "+1+cmd", "-2+3", "@SUM(A1)", "\t=1"]
    scores = [QuestionScore(text, text, text, -1.5, 2.0, True) for text in hostile] + [
        QuestionScore("honest", NOTEBOOK, "q1", -0.25, 1e6, False)
    ]
    write_csv(scores, tmp_path / "scores.csv")

    with (tmp_path / "scores.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    for text, row in zip(hostile, rows[:-1], strict=True):
        assert row == [f"'{text}"] * 3 + ["-1.5", "2", "True"]
    assert rows[-1] == ["honest", NOTEBOOK, "q1", f"{-0.25:g}", f"{1e6:g}", "False"]


def write_bomb(path: Path, student: str, megabytes: int) -> None:
    """A zip holding ``student``'s notebook 1 as ``megabytes`` MiB of zeros (written in
    chunks: the test does not hold the bomb in memory either) and an honest student's."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        info = zipfile.ZipInfo(f"{student}_{NOTEBOOK}.ipynb")
        info.compress_type = zipfile.ZIP_DEFLATED
        with bundle.open(info, "w") as entry:
            for _ in range(megabytes):
                entry.write(bytes(2**20))
        bundle.writestr(f"honest_{NOTEBOOK}.ipynb", notebook_of("honest"))


MEASURE = """
import json, resource, sys
from pathlib import Path
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.classroom.intake import collect_lms_zip
course = Course(Path(sys.argv[1]), sys.argv[3])
course.notebook_names()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
problems = collect_lms_zip(course, Path(sys.argv[2]))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"kib": after - before, "problems": [[p.student, p.line] for p in problems]}))
"""


def test_a_zip_bomb_is_refused_in_bounded_memory(course, tmp_path):
    bomb_mib = 200
    write_bomb(tmp_path / "download.zip", "bomber", bomb_mib)
    assert (tmp_path / "download.zip").stat().st_size < bomb_mib * 2**20 / 100
    before = tree(course.submitted_dir / "victim")

    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(course.root), str(tmp_path / "download.zip"), NOTEBOOK],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    seconds = time.monotonic() - start
    measured = json.loads(result.stdout)

    # Reading the entry whole would take the bomb's 200 MiB; capped, a few notebooks' worth.
    assert measured["kib"] * 1024 < 4 * MAX_NOTEBOOK_BYTES < bomb_mib * 2**20
    assert seconds < 30
    assert measured["problems"] == [
        ["bomber", f"'bomber_{NOTEBOOK}.ipynb': over {MAX_NOTEBOOK_BYTES:,} bytes uncompressed"]
    ]
    assert submitted_students(course) == ["honest", "victim"]
    assert submitted(course, "honest") == notebook_of("honest")
    assert tree(course.submitted_dir / "victim") == before


def test_the_download_as_a_whole_is_capped(course, tmp_path, monkeypatch):
    entries = [(f"s{i}_{NOTEBOOK}.ipynb", notebook_of(f"s{i}")) for i in range(4)]
    download = write_zip(tmp_path / "download.zip", entries)
    before = tree(course.root)

    monkeypatch.setattr(archive, "MAX_ENTRIES", len(entries) - 1)
    with pytest.raises(ArchiveRefused, match=f"more than {len(entries) - 1:,} entries"):
        collect_lms_zip(course, download)
    monkeypatch.undo()
    monkeypatch.setattr(archive, "MAX_DIRECTORY_BYTES", 100)
    with pytest.raises(ArchiveRefused, match="list of entries takes"):
        collect_lms_zip(course, download)
    (tmp_path / "not.zip").write_bytes(notebook_of("x"))
    with pytest.raises(ArchiveRefused, match="not a zip file"):
        collect_lms_zip(course, tmp_path / "not.zip")
    assert tree(course.root) == before

    # Bytes read across the download: students past the total lose their notebook, not more.
    monkeypatch.undo()
    sizes = [len(data) for _, data in entries]
    monkeypatch.setattr(intake, "MAX_TOTAL_BYTES", sum(sizes[:2]) + sizes[2] // 2)
    problems = collect_lms_zip(course, download)
    assert submitted_students(course) == ["s0", "s1", "victim"]
    assert [p.student for p in problems] == ["s2", "s3"]
    assert all("the download's limit" in p.line for p in problems)


def test_two_files_for_one_notebook_keep_the_latest(course, tmp_path):
    older, newer = (2024, 5, 1, 10, 0, 0), (2024, 5, 1, 11, 0, 0)
    files = {  # name -> (timestamp, content)
        f"dup_999_{NOTEBOOK}.ipynb": (older, notebook_of("dup first")),  # sorts last, older
        f"dup_111_{NOTEBOOK}.ipynb": (newer, notebook_of("dup second")),
        f"dup/{NOTEBOOK}.ipynb": (older, notebook_of("dup third")),
        f"tie_a_{NOTEBOOK}.ipynb": (older, notebook_of("tie first")),
        f"tie_b_{NOTEBOOK}.ipynb": (older, notebook_of("tie second")),
    }
    entries = [(zipfile.ZipInfo(name, when), data) for name, (when, data) in files.items()]
    entries.append((f"honest_{NOTEBOOK}.ipynb", notebook_of("honest")))

    problems = collect_lms_zip(course, write_zip(tmp_path / "download.zip", entries))

    for student in ("dup", "tie"):
        own = {name: kept for name, kept in files.items() if name.startswith(student)}
        latest = max(own, key=lambda name: (own[name][0], name))
        assert submitted(course, student) == own[latest][1]
        lines = lines_of(problems, student)
        assert len(lines) == len(own) - 1
        assert all(f"{latest!r} is the later file" in line for line in lines)
    assert submitted(course, "honest") == notebook_of("honest")
    assert submitted(course, "victim") == notebook_of("victim")


def test_notebooks_over_the_limits_are_refused_and_bad_json_is_not(course, tmp_path):
    big = json.loads(notebook_of("big"))
    big["cells"][0]["source"] = "x" * MAX_NOTEBOOK_BYTES
    chatty = json.loads(notebook_of("chatty"))
    code = next(cell for cell in chatty["cells"] if cell["cell_type"] == "code")
    code["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "y" * MAX_OUTPUT_BYTES}]
    entries = [
        (f"big_{NOTEBOOK}.ipynb", json.dumps(big).encode()),
        (f"many_{NOTEBOOK}.ipynb", notebook_of("many", cells=MAX_CELLS + 1)),
        (f"chatty_{NOTEBOOK}.ipynb", json.dumps(chatty).encode()),
        (f"fine_{NOTEBOOK}.ipynb", notebook_of("fine", cells=MAX_CELLS)),
        (f"garbled_{NOTEBOOK}.ipynb", b'{"cells": [ not json'),
        (f"honest_{NOTEBOOK}.ipynb", notebook_of("honest")),
    ]
    # A refused student's earlier submission stays as it was.
    earlier = course.submitted_dir / "big" / course.assignment / f"{NOTEBOOK}.ipynb"
    earlier.parent.mkdir(parents=True)
    earlier.write_bytes(notebook_of("big, earlier"))

    problems = collect_lms_zip(course, write_zip(tmp_path / "download.zip", entries))

    assert [p.student for p in problems] == ["big", "chatty", "many"]
    assert f"over {MAX_NOTEBOOK_BYTES:,} bytes" in lines_of(problems, "big")[0]
    assert f"{MAX_CELLS + 1:,} cells, over the limit" in lines_of(problems, "many")[0]
    outputs = sum(len(json.dumps(cell.get("outputs", []))) for cell in chatty["cells"])
    assert f"{outputs:,} bytes of stored outputs, over" in lines_of(problems, "chatty")[0]
    assert submitted_students(course) == ["big", "fine", "garbled", "honest", "victim"]
    assert submitted(course, "big") == notebook_of("big, earlier")
    for name, data in entries[3:]:
        assert submitted(course, name.split("_")[0]) == data


def test_a_fingerprint_changes_only_with_the_notebooks(tmp_path):
    (tmp_path / "01_attention.ipynb").write_text("{}")
    (tmp_path / "scratch.txt").write_text("ignored")
    first = fingerprint(tmp_path)
    (tmp_path / "scratch.txt").write_text("still ignored")
    assert fingerprint(tmp_path) == first
    (tmp_path / "01_attention.ipynb").write_text('{"changed": true}')
    assert fingerprint(tmp_path) != first
    assert fingerprint(tmp_path, "other limits") != fingerprint(tmp_path)


def test_intake_problems_join_the_summary_records():
    records = {"alice": Record("f", True), "bob": Record("g", True, [Issue("nb", "slow")])}
    problems = [
        Problem("bob", "'bob_x.zip': a nested archive"),
        Problem("carol", "'carol_nb.ipynb': a link"),
        Problem(UNATTRIBUTED, "'../x': not a valid student id"),
    ]

    merged = with_intake_problems(records, problems)

    assert records["bob"].issues == [Issue("nb", "slow")]
    assert merged["alice"] == records["alice"]
    assert merged["bob"].issues == [Issue("nb", "slow"), Issue("", f"intake: {problems[0].line}")]
    assert merged["carol"] == Record("", False, [Issue("", f"intake: {problems[1].line}")])
    assert UNATTRIBUTED not in merged


@pytest.mark.slow
def test_grade_with_a_hostile_download_grades_the_honest(tmp_path):
    """`grade --zip` on a download mixing honest and hostile entries completes: the honest
    are graded, each refused file is named in the summary, the victim keeps their own file."""
    course = one_notebook_course(tmp_path / "course")
    release = (course.release_dir / f"{NOTEBOOK}.ipynb").read_bytes()
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as bundle:
        bundle.writestr(f"victim_{NOTEBOOK}.ipynb", b"{}")
    download = tmp_path / "download.zip"
    write_bomb(download, "bomber", 50)
    with zipfile.ZipFile(download, "a") as bundle:
        bundle.writestr(f"victim_{NOTEBOOK}.ipynb", release)
        bundle.writestr(f"mallory_{NOTEBOOK}.ipynb", inner.getvalue())
        bundle.writestr(f"../escape_{NOTEBOOK}.ipynb", release)

    result = run_kit(course, "grade", "--zip", str(download))

    assert result.returncode == 0, result.stdout + result.stderr
    assert submitted_students(course) == ["honest", "victim"]
    assert submitted(course, "victim") == release
    graded = load_records(course)
    assert sorted(graded) == ["honest", "victim"] and all(r.graded for r in graded.values())
    summary = result.stdout.split("need attention:\n")[1].splitlines()
    refused = collect_lms_zip(one_notebook_copy(course, tmp_path / "again"), download)
    expected = [
        (UNATTRIBUTED, "'..' is not a valid student id"),
        ("bomber", f"over {MAX_NOTEBOOK_BYTES:,} bytes uncompressed"),
        ("mallory", "a nested archive"),
    ]
    assert len(refused) == len(expected)
    for problem, (student, phrase) in zip(refused, expected, strict=True):
        assert problem.student == student and phrase in problem.line
    for problem in refused:
        shown = f"{problem.student}  intake: {problem.line}"
        if problem.student == UNATTRIBUTED:
            shown = f"{problem.student}: {problem.line}"
        assert any(line.split() == shown.split() for line in summary), shown
    for student in ("bomber", "mallory"):
        assert any(line.split() == [student, "NOT", "GRADED"] for line in summary)


def one_notebook_copy(course: Course, root: Path) -> Course:
    """An empty course with ``course``'s notebooks: where to collect a download again."""
    copy = Course(root, course.assignment)
    copy.source_dir.mkdir(parents=True)
    for path in course.source_dir.glob("*.ipynb"):
        shutil.copy(path, copy.source_dir / path.name)
    return copy
