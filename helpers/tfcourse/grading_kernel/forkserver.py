"""Grading kernels forked from a process that has already imported what they import.

Every notebook of every submission runs in a fresh kernel, and a fresh Python process spends
seconds importing torch, matplotlib, ipykernel and the helpers before the first cell runs. The
fork server does that once per grading run: it imports them, then forks one child per kernel
request, which becomes the kernel (limits, ipykernel) in under a second.

    kernel spec ─▶ python -m tfcourse.grading_kernel.kernel --fork-server SOCKET  (the "client")
                      │ sends argv, the connection file's content, the kernel's variables
                      │ (:data:`KERNEL_VARIABLES`), working directory and its stdio over SOCKET
                      ▼
                   fork server ──fork──▶ kernel process (setsid; limits; ipykernel)

jupyter_client manages the client as if it were the kernel: the client passes interrupts
and terminations to the server, which signals the kernel's process group, and exits with the
kernel's exit status. The client runs outside the sandbox and the server inside it, so the
client never signals a process itself, reads only short capped lines from the server,
talks only to a server of the sandbox's user (``--server-uid``), and never connects to a
name the sandbox could have replaced (:mod:`tfcourse.grading_kernel.pinned`). If the
client is killed, its connection closes and the server kills the kernel's process group; if
the server dies, the client exits and the kernel goes with the sandbox; if the grader that
started the client dies, the client stops waiting for a server still importing; a request
the server has no process for (at the sandbox's process limit) is refused, and it serves on.
Forking is safe here because the server runs no Python thread (numpy's OpenBLAS starts idle
workers of its own, which it shuts down at a fork) and creates no torch, zmq or event-loop
state before it forks.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from tfcourse.grading_kernel import pinned, served

PRELOAD = (
    "ipykernel.kernelapp",
    "ipykernel.debugger",  # every kernel imports it (and debugpy) as it starts: 0.2 s
    "matplotlib.pyplot",
    "numpy",
    "torch",
    "torch.fx.experimental.symbolic_shapes",  # autograd's first backward imports it: 0.4 s
    "tqdm.auto",
    "tfcourse.grading_kernel.agent",
    "tfcourse.grading_kernel.requests_kernel",
    "tfcourse.corpora",
    "tfcourse.encoder_config",
    "tfcourse.ngram",
    "tfcourse.optimizer",
    "tfcourse.plotting",
    "tfcourse.theory",
    "tfcourse.vocab",
)
"""Modules the grading kernels import; importing them once is the server's whole point."""

_STDIO = 3
_MAX_FONT_LIST = 1 << 20
_FONT_LIST_NAME = re.compile(r"fontlist-v[\w.]+\.json")
_MAX_LINE = 32
_MAX_KERNEL_OUTPUT = 64 * 1024
_LINK_SECONDS = 120
_CHANNELS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")

KERNEL_VARIABLES = frozenset(
    {
        "HOME",
        "TMPDIR",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "NBGRADER_EXECUTION",
        "NBGRADER_VALIDATING",
        "PYDEVD_DISABLE_FILE_VALIDATION",
        "JPY_PARENT_PID",
        "JPY_SESSION_NAME",
    }
)
"""The variables of the client's environment a kernel receives: those the kernel spec and
nbgrader set for it; the rest of the grader's environment stays outside."""


class StartedProcess(Protocol):
    """What :class:`ForkServer` needs of the process its ``popen`` started (a
    :class:`subprocess.Popen`, or a process the grading run's zygote started in a sandbox)."""

    @property
    def pid(self) -> int: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...


@dataclass(frozen=True)
class FontList:
    """matplotlib's list of the system's fonts: the file it caches it in (named after the
    list's format version) and its content."""

    name: str
    content: bytes


class ForkServer:
    """A fork server process listening on ``socket_path``, started at once by ``popen``
    (e.g. :meth:`tfcourse_instructor.grading.submission.sandbox.Sandbox.popen`, which confines it
    and every kernel it forks); it is ready once its imports are done. With ``font_list``
    (:class:`FontList`), matplotlib reads its fonts from that list instead of scanning the
    system's fonts again in every sandbox. With ``processes``, the server and every process
    it or its kernels start count against that many tasks of their user in their user
    namespace (:func:`tfcourse.grading_kernel.kernel.limit_processes`): a sandbox's limit
    where no control group holds it."""

    def __init__(
        self,
        socket_path: Path,
        popen: Callable[..., StartedProcess] = subprocess.Popen,
        font_list: FontList | None = None,
        processes: int | None = None,
    ) -> None:
        self.socket_path = socket_path
        command = [sys.executable, "-m", "tfcourse.grading_kernel.forkserver", str(socket_path)]
        stdin = subprocess.DEVNULL
        if font_list is not None:
            stdin = font_list_file(font_list)
            command += ["--font-list", font_list.name]
        if processes is not None:
            command += ["--processes", str(processes)]
        try:
            self._process = popen(
                command, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
        finally:
            if font_list is not None:
                os.close(stdin)

    @property
    def pid(self) -> int:
        """The server's process id (the parent of the kernels it forks)."""
        return self._process.pid

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Wait until the server listens (at most ``timeout`` seconds); False if it failed
        to start, or did not start in time."""
        assert self._process.stdout is not None
        if timeout is not None and not select.select([self._process.stdout], [], [], timeout)[0]:
            return False
        return self._process.stdout.readline(_MAX_LINE).strip() == b"ready"


def font_list_file(font_list: FontList) -> int:
    """A new file in memory holding ``font_list``'s content, to give a process as its standard
    input (a file, not a path: the process learns no folder of the grader's)."""
    descriptor = os.memfd_create("font-list")
    with open(os.dup(descriptor), "wb") as memory:
        memory.write(font_list.content)
    os.lseek(descriptor, 0, os.SEEK_SET)
    return descriptor


SUPPORTED = sys.platform == "linux"
"""Where forking a process that has imported torch is safe (macOS restricts forking after
some system frameworks are loaded; Windows cannot fork)."""


def preload(font_list: FontList | None = None) -> None:
    """Import :data:`PRELOAD` as a kernel would import them; with ``font_list``, cached
    where matplotlib looks for it first."""
    # What ipykernel would set before the notebook imports matplotlib (kernelapp.py).
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    # What ipykernel's kernel spec sets: debugpy, which ipykernel.debugger imports, would
    # otherwise print a warning about frozen modules on the grader's terminal.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    if font_list is not None and _FONT_LIST_NAME.fullmatch(font_list.name):
        import matplotlib

        (Path(matplotlib.get_cachedir()) / font_list.name).write_bytes(font_list.content)
    for module in PRELOAD:
        __import__(module)


def serve(
    socket_path: Path, start_kernel: Callable[[list[str]], None], font_list: FontList | None = None
) -> None:
    """Import :data:`PRELOAD`, then fork a kernel per connection until terminated."""
    preload(font_list)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(socket_path))
    listener.listen()
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    kernels: dict[int, socket.socket] = {}  # kernel pid -> its client's connection
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    try:
        while True:
            for key, _ in selector.select(timeout=0.2):
                if key.fileobj is listener:
                    connection, _ = listener.accept()
                    try:
                        pid = _fork_kernel(connection, selector, start_kernel)
                    except (ConnectionError, ValueError):
                        connection.close()  # the client sees the refusal
                        continue
                    kernels[pid] = connection
                    selector.register(connection, selectors.EVENT_READ, pid)
                elif relayed := key.fileobj.recv(1):  # type: ignore[union-attr]
                    _signal_group(key.data, relayed[0])  # a signal the client received
                else:
                    selector.unregister(key.fileobj)
                    _kill_group(key.data)  # the client is gone: so goes its kernel
            _report_exits(kernels, selector)
    finally:
        for pid in kernels:
            _kill_group(pid)


def request_kernel(
    socket_path: Path,
    kernel_args: list[str],
    server_uid: int | None = None,
    kernel_sockets: Path | None = None,
    server_wait: float = 0,
) -> int:
    """In the client: have the server fork a kernel with this process's working directory,
    stdio, connection file and kernel variables; relay signals to it; return its exit
    status. With ``server_uid``, a server of another user is refused. With
    ``kernel_sockets``, the kernel binds its Unix sockets in that folder, and this process
    links each where the connection file says once it is there. A server that is not
    listening yet is waited for up to ``server_wait`` seconds (it may still be importing)."""
    kernel_args, connection_file = _take_connection_file(kernel_args)
    owner = os.getuid() if server_uid is None else server_uid
    links: list[tuple[Path, Path]] = []
    if kernel_sockets is not None and connection_file:
        connection_file, links = _sockets_in(kernel_sockets, connection_file)
        pinned.clear(source for source, _ in links)
    connection = _connect_when_listening(socket_path, owner, server_wait)
    if _peer_uid(connection) != owner:
        raise ConnectionError(f"{socket_path} is not served by user {owner}")
    request = {
        "argv": kernel_args,
        "connection": connection_file,
        "env": {name: value for name, value in os.environ.items() if name in KERNEL_VARIABLES},
        "cwd": os.getcwd(),
    }
    stdio = _capped_stdio()
    served.send_request(connection, request, stdio)
    for fd in set(stdio):
        os.close(fd)
    if not _read_line(connection).isdigit():  # the kernel's pid, in the sandbox's namespace
        raise ConnectionError("the grading fork server refused the kernel request")
    if links:
        link = threading.Thread(target=pinned.link_sockets, args=(links, owner, _LINK_SECONDS))
        link.daemon = True
        link.start()

    def relay(number: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            connection.sendall(bytes([number]))
        if number != signal.SIGINT:
            sys.exit(128 + number)

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, relay)
    status = _read_line(connection)
    return int(status) if status.lstrip("-").isdigit() else 1


def _connect_when_listening(socket_path: Path, owner: int, seconds: float) -> socket.socket:
    """A connection to the server at ``socket_path`` (:func:`pinned.connect`), waiting up to
    ``seconds`` while nothing is there yet or nothing listens there yet, and no longer than
    the process that started this one (the grader's nbgrader) lives. jupyter_client names
    that process in ``JPY_PARENT_PID``: one that died before this process started is seen
    gone too."""
    deadline = time.monotonic() + seconds
    parent = int(os.environ.get("JPY_PARENT_PID") or os.getppid())
    while True:
        try:
            if os.path.lexists(socket_path):
                return pinned.connect(socket_path, owner)
        except ConnectionRefusedError:  # bound, not listening yet
            pass
        if time.monotonic() >= deadline or os.getppid() != parent:
            return pinned.connect(socket_path, owner)
        time.sleep(pinned.POLL_SECONDS)


def _capped_stdio() -> list[int]:
    """Descriptors for the kernel's stdin, stdout and stderr: nothing to read, and one pipe
    whose first :data:`_MAX_KERNEL_OUTPUT` bytes this process copies to its own stderr; the
    rest is drained and dropped, so a kernel cannot fill the grader's logs or disk."""
    reading, writing = os.pipe()

    def relay() -> None:
        shown = 0
        while chunk := os.read(reading, 65536):
            if shown < _MAX_KERNEL_OUTPUT:
                os.write(2, chunk[: _MAX_KERNEL_OUTPUT - shown])
                shown += len(chunk)

    threading.Thread(target=relay, daemon=True).start()
    return [os.open(os.devnull, os.O_RDONLY), writing, writing]


def _take_connection_file(kernel_args: list[str]) -> tuple[list[str], str]:
    """``kernel_args`` without ``-f FILE``, and that file's content: the kernel gets a copy in
    its own ``/tmp``, never a path of the grader's."""
    if "-f" not in kernel_args:
        return kernel_args, ""
    at = kernel_args.index("-f")
    path = Path(kernel_args[at + 1])
    return kernel_args[:at] + kernel_args[at + 2 :], path.read_text(encoding="utf-8")


def _sockets_in(folder: Path, connection_file: str) -> tuple[str, list[tuple[Path, Path]]]:
    """The connection file with its Unix sockets moved into ``folder``, and each socket's
    path there with the path the connection file gave it (where the client connects)."""
    info = json.loads(connection_file)
    if info.get("transport") != "ipc":
        return connection_file, []
    trusted, info["ip"] = info["ip"], str(folder / "kernel-ipc")
    links = [
        (Path(f"{info['ip']}-{info[port]}"), Path(f"{trusted}-{info[port]}")) for port in _CHANNELS
    ]
    return json.dumps(info), links


def _peer_uid(connection: socket.socket) -> int:
    """The user of the process at the other end of a Unix socket."""
    credentials = connection.getsockopt(
        socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")
    )
    return struct.unpack("3i", credentials)[1]


def _fork_kernel(
    connection: socket.socket,
    selector: selectors.BaseSelector,
    start_kernel: Callable[[list[str]], None],
) -> int:
    """Fork a kernel for the request waiting on ``connection``; return its pid."""
    request, fds = served.receive_request(connection, _STDIO)
    try:
        pid = os.fork()
    except OSError as error:  # at the sandbox's process limit: refuse this request only
        for fd in fds:
            os.close(fd)
        raise ConnectionError(f"no process left for a kernel: {error}") from error
    if pid == 0:  # the kernel: never returns into the server's loop
        code = 1
        try:
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            selector.close()
            connection.close()
            _become_kernel(request, fds, start_kernel)
            code = 0
        except SystemExit as stop:
            code = served.exit_status(stop)
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    connection.sendall(f"{pid}\n".encode())
    return pid


def _become_kernel(
    request: dict, fds: list[int], start_kernel: Callable[[list[str]], None]
) -> None:
    """In the forked child: take the client's session, stdio, directory and environment,
    then run the kernel."""
    os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.environ.update(
        {name: str(value) for name, value in request["env"].items() if name in KERNEL_VARIABLES}
    )
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _fresh_process_state()
    connection_file = []
    if request.get("connection"):
        descriptor, path = tempfile.mkstemp(prefix="kernel-", suffix=".json")
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(request["connection"])
        connection_file = ["-f", path]
    # ipykernel read JPY_PARENT_PID when the server imported it; give it the client's.
    parent = [f"--IPKernelApp.parent_handle={os.environ.get('JPY_PARENT_PID', 0)}"]
    start_kernel([*request["argv"], *connection_file, *parent])


def _fresh_process_state() -> None:
    """What a new process would have had: its own random seeds and thread count."""
    import numpy
    import torch

    random.seed()
    numpy.random.seed()
    torch.seed()
    apply_thread_count()


def apply_thread_count() -> None:
    """Give torch the threads ``OMP_NUM_THREADS`` names, as a fresh process started with it
    would have: OpenMP read the variable when the parent of this forked process imported
    torch."""
    threads = os.environ.get("OMP_NUM_THREADS", "")
    if threads.isdigit() and int(threads) > 0:
        import torch

        torch.set_num_threads(int(threads))


def _report_exits(kernels: dict[int, socket.socket], selector: selectors.BaseSelector) -> None:
    """Reap kernels that exited and tell their clients (if still there) the exit status."""
    for pid in list(kernels):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            connection = kernels.pop(pid)
            if connection in {key.fileobj for key in selector.get_map().values()}:
                selector.unregister(connection)
            with contextlib.suppress(OSError):
                connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            connection.close()


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
        os.killpg(pid, signum)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _read_line(connection: socket.socket) -> str:
    """A short line from the other end (at most :data:`_MAX_LINE` bytes are read)."""
    data = b""
    while not data.endswith(b"\n") and len(data) < _MAX_LINE:
        chunk = connection.recv(1)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def font_list_on_stdin(name: str | None) -> FontList | None:
    """The font list named ``name`` that the grader gave as standard input (at most
    :data:`_MAX_FONT_LIST` bytes), if it named one."""
    if name is None:
        return None
    content = b""
    while len(content) <= _MAX_FONT_LIST and (chunk := os.read(0, 65536)):
        content += chunk
    return FontList(name, content) if len(content) <= _MAX_FONT_LIST else None


if __name__ == "__main__":
    import argparse

    from tfcourse.grading_kernel.kernel import limit_processes, start_kernel

    parser = argparse.ArgumentParser(prog="python -m tfcourse.grading_kernel.forkserver")
    parser.add_argument("socket", type=Path)
    parser.add_argument("--font-list", metavar="NAME", help="matplotlib's font list is stdin")
    parser.add_argument("--processes", type=int, help="tasks of this user in this namespace")
    arguments = parser.parse_args()
    if arguments.processes:
        limit_processes(arguments.processes)
    serve(arguments.socket, start_kernel, font_list_on_stdin(arguments.font_list))
