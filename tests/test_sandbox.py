"""The sandbox a submission runs in, attacked from inside with a real bwrap and real control
groups: what it can see and write, the network, other processes, what outlives it, limits,
and the record of what it tried."""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import tfcourse
from tfcourse.grading_kernel import attempts
from tfcourse_instructor.grading.submission.folders import memory_folder
from tfcourse_instructor.grading.submission.sandbox import (
    Mounts,
    Sandbox,
    bwrap,
    resources,
    submission_mounts,
    unavailable_reason,
)
from tfcourse_instructor.grading.submission.sandbox.bwrap import GRADING_UID

from conftest import REPO, run_module, running

pytestmark = pytest.mark.skipif(
    unavailable_reason() is not None, reason=f"no sandbox here: {unavailable_reason()}"
)
HELPERS = Path(tfcourse.__file__).resolve().parent


def mounts(tmp_path: Path, tmp_mb: int = 64) -> Mounts:
    """The layout the grader gives a submission, around a scratch run folder."""
    run = tmp_path / "run"
    (run / "other-student").mkdir(parents=True)
    (run / "other-student" / "answers.ipynb").write_text("secret answers")
    (tmp_path / "sockets").mkdir()
    layout = submission_mounts((tmp_path / "sockets",), run / "work")
    return dataclasses.replace(layout, tmp_mb=tmp_mb)


def run_inside(
    sandbox: Sandbox, code: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    process = sandbox.popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def marked_processes(marker: str) -> list[int]:
    """Processes whose command line holds ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_it_sees_only_its_allowlist_and_keeps_nothing_it_writes(tmp_path, monkeypatch):
    secret = f"grader-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("TFCOURSE_GRADER_SECRET", secret)
    other_checkout = Path("/var/tmp") / f"tfcourse-checkout-{uuid.uuid4().hex[:8]}"
    (other_checkout / "source").mkdir(parents=True)
    layout = mounts(tmp_path)
    private = tmp_path / "sockets" / "grader-only.txt"
    private.write_text("the grader's")
    private.chmod(0o600)
    sandbox = Sandbox(layout, memory_mb=1024, processes=64)
    venv_file = Path(sys.prefix) / "tfcourse-sandbox-test.pth"
    secrets = [
        REPO / "source",
        REPO / "nbgrader_config.py",
        REPO / "helpers" / "tfcourse_instructor",
        tmp_path / "run" / "other-student",
        Path.home() / ".bashrc",
        other_checkout,
        Path("/etc/shadow"),
        Path("/etc/passwd"),
        Path("/var"),
        Path("/home"),
    ]
    try:
        result = run_inside(
            sandbox,
            f"""
            import os
            from pathlib import Path
            secrets = {[str(path) for path in secrets]!r}
            print("SEEN", [p for p in secrets if os.path.lexists(p)])
            print("VARIABLES", sorted(os.environ))
            print("SECRET", any({secret!r} in value for value in os.environ.values()))
            try:
                Path({str(private)!r}).read_text()
                print("READ THE GRADER'S FILE")
            except OSError as error:
                print("NOT READABLE", error.strerror)
            try:
                import tfcourse_instructor
                print("IMPORTED THE INSTRUCTOR PACKAGE")
            except ImportError:
                print("NO INSTRUCTOR PACKAGE")
            for target in ({str(venv_file)!r}, {str(HELPERS / "checking.py")!r}):
                try:
                    Path(target).write_text("import os")
                    print("WROTE", target)
                except OSError as error:
                    print("REFUSED", error.strerror)
            Path("note.txt").write_text("in the private folder")
            Path("/tmp/note.txt").write_text("in the private /tmp")
            Path({str(tmp_path / "sockets" / "shared.txt")!r}).write_text("shared")
            print("CWD", os.getcwd())
            """,
        )
        assert sandbox.close() == []
    finally:
        other_checkout.joinpath("source").rmdir()
        other_checkout.rmdir()
    assert result.returncode == 0, result.stderr
    assert "SEEN []" in result.stdout
    variables = ast.literal_eval(result.stdout.split("VARIABLES")[1].splitlines()[0])
    assert set(variables) <= {*dict(layout.environment), "PWD"}, variables
    assert "SECRET False" in result.stdout
    assert "NO INSTRUCTOR PACKAGE" in result.stdout
    assert "WROTE" not in result.stdout
    assert result.stdout.count("REFUSED Read-only file system") == 2
    assert not venv_file.exists()
    assert f"CWD {layout.workdir}" in result.stdout
    assert not (layout.workdir / "note.txt").exists()  # its folder vanished with it
    shared = tmp_path / "sockets" / "shared.txt"
    assert shared.read_text() == "shared"
    if os.geteuid() == 0:  # a root grader's sandbox is an unprivileged user outside too
        assert "NOT READABLE Permission denied" in result.stdout
        assert shared.stat().st_uid == GRADING_UID


def test_it_reaches_no_network_and_no_process_of_the_grader(tmp_path):
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    sandbox = Sandbox(mounts(tmp_path), memory_mb=1024, processes=64)
    result = run_inside(
        sandbox,
        f"""
        import os, socket
        try:
            socket.create_connection(("127.0.0.1", {port}), timeout=2).sendall(b"answers")
            print("CONNECTED")
        except OSError as error:
            print("NO NETWORK", error.strerror)
        try:
            os.kill({os.getpid()}, 9)
            print("KILLED")
        except ProcessLookupError:
            print("NO SUCH PROCESS")
        print("PROCESSES", sum(name.isdigit() for name in os.listdir("/proc")))
        """,
    )
    sandbox.close()
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()
    assert "NO NETWORK" in result.stdout and "NO SUCH PROCESS" in result.stdout, result.stderr
    assert int(result.stdout.split("PROCESSES")[1]) <= 3  # bwrap's init, python, and no more


def test_nothing_it_starts_outlives_it_and_the_survivors_are_named(tmp_path):
    marker = f"tfcourse-daemon-{uuid.uuid4().hex}"
    sandbox = Sandbox(mounts(tmp_path), memory_mb=1024, processes=64)
    code = f"""
        import os, subprocess, sys, time
        if os.fork() == 0:
            os.setsid()
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", {marker!r}],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            os._exit(0)
        os.wait()
        print("READY", flush=True)
        time.sleep(300)  # the first process lives on, as the fork server does while grading
        """
    process = sandbox.popen(
        [sys.executable, "-c", textwrap.dedent(code)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "READY"
    assert marked_processes(marker)  # the daemon runs while the sandbox does
    problems = sandbox.close()
    assert any("left 1 process(es) running" in problem for problem in problems), problems
    assert marked_processes(marker) == []


def test_tmp_is_private_and_capped(tmp_path):
    sandbox = Sandbox(mounts(tmp_path, tmp_mb=8), memory_mb=1024, processes=64)
    name = f"tfcourse-{uuid.uuid4().hex}"
    result = run_inside(
        sandbox,
        f"""
        try:
            with open("/tmp/{name}", "wb") as stream:
                stream.write(b"x" * 16 * 2**20)
            print("WROTE 16 MiB")
        except OSError as error:
            print("REFUSED", error.strerror)
        """,
    )
    sandbox.close()
    assert "REFUSED No space left on device" in result.stdout, result.stdout + result.stderr
    assert not Path("/tmp", name).exists()


def groups_available() -> bool:
    """Whether this process may create a control group (the one made to find out is removed)."""
    group = resources.create(64, 16)
    if group is not None:
        group.remove()
    return group is not None


needs_groups = pytest.mark.skipif(
    not groups_available(), reason="no control group can be created here"
)

# A grading process that dies before bubblewrap has said where its sandbox is: bubblewrap's
# first process then dies writing that (the pipe has no reader left), and the child it had
# made waits for good for the word to run (bubblewrap's --die-with-parent cannot help: its
# parent is gone). Killed at that moment, a grader leaves the same.
ABANDONS_A_SANDBOX = """
import json, os, subprocess, sys
from pathlib import Path
from tfcourse_instructor.grading.submission.sandbox import _PLACEHOLDER, Sandbox, submission_mounts
sandbox = Sandbox(submission_mounts((), Path(sys.argv[1])), 256, 32)
reading, writing = os.pipe()
os.close(reading)
subprocess.Popen(sandbox._command(_PLACEHOLDER, info_fd=writing), pass_fds=[writing],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
print(json.dumps({"group": [str(f) for f in sandbox.group.folders],
                  "stage": str(sandbox._stage) if sandbox._stage else None}), flush=True)
sys.stdin.read()  # then ends without closing the sandbox, as a killed grader does
"""


@needs_groups
def test_memory_is_limited_for_all_its_processes_together(tmp_path):
    sandbox = Sandbox(mounts(tmp_path), memory_mb=384, processes=64)
    result = run_inside(
        sandbox,
        """
        import os
        reading, writing = os.pipe()
        children = []
        for _ in range(3):  # each under any per-process limit, together over the group's
            pid = os.fork()
            if pid == 0:
                os.close(writing)
                block = bytearray(200 * 2**20)
                block[:: 4096] = b"x" * len(block[:: 4096])
                os.read(reading, 1)  # held until every child has its block, however slow
                os._exit(0)
            children.append(pid)
        os.close(writing)
        print("EXITS", [os.waitpid(pid, 0)[1] for pid in children])
        """,
    )
    problems = sandbox.close()
    assert any("memory limit of the whole submission" in p for p in problems), (
        problems,
        result.stdout,
    )


@needs_groups
def test_what_it_writes_in_the_folder_it_shares_counts_against_its_memory(tmp_path):
    """The shared folder is where the grader puts it (on the memory file system): many
    files, each under the size limit per file, stop at the submission's memory limit."""
    shared = memory_folder()
    if shared is None:
        pytest.skip("no memory file system (/dev/shm) here")
    try:
        (shared / "sockets").mkdir()
        layout = submission_mounts((shared / "sockets",), tmp_path / "work")
        sandbox = Sandbox(layout, memory_mb=256, processes=64)
        result = run_inside(
            sandbox,
            f"""
            for number in range(32):  # 1 GiB in files of 32 MiB
                with open(f"{shared / "sockets"}/{{number}}.bin", "wb") as stream:
                    stream.write(b"x" * 32 * 2**20)
            print("WROTE 1 GiB")
            """,
        )
        problems = sandbox.close()
        written = sum(path.stat().st_size for path in (shared / "sockets").iterdir())
        assert "WROTE" not in result.stdout
        assert written <= 256 * 2**20, written
        assert any("memory limit of the whole submission" in p for p in problems), problems
    finally:
        shutil.rmtree(shared)


@needs_groups
def test_a_fork_bomb_stops_at_the_process_limit(tmp_path):
    sandbox = Sandbox(mounts(tmp_path), memory_mb=1024, processes=24)
    result = run_inside(
        sandbox,
        """
        import os
        reading, writing = os.pipe()
        refused = 0
        for _ in range(200):
            try:
                if os.fork() == 0:
                    os.close(writing)
                    os.read(reading, 1)  # alive until the forking ends, however slow
                    os._exit(0)
            except OSError:
                refused += 1
        os.close(writing)
        print("REFUSED", refused)
        """,
    )
    problems = sandbox.close()
    assert int(result.stdout.split("REFUSED")[1]) > 150, result.stdout + result.stderr
    assert any("limit on processes" in p for p in problems), problems


def test_what_it_tried_is_recorded_for_the_grader(tmp_path):
    layout = mounts(tmp_path)
    log = tmp_path / "sockets" / attempts.LOG_NAME
    sandbox = Sandbox(layout, memory_mb=1024, processes=64)
    result = run_inside(
        sandbox,
        f"""
        import os, socket
        from pathlib import Path
        from tfcourse.grading_kernel import attempts
        attempts.install(Path({str(log)!r}), [Path.cwd(), Path("/tmp"), Path({str(log.parent)!r})])
        Path("mine.txt").write_text("allowed")
        for target in ("/usr/lib/tfcourse-test", "/etc/tfcourse-test"):
            try:
                open(target, "a").close()
            except OSError:
                pass
        try:
            socket.create_connection(("192.0.2.1", 80), timeout=1)
        except OSError:
            pass
        """,
    )
    sandbox.close()
    assert result.returncode == 0, result.stderr
    found = attempts.read(tmp_path / "sockets")
    assert len(found) == 2, found
    assert "tried to write outside its own folders (2 time(s)" in found[0]
    assert "/usr/lib/tfcourse-test" in found[0] and "mine.txt" not in found[0]
    assert "tried to reach the network (1 time(s): ('192.0.2.1', 80))" in found[1]


def test_the_record_of_attempts_is_read_from_a_regular_file_only(tmp_path):
    """A submission controls its shared folder: in the record's place a FIFO (which would
    block an open), a link to a file of the host, or a huge file."""
    host_file = tmp_path / "host.txt"
    host_file.write_text("write\t/etc/from-the-host\n")
    cases = {
        "fifo": lambda log: os.mkfifo(log),
        "link": lambda log: log.symlink_to(host_file),
        "huge": lambda log: log.write_bytes(b"network\t('a', 1)\n" * 2**22),
    }
    for name, plant in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        plant(folder / attempts.LOG_NAME)
        code = (
            "import sys; from pathlib import Path; from tfcourse.grading_kernel import attempts;"
            f"print(attempts.read(Path({str(folder)!r})))"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
        )
        expected = "[]" if name != "huge" else "tried to reach the network ("
        assert expected in result.stdout, (name, result.stdout)


def test_the_grader_reads_what_a_submission_sees(repo_course, monkeypatch):
    """``python -m tfcourse_instructor.grading sandbox`` lists the allowlist: nothing else of
    the host, no variable of the grader's, the user a root grader's sandbox runs as."""
    secret = f"grader-secret-{uuid.uuid4().hex}"
    monkeypatch.setenv("TFCOURSE_GRADER_SECRET", secret)
    result = run_module(repo_course, "tfcourse_instructor.grading", "sandbox")
    assert result.returncode == 0, result.stderr
    readable = [
        line.split()[1] for line in result.stdout.splitlines() if line.startswith("  read-only")
    ]
    assert readable and all(
        path in bwrap.SYSTEM_RUNTIME
        or Path(path) in {HELPERS, Path(sys.prefix)}
        or Path(path) in {Path(sys.base_prefix), Path(sys.base_prefix).resolve()}
        or Path(path) == Path(sys.prefix).resolve()
        for path in readable
    ), readable
    assert "TFCOURSE_GRADER_SECRET" not in result.stdout
    assert secret not in result.stdout
    if os.geteuid() == 0:
        assert f"uid {GRADING_UID} (the grader is root" in result.stdout


@needs_groups
def test_what_a_dead_grader_left_in_its_sandboxes_is_ended_by_the_next_grading_run(tmp_path):
    grader = subprocess.Popen(
        [sys.executable, "-c", ABANDONS_A_SANDBOX, str(tmp_path / "work")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    left = json.loads(grader.stdout.readline())
    folders = [Path(folder) for folder in left["group"]]
    group = resources.ResourceGroup(2 if len(folders) == 1 else 1, tuple(folders))
    try:
        # bubblewrap's first process ends at once; its child stays, the same second after second.
        stuck, seen, deadline = [], None, time.monotonic() + 10
        while not stuck and time.monotonic() < deadline:
            time.sleep(1)
            now = group._pids()
            stuck, seen = (now if now and now == seen else []), now
        assert stuck, f"no process stayed in the sandbox's group (last seen: {seen})"
        grader.communicate("", timeout=30)  # the grader is gone; what it made is not
        assert all(running(pid) for pid in stuck)
        # The next sandbox made on the machine ends it and removes its folders (another process
        # of the suite may be first: its removal is the same); a running grader's are left
        # alone: this one's.
        live = Sandbox(mounts(tmp_path), memory_mb=64, processes=16)
        try:
            assert live.group is not None
            assert all(folder.is_dir() for folder in live.group.folders)
            assert live._stage is None or live._stage.is_dir()
        finally:
            live.close()
        assert not any(running(pid) for pid in stuck)
        assert not any(folder.exists() for folder in folders)
        assert not left["stage"] or not Path(left["stage"]).exists()
    finally:
        group.remove()
