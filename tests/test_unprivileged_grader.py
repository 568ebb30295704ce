"""A grader who is not root (an instructor on a laptop) grades as root does. The sample class of
notebook 1 is graded by the kit's ``grade``, run as an unprivileged user: its sandboxes then run
as that user too, with limits per process and no control group (none is delegated to
``nobody``). Its grades, feedback and summary must be those of the root run (the ``samples``
run), and it must leave no process and no scratch folder behind. Two more students' submissions
are bombs, one forking, one asking its sandbox's fork server for kernel after kernel: without a
control group, the fork server must still hold each sandbox to ``--processes``, and refuse a
kernel it has no process for without ending.

The test starts the grader as the machine's ``nobody`` in a mount namespace of its own, where
the folders on the way to the interpreter, the venv and the kit that only root may enter (a
Python installed under ``/root``, say) are covered by empty folders that lead only there;
everything else is the machine as it is.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import nbformat
import psutil
import pytest

from tfcourse_instructor.grading.selftest import samples

from conftest import REPO, graded_results, one_notebook_course

pytestmark = pytest.mark.slow

ASSIGNMENT = "01_attention"
USER = pwd.getpwnam("nobody")
PROCESSES = 256
"""``grade``'s default ``--processes``: what one submission may run at once, its threads
included (``RLIMIT_NPROC`` counts both)."""
FORKS = 1000
"""Children the fork bomb starts if nothing stops it: well beyond :data:`PROCESSES`."""
KERNELS = 100
"""Kernels the server bomb asks for if nothing stops it: each runs several threads, so
together well beyond :data:`PROCESSES`."""
FORK_BOMB = f"""import os, signal, time
for _ in range({FORKS}):
    try:
        if os.fork() == 0:
            time.sleep(8)
            os.kill(os.getpid(), signal.SIGKILL)
    except OSError:
        break
time.sleep(8)
"""
SERVER_BOMB = f"""import os, socket, time
from tfcourse.grading_kernel import served
mounts = [line.split()[4] for line in open("/proc/self/mountinfo")]
server = next(m + "/fork.sock" for m in mounts if os.path.exists(m + "/fork.sock"))
request = {{"argv": ["--memory-mb", "2048"], "connection": "", "env": {{}}, "cwd": "/tmp"}}
null = os.open(os.devnull, os.O_RDWR)
kernels = []
for _ in range({KERNELS}):
    connection = socket.socket(socket.AF_UNIX)
    try:
        connection.connect(server)
        served.send_request(connection, request, [null] * 3)
        if not connection.recv(16):  # refused
            break
    except OSError:
        break
    kernels.append(connection)
time.sleep(8)
"""
BOMBS = {"fork-bomb": FORK_BOMB, "server-bomb": SERVER_BOMB}
"""Each is the reference submission with this cell after its last check."""


def entries(paths: Iterable[Path], stash: Path) -> list[str]:
    """Shell commands for root in a mount namespace of its own, after which any user can reach
    ``paths`` (folders others may enter): each folder on their way that others may not enter
    (outermost first) is covered by an empty one holding only the ways on, bound from where
    they were (through ``stash``)."""
    paths = sorted({path.resolve() for path in paths})
    for path in paths:
        assert path.stat().st_mode & stat.S_IXOTH, f"only its owner may enter {path}"
    closed = sorted(
        {
            folder
            for path in paths
            for folder in path.parents
            if not folder.stat().st_mode & stat.S_IXOTH
        },
        key=lambda folder: len(folder.parts),
    )
    commands = []
    for index, folder in enumerate(closed):
        ways = {path.relative_to(folder).parts[0] for path in paths if folder in path.parents}
        kept = {way: stash / f"{index}-{way}" for way in sorted(ways)}
        for way, place in kept.items():
            commands += [shlex.join(["mkdir", "-p", str(place)])]
            commands += [shlex.join(["mount", "--bind", str(folder / way), str(place)])]
        commands += [shlex.join(["mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(folder)])]
        for way, place in kept.items():
            commands += [shlex.join(["mkdir", str(folder / way)])]
            commands += [shlex.join(["mount", "--bind", str(place), str(folder / way)])]
    return commands


def user_processes() -> list[psutil.Process]:
    """The user's processes now (with their name and start time)."""
    return [
        process
        for process in psutil.process_iter(["name", "uids", "create_time"])
        if process.info["uids"] and process.info["uids"].real == USER.pw_uid
    ]


def tasks_by_sandbox() -> Counter[str]:
    """The user's processes and threads (what ``RLIMIT_NPROC`` counts) in each user namespace
    but the machine's: in each sandbox."""
    machine = os.readlink("/proc/self/ns/user")
    tasks: Counter[str] = Counter()
    for process in user_processes():
        with contextlib.suppress(psutil.Error, OSError):
            namespace = os.readlink(f"/proc/{process.pid}/ns/user")
            if namespace != machine:
                tasks[namespace] += process.num_threads()
    return tasks


class PeakCount(threading.Thread):
    """The most tasks each sandbox ran at once, while it runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peaks: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            for namespace, tasks in tasks_by_sandbox().items():
                self.peaks[namespace] = max(self.peaks[namespace], tasks)


def left_behind(since: float) -> list[str]:
    """The user's processes started since ``since``, and its scratch folders."""
    processes = [
        f"{process.pid} {process.info['name']}"
        for process in user_processes()
        if process.info["create_time"] >= since
    ]
    folders = [
        str(folder)
        for parent in (Path(tempfile.gettempdir()), Path("/dev/shm"))
        for folder in parent.glob("tfcourse-*")
        if folder.lstat().st_uid == USER.pw_uid
    ]
    return processes + folders


@pytest.fixture(scope="module")
def graded_unprivileged(tmp_path_factory):
    """The sample class of notebook 1 and the bombs graded by ``nobody``; the course, the
    command's output, what it left behind and the most tasks each sandbox ran at once."""
    if os.geteuid() != 0:
        pytest.skip("the suite runs as a user who is not root: every grading test takes that way")
    # Not under pytest's temporary folders: only their owner may enter them.
    folder = Path(tempfile.mkdtemp(prefix="unprivileged-grader-"))
    try:
        course = one_notebook_course(folder / "course", ASSIGNMENT)
        samples.write_samples(course)
        for student, cell in BOMBS.items():
            bomb = course.submitted_dir / student / ASSIGNMENT
            shutil.copytree(course.submitted_dir / "reference" / ASSIGNMENT, bomb)
            notebook = nbformat.read(bomb / f"{ASSIGNMENT}.ipynb", as_version=4)
            notebook.cells.append(nbformat.v4.new_code_cell(cell))
            nbformat.write(notebook, bomb / f"{ASSIGNMENT}.ipynb")
        (folder / "home").mkdir()
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, USER.pw_uid, USER.pw_gid)
        stash = tmp_path_factory.mktemp("stash")
        needed = (Path(sys.base_prefix), Path(sys.prefix), REPO)
        environment = {
            "HOME": str(folder / "home"),
            "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            **{
                name: os.environ[name]
                for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
                if name in os.environ
            },
        }
        command = ["setpriv", f"--reuid={USER.pw_uid}", f"--regid={USER.pw_gid}"]
        command += ["--clear-groups", "--inh-caps=-all", "env", "-i"]
        command += [f"{name}={value}" for name, value in environment.items()]
        command += [sys.executable, "-m", "tfcourse_instructor.grading"]
        command += ["grade", "--assignment", ASSIGNMENT]
        script = [*entries(needed, stash), f"cd {shlex.quote(str(course.root))}"]
        script += [f"exec {shlex.join(command)}"]
        since = time.time()
        counter = PeakCount()
        counter.start()
        result = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-ec", "\n".join(script)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        counter.stop.set()
        counter.join()
        assert result.returncode == 0, result.stdout + result.stderr
        deadline = time.monotonic() + 10  # a sandbox's last processes take moments to end
        while (left := left_behind(since)) and time.monotonic() < deadline:
            time.sleep(0.2)
        yield course, result.stdout, left, counter.peaks
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_an_unprivileged_grader_grades_as_root_does(graded_unprivileged, graded_samples):
    course, out, *_ = graded_unprivileged
    as_root = graded_samples[0][ASSIGNMENT]
    students = {sample.student_id for sample in samples.SAMPLES}
    assert graded_results(course, students) == graded_results(as_root, students)
    assert "the number of its processes (no control group)" in out


def test_bombs_are_held_to_the_process_limit_without_a_control_group(graded_unprivileged):
    """Each bomb's sandbox reaches the limit (the bombs ran) and none passes it; a kernel the
    server had no process for was refused, and the server went on serving: the bombs lose
    nothing (their cells come after the last check) and their kernels did not die."""
    course, _, _, peaks = graded_unprivileged
    highest = sorted(peaks.values(), reverse=True)
    assert highest[0] <= PROCESSES and highest[1] >= PROCESSES * 3 // 4, highest[:4]
    reference = graded_results(course, {"reference"})
    for bomb in BOMBS:
        results = graded_results(course, {bomb})
        assert results["grades"][bomb] == reference["grades"]["reference"]
        assert results["records"][bomb] == reference["records"]["reference"]  # the issues


def test_an_unprivileged_grader_leaves_nothing_behind(graded_unprivileged):
    _, _, left, _ = graded_unprivileged
    assert left == []
