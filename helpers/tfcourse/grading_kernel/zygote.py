"""One process per grading run that imports what the kernels import, and starts each submission's
fork server inside that submission's sandbox, already imported.

A fork server that bubblewrap starts spends seconds importing torch, matplotlib and ipykernel
in every sandbox (:mod:`~tfcourse.grading_kernel.forkserver`). The zygote imports them once,
outside every sandbox, as the grader, and never runs a submission's code. It is reached through
a socket pair it inherits, not a path: nothing a submission can name reaches it.

For each sandbox the grader sends it a socket of that request's own; the zygote forks a child,
which reads the request from that socket (so no request, nor another submission's folders,
is in the memory the next sandbox inherits) and:

1. joins the submission's control groups, through ``cgroup.procs`` files the grader opened;
2. becomes the sandbox's user outside its namespaces (a root grader's ``GRADING_UID``), then
   enters every namespace of the sandbox's first process at once, through a pidfd
   (:func:`~tfcourse.grading_kernel.confinement.enter_namespaces`): user, mount, PID, network,
   IPC, UTS, cgroup;
3. gives up every capability that gave it, and sets ``no_new_privs``
   (:func:`~tfcourse.grading_kernel.confinement.drop_capabilities`);
4. forks the process that runs ``python -m MODULE ARGS`` there, in a session of its own, with
   the given stdin, stdout and stderr and nothing else open, the sandbox's environment,
   working folder and module path; reports that process's id (outside the sandbox) and waits
   for it, so that it dies with it.

The new process is in the sandbox's PID namespace, and its ancestors are not: nothing in the
sandbox can see, signal or trace them. It dies when the sandbox's first process does, as
everything in that namespace does.

``python -I -m tfcourse.grading_kernel.zygote FD [--font-list NAME]`` is the zygote.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import socket
import sys
import traceback

from tfcourse.grading_kernel import confinement, forkserver, served

EXTRA_PRELOAD = ("torch._dynamo",)
"""Modules torch imports on first use (making an optimiser, counting FLOPs: about 1 s), which a
fork server does not import (it would cost every sandbox that second): here it costs once."""

_FDS = ("pidfd", "stdin", "stdout", "stderr")
_MOST_GROUPS = 2  # control group version 1 has a hierarchy per controller (memory, pids)


def serve(connection: socket.socket, font_list: forkserver.FontList | None) -> None:
    """Import, say so, then fork a child per request until the grader closes ``connection``."""
    forkserver.preload(font_list)
    for module in EXTRA_PRELOAD:
        importlib.import_module(module)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped as they end
    zygote = os.getpid()

    def fork_child(_message: bytes, fds: list[int]) -> None:
        if os.fork() == 0:
            connection.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            _start(socket.socket(fileno=fds[0]), zygote)
        os.close(fds[0])

    served.serve_datagrams(connection, 16, 1, fork_child)


def _start(request_socket: socket.socket, zygote: int) -> None:
    """In the zygote's child: read the request, enter the sandbox, fork the process, report its
    pid, wait for it. Never returns."""
    try:
        confinement.die_with_parent(zygote)
        request, fds = served.receive_request(request_socket, len(_FDS), len(_FDS) + _MOST_GROUPS)
        pidfd, *stdio = fds[: len(_FDS)]
        for group in fds[len(_FDS) :]:
            os.write(group, f"{os.getpid()}\n".encode())
            os.close(group)
        if request["uid"] is not None:
            confinement.become_user(int(request["uid"]))
        confinement.enter_namespaces(pidfd)
        os.close(pidfd)
        confinement.drop_capabilities()
        os.chdir(request["cwd"])
        pid = os.fork()
        if pid == 0:
            request_socket.close()
            _become(request, stdio)
        for fd in stdio:
            os.close(fd)
        request_socket.sendall(f"{pid}\n".encode())
        request_socket.close()
        os.waitpid(pid, 0)
    except BaseException as error:
        with contextlib.suppress(OSError):
            request_socket.sendall(f"error {type(error).__name__}: {error}"[:200].encode() + b"\n")
    finally:
        os._exit(0)


def _become(request: dict, stdio: list[int]) -> None:
    """In the sandbox: become ``python -m MODULE ARGS`` as if it had been started there.
    Never returns."""
    code = 1
    try:
        os.setsid()
        confinement.die_with_parent(0)  # a parent outside this PID namespace shows as 0
        for target, fd in enumerate(stdio):
            os.dup2(fd, target)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        os.environ.clear()
        os.environ.update(request["env"])
        sys.path[:0] = request["path"]
        importlib.invalidate_caches()
        _recreate_cache_folders()
        code = served.run_module_as_main(request["module"], request["args"])
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


def _recreate_cache_folders() -> None:
    """matplotlib chose its configuration and cache folder when the zygote imported it (in the
    zygote's private folder under ``/tmp``): make that folder in the sandbox's own ``/tmp``."""
    import matplotlib

    os.makedirs(matplotlib.get_cachedir(), exist_ok=True)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(prog="python -I -m tfcourse.grading_kernel.zygote")
    parser.add_argument("connection", type=int, help="the descriptor of the grader's socket")
    parser.add_argument("--font-list", metavar="NAME", help="matplotlib's font list is stdin")
    arguments = parser.parse_args()
    serve(
        socket.socket(fileno=arguments.connection),
        forkserver.font_list_on_stdin(arguments.font_list),
    )
    # Nothing to write back or flush: skipping the interpreter's clean-up of all it imported
    # (about a second) ends the grading command that much sooner.
    os._exit(0)
