"""How grading on a Dask cluster scales with its workers, on this machine, in one run.

    python bench/cluster_scaling.py [--students N] [--assignment NAME]

Writes N synthetic submissions of one assignment (the bundled samples in turn), then grades
them with the kit's ``grade --scheduler`` on a real scheduler with 1, then 2 worker processes
of one thread each (``dask scheduler`` / ``dask worker`` on 127.0.0.1, as a cluster runs),
and prints seconds per submission, submissions per minute and the speed-up of 2 workers over
1 (goal: at least 0.9 x 2 where the machine has two free cores). The load average is printed
too, with the busiest other processes: other work on the machine changes every figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from grading_speed import load, make_course, timed

DASK = str(Path(sys.executable).parent / "dask")


@contextlib.contextmanager
def cluster(workers: int, logs: Path) -> Iterator[str]:
    """A scheduler and ``workers`` one-thread workers on 127.0.0.1; yields its address."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    lines = [["scheduler", "--host", "127.0.0.1", "--port", str(port)]]
    lines += [["worker", address, "--nthreads", "1"]] * workers
    started = []
    try:
        for number, line in enumerate(lines):
            with (logs / f"{line[0]}-{workers}-{number}.log").open("w") as log:
                started.append(
                    subprocess.Popen(
                        [DASK, *line, "--no-dashboard"],
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for process in reversed(started):
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=8)
    parser.add_argument("--assignment", default="01_attention")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tfcourse-bench-") as scratch:
        [course] = make_course(Path(scratch) / "course", [args.assignment], args.students)
        seconds = {}
        for workers in (1, 2):
            command = [sys.executable, "-m", "tfcourse_instructor.grading", "grade", "--force"]
            with cluster(workers, Path(scratch)) as address:
                command += ["--assignment", course.assignment, "--scheduler", address]
                seconds[workers] = timed(command, course.root)
            per = seconds[workers] / args.students
            print(
                f"{workers} worker(s): {seconds[workers]:.0f} s for {args.students} submissions "
                f"of {args.assignment}, {per:.1f} s each, {60 / per:.1f} per minute",
                flush=True,
            )
    print(f"speed-up of 2 workers over 1: {seconds[1] / seconds[2]:.2f} (ideal 2.00)")
    print(load())


if __name__ == "__main__":
    main()
