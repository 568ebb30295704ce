"""The zygote starts each sandbox's fork server already imported, by entering the sandbox
(tfcourse.grading_kernel.zygote): what a submission's code finds there, from a graded cell of a
real grading run (launcher, bubblewrap, control group, zygote)."""

import json
import os
from pathlib import Path

import nbformat
import pytest

from tfcourse.grading_kernel import forkserver
from tfcourse_instructor.grading.classroom.merge import record_assignment
from tfcourse_instructor.grading.selftest.samples import reference_notebooks
from tfcourse_instructor.grading.submission import sandbox
from tfcourse_instructor.grading.submission.sandbox import zygote
from tfcourse_instructor.grading.submission.warm import WarmProcesses
from tfcourse_instructor.grading.submission.workspace import Limits, Workspace

from conftest import one_notebook_course

pytestmark = pytest.mark.slow

# What a graded cell prints is not shown back; what it raises is named to the grader.
PROBE = r"""
import json, os, subprocess, sys
def status(pid):
    lines = open(f"/proc/{pid}/status").read().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)
server = os.getppid()
held = []
for pid in (p for p in os.listdir("/proc") if p.isdigit()):
    try:
        held += [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        pass
home = os.path.dirname(__import__("matplotlib").get_cachedir())
open(os.path.join(home, "left-by-the-submission"), "w").write("x")
subprocess.Popen(["sleep", "600"], start_new_session=True)
me, parent = status("self"), status(server)
caps = ("CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb")
raise RuntimeError("PROBE" + json.dumps({
    "caps": sorted({me[key].strip() for key in caps} | {parent[key].strip() for key in caps}),
    "nnp": me["NoNewPrivs"].strip() + parent["NoNewPrivs"].strip(),
    "uid": me["Uid"].split()[0],
    "ns": len(me["NSpid"].split()),
    "pp": parent["PPid"].strip(),
    "bad": sum("pidfd" in t or "cgroup" in t or "/course/" in t for t in held),
    "zyg": sum(t in ZYGOTE for t in held),
    "host": os.path.exists(COURSE) or os.getcwd() == COURSE,
    "n": len(held),
    "ins": sum(m.startswith("tfcourse_instructor") for m in sys.modules),
    "dyn": "torch._dynamo" in sys.modules,
    "var": sorted(set(os.environ) - set(ALLOWED)),
}, separators=(",", ":")))
"""


SET_BY_IPYKERNEL = {
    "MPLBACKEND",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "FORCE_COLOR",
    "GIT_PAGER",
    "PAGER",
    "TERM",
}


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """A grading run of two submissions under one set of warm processes: a probe that looks
    around and leaves a process behind, then the reference notebook in a second workspace of
    another copy of the course (a command that grades several assignments gives each its own
    workspace and the same warm processes)."""
    if reason := sandbox.unavailable_reason():
        pytest.skip(reason)
    if not zygote.SUPPORTED:
        pytest.skip("no zygote on this system (Linux 5.8 or later)")
    root = tmp_path_factory.mktemp("zygote")
    course = one_notebook_course(root / "course")
    record_assignment(course)
    next_course = one_notebook_course(root / "next-course")
    record_assignment(next_course)
    reference = reference_notebooks(course)[course.assignment]
    probe = nbformat.from_dict(reference)
    allowed = sorted(
        {*sandbox.sandbox_environment(Path("/home")), *forkserver.KERNEL_VARIABLES, "PYTHONPATH"}
        | SET_BY_IPYKERNEL
    )
    probe.cells.append(nbformat.v4.new_code_cell(f"ALLOWED = {allowed!r}"))
    # Entered before bubblewrap had built the sandbox, the server would see the grader's files.
    probe.cells.append(nbformat.v4.new_code_cell(f"COURSE = {str(course.root)!r}"))
    with WarmProcesses(sandboxed=True) as warm:
        workspace = Workspace(course, root / "run", Limits(), warm)
        next_workspace = Workspace(next_course, root / "next-run", Limits(), warm)
        for opened in (workspace, next_workspace):
            opened.open()
            opened.prepare()
        try:
            assert warm.zygote is not None
            zygote_home = warm.zygote._home
            # What the zygote holds once it has imported (its sockets: the grader's socket
            # pair): none may reach a kernel.
            warm.zygote._wait_ready(zygote.READY_SECONDS, "the zygote did not start")
            held = Path(f"/proc/{warm.zygote._process.pid}/fd")
            zygote_sockets = sorted(
                target
                for target in (os.readlink(fd) for fd in held.iterdir())
                if target.startswith("socket:")
            )
            assert zygote_sockets
            probe.cells.append(nbformat.v4.new_code_cell(f"ZYGOTE = {zygote_sockets!r}\n{PROBE}"))
            graded = workspace.grade("alice", {course.assignment: probe})
            after = next_workspace.grade("bob", {next_course.assignment: reference})
            left = sorted(path.name for path in zygote_home.iterdir())
        finally:
            workspace.close()
            next_workspace.close()
    found = "\n".join(str(issue) for issue in graded.issues)
    assert "PROBE" in found, found
    report = json.loads(found[found.index("PROBE") + 5 :].splitlines()[0])
    return report, graded, after, left


def test_the_server_and_its_kernels_hold_no_capability_and_cannot_gain_one(probed):
    """Every capability set of the kernel and of its fork server is empty, both have
    ``no_new_privs``, and the kernel is the sandbox's user."""
    report = probed[0]
    assert report["caps"] == ["0000000000000000"]
    assert report["nnp"] == "11"
    assert report["uid"] == str(sandbox.bwrap.SANDBOX_UID)


def test_nothing_in_the_sandbox_can_name_the_zygote_or_its_child(probed):
    """The server's parent is outside the sandbox's PID namespace (shown as 0), and the
    kernel's /proc is the sandbox's own."""
    report = probed[0]
    assert report["pp"] == "0"
    assert report["ns"] == 1


def test_the_server_sees_the_sandbox_bubblewrap_built_not_the_graders_files(probed):
    """The zygote's child enters once bubblewrap has built the sandbox's file system (its
    placeholder runs): the course graded is not there."""
    assert probed[0]["host"] is False


def test_no_descriptor_of_the_grader_or_the_zygote_reaches_the_sandbox(probed):
    """The kernel (forked from the fork server, so holding whatever the server was left) and
    the other processes whose descriptors it may read (bubblewrap's placeholder) hold no
    pidfd, no control group's file, no file of the grader's course, no socket of the
    zygote's."""
    report = probed[0]
    assert report["n"] > 3, "the probe saw no descriptor"
    assert report["bad"] == 0
    assert report["zyg"] == 0


def test_the_server_starts_with_what_the_kernels_import_and_nothing_of_the_instructor(probed):
    """torch's lazily imported part is there already; no instructor module is; the
    environment is the sandbox's and the kernel's, and what ipykernel sets."""
    report = probed[0]
    assert report["dyn"]
    assert report["ins"] == 0
    assert report["var"] == []


def test_what_a_submission_writes_in_the_zygotes_folders_stays_in_its_sandbox(probed):
    """matplotlib's folder has the path of the zygote's private one; a submission writes in
    its sandbox's copy of it, never in the zygote's."""
    assert "left-by-the-submission" not in probed[3]


def test_a_process_left_running_is_named_and_the_next_workspaces_submission_is_graded(probed):
    """The probe's leftovers (a process, a file in its copy of the zygote's folder) reach
    nothing the warm processes serve next: another workspace's submission grades cleanly."""
    _, graded, after, _ = probed
    found = "\n".join(str(issue) for issue in graded.issues)
    assert "left 1 process(es) running" in found, found
    assert after.autograded is not None
    assert after.issues == [], after.issues


def test_the_zygote_starts_only_python_modules():
    with pytest.raises(ValueError, match="python -m MODULE"):
        zygote.Zygote.start(
            object.__new__(zygote.Zygote),
            -1,
            ["/bin/sh", "-c", "true"],
            [0, 1, 2],
            groups=[],
            uid=None,
            cwd=Path("/"),
            environment={},
            path=[],
        )
