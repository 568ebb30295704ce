"""Grading kernels forked from the fork server behave as kernels started from scratch: the
client's working directory, kernel variables and limits, interrupts that reach them, and no
kernel outliving a killed client (real jupyter_client, real ipykernel). The client, which runs
outside the sandbox, sends no other variable of the grader's, signals no process a server
names, talks to no server of another user, and never connects to a name the sandbox could
have replaced."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyter_client import KernelManager

from tfcourse.grading_kernel import forkserver, served
from tfcourse.grading_kernel.kernel import FILE_LIMIT_MB
from tfcourse_instructor.grading.submission.sandbox import font_list

from conftest import running

MEMORY_MB = 2500


def kernel_spec(
    folder: Path, socket_path: Path, kernel_sockets: Path | None = None, server_wait: float = 0
) -> Path:
    """A Jupyter path whose ``python3`` kernel starts through ``socket_path`` (binding its
    sockets in ``kernel_sockets`` if given, waiting ``server_wait`` seconds for the server)."""
    spec = folder / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [
        *(sys.executable, "-m", "tfcourse.grading_kernel.kernel"),
        *("--fork-server", str(socket_path), "--server-wait", str(server_wait)),
        *(("--kernel-sockets", str(kernel_sockets)) if kernel_sockets else ()),
        *("--memory-mb", str(MEMORY_MB), "-f", "{connection_file}"),
    ]
    kernel = {"argv": argv, "display_name": "grading", "language": "python"}
    (spec / "kernel.json").write_text(json.dumps(kernel))
    return folder / "jupyter"


@pytest.fixture
def server(tmp_path) -> Iterator[forkserver.ForkServer]:
    if not forkserver.SUPPORTED:
        pytest.skip("the fork server runs on Linux only")
    running = forkserver.ForkServer(tmp_path / "kernels.sock")
    assert running.wait_ready()
    yield running
    os.kill(running.pid, signal.SIGTERM)  # the server kills the kernels it forked
    os.waitpid(running.pid, 0)


def start(jupyter: Path, cwd: Path, monkeypatch, **manager_options) -> KernelManager:
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter))
    monkeypatch.setenv("FORKSERVER_TEST", "the grader's")
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    manager = KernelManager(kernel_name="python3", **manager_options)
    manager.start_kernel(cwd=str(cwd))
    return manager


def run(manager: KernelManager, code: str, timeout: float = 60) -> dict:
    """Execute ``code``; return its reply content and what it printed."""
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        printed: list[str] = []

        def collect(message: dict) -> None:
            if message["msg_type"] == "stream":
                printed.append(message["content"]["text"])
            elif message["msg_type"] == "error":
                printed.append(message["content"]["ename"])

        reply = client.execute_interactive(code, timeout=timeout, output_hook=collect)
        return {"status": reply["content"]["status"], "printed": "".join(printed)}
    finally:
        client.stop_channels()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


CODE = (
    "import os, resource, sys\n"
    "print(os.getppid(), os.getcwd(), os.environ.get('FORKSERVER_TEST', 'absent'),"
    " os.environ['NBGRADER_EXECUTION'],"
    " resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20,"
    " resource.getrlimit(resource.RLIMIT_FSIZE)[1] // 2**20, 'torch' in sys.modules, os.getpid())"
)


def test_the_server_runs_no_python_thread_when_it_forks():
    """A fork copies only the forking thread, so a lock another thread held stays locked in
    the kernel: importing what the server preloads (:func:`~tfcourse.grading_kernel.forkserver.
    preload`, the first thing :func:`serve` does) starts no thread of Python's. (numpy's
    OpenBLAS starts idle workers, which it shuts down at a fork.)"""
    script = (
        "import threading\n"
        "from tfcourse.grading_kernel.forkserver import preload\n"
        "preload()\n"
        "print(threading.active_count())\n"
    )
    found = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    assert found.stdout.split() == ["1"]


def test_a_forked_kernel_has_the_clients_directory_environment_and_limits(
    server, tmp_path, monkeypatch
):
    jupyter = kernel_spec(tmp_path, server.socket_path)
    manager = start(jupyter, tmp_path, monkeypatch)
    try:
        printed = run(manager, CODE)["printed"].split()
        parent, cwd, grader, nbgrader, megabytes, file_megabytes, preloaded, pid = printed
        assert int(pid) != manager.provisioner.pid  # forked by the server, not started here
        assert int(parent) == server.pid
        assert (cwd, grader, nbgrader) == (str(tmp_path), "absent", "autograde")
        assert (int(megabytes), preloaded) == (MEMORY_MB, "True")
        assert int(file_megabytes) == FILE_LIMIT_MB
    finally:
        manager.shutdown_kernel(now=True)


def test_the_kernels_matplotlib_reads_the_font_list_the_grader_gave(tmp_path, monkeypatch):
    """The server caches the font list it is given (in memory, on its standard input) where
    matplotlib reads it, rather than scanning the system's fonts again: a kernel it forks
    knows a font only that list names."""
    if not forkserver.SUPPORTED:
        pytest.skip("the fork server runs on Linux only")
    fonts = font_list()
    listed = json.loads(fonts.content)
    listed["ttflist"][0]["name"] = "Only In The Given List"
    given = forkserver.FontList(fonts.name, json.dumps(listed).encode())
    # A cache folder of the test's own: the server writes the list there.
    environment = {**os.environ, "MPLCONFIGDIR": str(tmp_path / "matplotlib")}
    popen = functools.partial(subprocess.Popen, env=environment)
    running = forkserver.ForkServer(tmp_path / "kernels.sock", popen=popen, font_list=given)
    assert running.wait_ready(timeout=120)
    manager = start(kernel_spec(tmp_path, running.socket_path), tmp_path, monkeypatch)
    try:
        code = "from matplotlib.font_manager import fontManager\nprint(fontManager.ttflist[0].name)"
        assert run(manager, code)["printed"] == "Only In The Given List\n"
    finally:
        manager.shutdown_kernel(now=True)
        os.kill(running.pid, signal.SIGTERM)
        os.waitpid(running.pid, 0)


def test_an_interrupt_reaches_the_forked_kernel(server, tmp_path, monkeypatch):
    manager = start(kernel_spec(tmp_path, server.socket_path), tmp_path, monkeypatch)
    try:
        client = manager.client()
        client.start_channels()
        client.wait_for_ready(timeout=60)
        client.execute("while True: pass")
        time.sleep(1)
        manager.interrupt_kernel()
        reply = client.get_shell_msg(timeout=30)
        assert reply["content"]["ename"] == "KeyboardInterrupt"
        client.stop_channels()
        assert run(manager, "print(6 * 7)")["printed"] == "42\n"  # and it goes on
    finally:
        manager.shutdown_kernel(now=True)


def test_no_kernel_outlives_its_killed_client(server, tmp_path, monkeypatch):
    manager = start(kernel_spec(tmp_path, server.socket_path), tmp_path, monkeypatch)
    pid = int(run(manager, CODE)["printed"].split()[-1])
    assert alive(pid)
    manager.shutdown_kernel(now=True)  # SIGKILL to the client, as after a timeout
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid)


def test_without_its_server_no_kernel_starts_outside_the_sandbox(tmp_path, monkeypatch):
    missing = tmp_path / "no-server.sock"
    manager = start(kernel_spec(tmp_path, missing), tmp_path, monkeypatch)
    try:
        assert manager.provisioner.process.wait(timeout=30) == 1  # the client refused
    finally:
        manager.cleanup_resources()


def test_a_kernel_waits_for_a_server_still_importing(tmp_path, monkeypatch):
    if not forkserver.SUPPORTED:
        pytest.skip("the fork server runs on Linux only")
    socket_path = tmp_path / "late.sock"
    manager = start(kernel_spec(tmp_path, socket_path, server_wait=60), tmp_path, monkeypatch)
    late = forkserver.ForkServer(socket_path)  # started after the kernel was asked for
    try:
        assert run(manager, "print(6 * 7)")["printed"] == "42\n"
        assert late.wait_ready(timeout=0)
    finally:
        manager.shutdown_kernel(now=True)
        os.kill(late.pid, signal.SIGTERM)
        os.waitpid(late.pid, 0)


GRADER = """
import os, subprocess, sys
exit_at_once, client = sys.argv[1] == "exit", sys.argv[2:]
# As jupyter_client starts a kernel.
env = {**os.environ, "JPY_PARENT_PID": str(os.getpid())}
started = subprocess.Popen(client, start_new_session=True, env=env)
print(started.pid, flush=True)
if exit_at_once:
    os._exit(0)
started.wait()
"""


@pytest.mark.parametrize("grader_ends", ["while it waits", "before it starts"])
def test_a_client_whose_grader_is_gone_stops_waiting_for_its_server(tmp_path, grader_ends):
    """A grader killed while its kernel waits for a server still importing (a cluster's
    worker stopped mid-submission), or before the kernel's own process has looked at its
    parent, leaves no client waiting out the server's time."""
    client = [sys.executable, "-m", "tfcourse.grading_kernel.kernel"]
    client += ["--fork-server", str(tmp_path / "never.sock"), "--server-wait", "60"]
    connection = tmp_path / "kernel.json"
    connection.write_text("{}")
    client += ["-f", str(connection)]
    at_once = grader_ends == "before it starts"
    grader = subprocess.Popen(
        [sys.executable, "-c", GRADER, "exit" if at_once else "wait", *client],
        stdout=subprocess.PIPE,
    )
    pid = int(grader.stdout.readline())
    if not at_once:
        time.sleep(1)  # the client is waiting
        assert running(pid)
        grader.kill()
    grader.wait()
    deadline = time.monotonic() + 20
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(pid), "the client still waits for a server its grader will never start"


def test_the_client_exits_with_the_kernels_status(server, tmp_path, monkeypatch):
    manager = start(kernel_spec(tmp_path, server.socket_path), tmp_path, monkeypatch)
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=60)
    client.execute("import os; os._exit(3)")  # a submission that kills its kernel
    client.stop_channels()
    assert manager.provisioner.process.wait(timeout=30) == 3
    manager.cleanup_resources()


def test_a_server_is_never_obeyed_beyond_its_own_kernel(tmp_path):
    """A fake server (what a submission could put in the socket's place) names a process of
    the grader's as its kernel: the client sends it the signals it receives and signals
    nothing itself; it sends no variable of the grader's."""
    victim = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "fake.sock"))
    listener.listen()
    connection_file = tmp_path / "kernel.json"
    connection_file.write_text('{"transport": "ipc"}')
    client = subprocess.Popen(
        [
            *(sys.executable, "-m", "tfcourse.grading_kernel.kernel"),
            *("--fork-server", str(tmp_path / "fake.sock"), "--memory-mb", "500"),
            *("-f", str(connection_file)),
        ],
        env={**os.environ, "TFCOURSE_GRADER_SECRET": "the grader's"},
    )
    try:
        listener.settimeout(30)
        connection, _ = listener.accept()
        request, fds = served.receive_request(connection, 3)
        for fd in fds:
            os.close(fd)
        connection.sendall(f"{victim.pid}\n".encode())
        time.sleep(0.5)
        client.send_signal(signal.SIGTERM)
        assert client.wait(timeout=30) == 128 + signal.SIGTERM
        connection.settimeout(10)
        assert connection.recv(1) == bytes([signal.SIGTERM])  # relayed, not delivered
        assert victim.poll() is None
        assert "TFCOURSE_GRADER_SECRET" not in request["env"]
        assert set(request["env"]) <= forkserver.KERNEL_VARIABLES
        assert request["connection"] == connection_file.read_text()
        assert str(connection_file) not in json.dumps(request)
    finally:
        victim.kill()
        client.kill()
        listener.close()


def test_a_server_of_another_user_is_refused(tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "other.sock"))
    listener.listen()
    with pytest.raises(ConnectionError, match="not a socket of user"):
        forkserver.request_kernel(tmp_path / "other.sock", [], server_uid=os.getuid() + 1)
    listener.close()


def listening(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` that accepts without blocking."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    listener.setblocking(False)
    return listener


def connected_to(listener: socket.socket) -> bool:
    """Whether anything connected to ``listener`` (accepting it, if so)."""
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return False
    return True


def test_a_link_in_the_servers_place_is_not_followed(tmp_path):
    """A socket of the host behind a link where the server's socket should be: the client
    refuses without connecting to it."""
    host = listening(tmp_path / "host.sock")
    (tmp_path / "fork.sock").symlink_to(tmp_path / "host.sock")
    with pytest.raises(ConnectionError, match=r"fork\.sock"):
        forkserver.request_kernel(tmp_path / "fork.sock", [])
    assert not connected_to(host)
    host.close()


def test_the_client_never_follows_a_socket_name_the_kernel_replaced(server, tmp_path, monkeypatch):
    """The kernel binds its sockets in the sandbox's folder; the client connects through
    links its stand-in made in a folder of the grader's. A kernel that replaces its sockets
    by links to a socket of the host, then exits, gets no connection there while the client
    keeps reconnecting (by name: zmq's way). A restarted kernel binds the same names."""
    sandbox_side = tmp_path / "sockets"
    grader_side = tmp_path / "connections"
    sandbox_side.mkdir()
    grader_side.mkdir(mode=0o700)
    host = listening(tmp_path / "host.sock")
    jupyter = kernel_spec(tmp_path, server.socket_path, kernel_sockets=sandbox_side)
    manager = start(
        jupyter, tmp_path, monkeypatch, transport="ipc", ip=str(grader_side / "kernel-ipc")
    )
    try:
        assert run(manager, "print(6 * 7)")["printed"].strip() == "42"
        manager.restart_kernel(now=True)  # its successor binds the same names
        assert run(manager, "print(6 * 7)")["printed"].strip() == "42"
        bound = sorted(path.name for path in sandbox_side.glob("kernel-ipc-*"))
        assert len(bound) == 5 and all((sandbox_side / name).is_socket() for name in bound)
        assert sorted(path.name for path in grader_side.glob("kernel-ipc-*")) == bound
        client = manager.client()
        client.start_channels()
        code = (
            "import os, pathlib, time\n"
            f"for path in pathlib.Path({str(sandbox_side)!r}).glob('kernel-ipc-*'):\n"
            "    path.unlink()\n"
            f"    path.symlink_to({str(tmp_path / 'host.sock')!r})\n"
            "os._exit(0)\n"
        )
        client.execute(code)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            client.execute("")  # zmq keeps reconnecting to deliver it
            time.sleep(0.2)
        assert all((sandbox_side / name).is_symlink() for name in bound)  # the attack ran
        assert not connected_to(host)
        client.stop_channels()
    finally:
        manager.shutdown_kernel(now=True)
        host.close()


def test_a_kernel_writes_no_file_past_the_limit(server, tmp_path, monkeypatch):
    """The shared folder is on the grader's disk: a kernel cannot write a huge file there."""
    manager = start(kernel_spec(tmp_path, server.socket_path), tmp_path, monkeypatch)
    try:
        code = (
            "import errno\n"
            "try:\n"
            "    with open('big.bin', 'wb') as stream:\n"
            f"        stream.truncate({FILE_LIMIT_MB + 1} * 2**20)\n"
            "    print('WROTE')\n"
            "except OSError as error:\n"
            "    print('REFUSED', errno.errorcode[error.errno])\n"
        )
        assert run(manager, code)["printed"].strip() == "REFUSED EFBIG"
        assert not (tmp_path / "big.bin").exists() or (tmp_path / "big.bin").stat().st_size == 0
    finally:
        manager.shutdown_kernel(now=True)
