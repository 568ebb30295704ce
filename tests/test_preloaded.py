"""nbgrader runs forked from the preloaded process behave as nbgrader started afresh: the
request's working folder, variables and memory cap, its output and exit status; a timeout or
the grader's death kills the run with what it started, and ends nothing else.

Each probe is a real nbgrader run whose ``nbgrader_config.py`` (nbgrader reads it from the
working folder) writes what the run sees to a file, then sleeps if asked to."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission import preloaded

from conftest import running, wait_until

pytestmark = pytest.mark.skipif(not preloaded.SUPPORTED, reason="Linux only")

PROBE = textwrap.dedent(
    """
    import json, os, resource, subprocess, sys, time
    child = subprocess.Popen(["sleep", "600"]) if os.environ.get("PROBE_SLEEP") else None
    # nbgrader reads its configuration more than once: what the run started with is kept.
    if not hasattr(sys, "probe_imported"):
        sys.probe_imported = [n for n in ("torch._dynamo", "tabnanny") if n in sys.modules]
    imported = sys.probe_imported
    for name in os.environ.get("PROBE_IMPORT", "").split():
        __import__(name)
    import torch
    seen = {{
        "imported": imported,
        "threads": torch.get_num_threads(),
        "cwd": os.getcwd(),
        "variable": os.environ.get("PROBE_VARIABLE"),
        "address_space": resource.getrlimit(resource.RLIMIT_AS)[0],
        "pid": os.getpid(),
        "session": os.getsid(0),
        "child": child.pid if child else None,
    }}
    with open({seen!r}, "w") as handle:
        json.dump(seen, handle)
    print("probe says hello", file=sys.stderr)
    if child:
        time.sleep(600)
    """
)


COMMAND = ("db", "student", "list")
"""A quick nbgrader command that reads the configuration."""


def probe_course(folder: Path) -> Path:
    folder.mkdir()
    (folder / "nbgrader_config.py").write_text(PROBE.format(seen=str(folder / "seen.json")))
    return folder


def seen(folder: Path) -> dict:
    return json.loads((folder / "seen.json").read_text())


@pytest.fixture
def server():
    started = preloaded.Preloaded()
    yield started
    started.close()


def test_a_run_sees_its_folder_variables_and_cap_as_a_fresh_nbgrader_does(server, tmp_path):
    forked, fresh = probe_course(tmp_path / "forked"), probe_course(tmp_path / "fresh")
    # One torch thread, where the preloaded process imported torch with one per core.
    env = {"PROBE_VARIABLE": "forty-two", "OMP_NUM_THREADS": "1"}
    ran = server.run(forked, *COMMAND, timeout=120, env=env, memory_mb=3000)
    reference = Course(fresh, "any").nbgrader(*COMMAND, timeout=120, env=env, memory_mb=3000)
    assert ran.stdout == reference.stdout and "There are 0 students" in ran.stdout
    assert "probe says hello" in ran.stderr
    own = ("cwd", "pid", "session", "imported")
    assert {k: v for k, v in seen(forked).items() if k not in own} == {
        k: v for k, v in seen(fresh).items() if k not in own
    }
    assert seen(forked)["cwd"] == str(forked)
    assert seen(forked)["address_space"] == 3000 << 20
    assert seen(forked)["variable"] == "forty-two"
    assert seen(forked)["threads"] == 1
    # A session of its own, as a fresh run has: a timeout stops it with what it started.
    assert seen(forked)["session"] == seen(forked)["pid"] != os.getsid(0)


def test_what_a_run_imported_of_torch_the_next_runs_start_with(server, tmp_path):
    """torch imports parts of itself on first use (torch._dynamo, about 1 s, when a check
    makes an optimiser): a run reports them, and the preloaded process imports them before
    it forks the next run. Nothing but torch's own modules is learned."""
    folder = probe_course(tmp_path / "course")
    env = {"PROBE_IMPORT": "torch._dynamo tabnanny"}
    server.run(folder, *COMMAND, timeout=120, env=env)
    assert seen(folder)["imported"] == []
    server.run(folder, *COMMAND, timeout=120, env=env)
    assert seen(folder)["imported"] == ["torch._dynamo"]


def test_a_failed_run_raises_with_its_output(server, tmp_path):
    folder = probe_course(tmp_path / "course")
    with pytest.raises(RuntimeError, match=r"`nbgrader autograde nothing` failed \(1\)") as error:
        server.run(folder, "autograde", "nothing", timeout=120)
    assert "No notebooks were matched" in str(error.value)
    assert "probe says hello" in str(error.value)


def test_a_run_over_its_time_is_killed_with_what_it_started(server, tmp_path):
    folder = probe_course(tmp_path / "course")
    server.run(folder, *COMMAND, timeout=120)  # imported: the next run's time is its own
    with pytest.raises(RuntimeError, match="ran over 6 s"):
        server.run(folder, *COMMAND, timeout=6, env={"PROBE_SLEEP": "1"})
    run = seen(folder)
    assert run["child"] is not None  # the run got as far as starting its child
    pids = (run["pid"], run["child"])
    wait_until(lambda: not any(map(running, pids)), 30, "the run and its child killed")
    # The preloaded process serves the next run.
    assert "There are 0 students" in server.run(folder, *COMMAND, timeout=120).stdout


def test_a_grader_killed_mid_run_leaves_no_process_behind(tmp_path):
    folder = probe_course(tmp_path / "course")
    grader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; "
            "from tfcourse_instructor.grading.submission.preloaded import Preloaded; "
            "Preloaded().run(Path(sys.argv[1]), *sys.argv[2:], timeout=600, "
            "env={'PROBE_SLEEP': '1'})",
            str(folder),
            *COMMAND,
        ]
    )
    wait_until(lambda: (folder / "seen.json").is_file(), 120, "the run started")
    server = next(p for p in psutil.Process(grader.pid).children() if "preloaded" in p.cmdline()[2])
    run = seen(folder)
    grader.send_signal(signal.SIGKILL)
    grader.wait()
    pids = (server.pid, run["pid"], run["child"])
    wait_until(lambda: not any(map(running, pids)), 30, "all of them gone")


def test_the_server_reaches_no_path_a_submission_could_name(server, tmp_path):
    """Its only connection is a socket pair inherited from the grader: it listens nowhere."""
    server.run(probe_course(tmp_path / "course"), *COMMAND, timeout=120)
    process = psutil.Process(server._process.pid)
    assert [c for c in process.net_connections(kind="unix") if c.laddr] == []


def test_runs_from_several_threads_each_get_their_own_request(server, tmp_path):
    folders = [probe_course(tmp_path / f"course{i}") for i in range(3)]
    with ThreadPoolExecutor(3) as pool:
        runs = [
            pool.submit(server.run, f, *COMMAND, timeout=300, env={"PROBE_VARIABLE": f.name})
            for f in folders
        ]
        assert all("There are 0 students" in run.result().stdout for run in runs)
    assert [seen(f)["variable"] for f in folders] == [f.name for f in folders]
    assert [seen(f)["cwd"] for f in folders] == [str(f) for f in folders]
