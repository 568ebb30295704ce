"""The scratch course a submission is graded in holds nothing of other students: their code
runs there and could print what it finds into their own feedback."""

import json
import os
import shutil
import subprocess

import nbformat
import pytest
from nbgrader.api import Gradebook

from tfcourse.grading_kernel import forkserver
from tfcourse_instructor.grading.classroom.merge import record_assignment
from tfcourse_instructor.grading.classroom.pipeline import grade_class
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.selftest.samples import reference_notebooks
from tfcourse_instructor.grading.submission import sandbox
from tfcourse_instructor.grading.submission import warm as warm_module
from tfcourse_instructor.grading.submission.folders import memory_folder, remove_abandoned_folders
from tfcourse_instructor.grading.submission.warm import WarmProcesses
from tfcourse_instructor.grading.submission.workspace import Limits, Workspace

from conftest import one_notebook_course, run_kit

pytestmark = pytest.mark.slow


def test_the_template_gradebook_knows_the_assignment_and_no_student(graded_samples, tmp_path):
    course = graded_samples[0]["01_attention"]
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        students = [student.id for student in gradebook.students]
    assert len(students) >= 8  # the class gradebook the template is copied from

    workspace = Workspace(course, tmp_path, Limits(), WarmProcesses(sandboxed=True))
    workspace.prepare()
    workspace.close()
    template = Course(tmp_path / "template", course.assignment)
    with Gradebook(f"sqlite:///{template.gradebook}") as gradebook:
        assert gradebook.students == []
        notebooks = [
            notebook.name for notebook in gradebook.find_assignment(course.assignment).notebooks
        ]
    assert sorted(notebooks) == sorted(course.notebook_names())
    # Ids that occur nowhere in the notebooks, so finding one means a student's rows.
    sources = "".join(path.read_text() for path in course.source_dir.glob("*.ipynb"))
    distinctive = [student for student in students if student not in sources]
    assert distinctive and all(s.encode() in course.gradebook.read_bytes() for s in distinctive)
    raw = template.gradebook.read_bytes()  # deleted rows must not linger in free pages
    assert not [student for student in distinctive if student.encode() in raw]


def test_the_trusted_grading_process_has_a_memory_cap_and_running_out_is_named(tmp_path):
    """The process that runs a submission's checks holds what its kernel sends back: it runs
    under an address-space cap, and a submission that exhausts it is not graded, by name."""
    course = one_notebook_course(tmp_path / "course")
    folder = course.submitted_dir / "alice" / course.assignment
    folder.mkdir(parents=True)
    shutil.copy(course.release_dir / "01_attention.ipynb", folder)

    result = run_kit(course, "grade", "--grader-memory-mb", "300")

    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.split("need attention:\n")[1]
    assert "`nbgrader autograde` ran out of its 300 MiB of memory" in summary, result.stdout
    assert any(line.split()[:1] == ["alice"] for line in summary.splitlines())


def test_grading_refuses_warm_processes_made_for_the_other_kind_of_run(tmp_path):
    """Unsandboxed warm processes start no zygote and make no font list: a sandboxed run
    given them would start each fork server without either."""
    course = one_notebook_course(tmp_path / "course")
    with pytest.raises(ValueError, match="sandboxed grading or not"):
        grade_class(course, [], sandboxed=True, warm=WarmProcesses(sandboxed=False))


def test_folders_of_killed_runs_are_removed_without_following_their_links(tmp_path):
    """A run that was killed leaves its folder on the memory file system; the next run removes
    the folders of runs whose process is gone, keeps those of live runs, and never follows a
    link a sandbox left there."""
    shm, outside = tmp_path / "shm", tmp_path / "host"
    shm.mkdir()
    outside.mkdir()
    (outside / "keep.txt").write_text("the host's")
    gone = subprocess.Popen(["true"])  # a process id that no longer runs
    gone.wait()
    dead = shm / f"tfcourse-{gone.pid}-abc"
    (dead / "sockets").mkdir(parents=True)
    (dead / "sockets" / "link").symlink_to(outside, target_is_directory=True)
    (dead / "sockets" / "file").write_bytes(b"x" * 100)
    alive = shm / f"tfcourse-{os.getpid()}-def"
    alive.mkdir()
    not_ours = shm / "tfcourse-notapid"
    not_ours.mkdir()

    assert remove_abandoned_folders(shm) == [dead]

    assert not dead.exists() and alive.is_dir() and not_ours.is_dir()
    assert (outside / "keep.txt").read_text() == "the host's"


def test_a_run_names_its_memory_folder_after_its_process(tmp_path):
    folder = memory_folder()
    if folder is None:
        pytest.skip("no memory file system at /dev/shm")
    try:
        assert folder.name.startswith(f"tfcourse-{os.getpid()}-")
    finally:
        folder.rmdir()


@pytest.mark.parametrize("zygote", [True, False], ids=["zygote", "fork server alone"])
def test_a_sandboxed_kernel_reads_the_font_list_the_grading_run_built(
    zygote, tmp_path, monkeypatch
):
    """Each sandbox's matplotlib reads the font list the grading run built once, handed in
    memory to the zygote, or (where Linux has no zygote) to each fork server through the
    launcher and bubblewrap, instead of scanning the system's fonts itself: a graded cell finds
    a font only that list names."""
    if reason := sandbox.unavailable_reason():
        pytest.skip(reason)
    if zygote and not sandbox.zygote.SUPPORTED:
        pytest.skip("no zygote on this system (Linux 5.8 or later)")
    monkeypatch.setattr(warm_module.zygote_process, "SUPPORTED", zygote)
    built = sandbox.font_list()
    listed = json.loads(built.content)
    listed["ttflist"][0]["name"] = "Only In The Given List"
    given = forkserver.FontList(built.name, json.dumps(listed).encode())
    monkeypatch.setattr(warm_module, "font_list", lambda: given)
    course = one_notebook_course(tmp_path / "course")
    record_assignment(course)
    notebook = reference_notebooks(course)[course.assignment]
    # What a graded cell prints is not shown back; what it raises is named to the grader.
    probe = (
        "from matplotlib.font_manager import fontManager\n"
        "raise RuntimeError(fontManager.ttflist[0].name)"
    )
    notebook.cells.append(nbformat.v4.new_code_cell(probe))
    with WarmProcesses(sandboxed=True) as warm:
        workspace = Workspace(course, tmp_path / "run", Limits(), warm)
        workspace.open()
        workspace.prepare()
        try:
            assert (warm.zygote is not None) == zygote
            graded = workspace.grade("alice", {course.assignment: notebook})
        finally:
            workspace.close()
    found = "\n".join(str(issue) for issue in graded.issues)
    assert "raised RuntimeError: Only In The Given List" in found, found
