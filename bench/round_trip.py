"""Cost of one request of the trusted runner to a student's kernel
(tfcourse_instructor.grading.submission.remote).

Starts a kernel with jupyter_client and times, interleaved: a request that moves almost
nothing (``name in env``), a call returning a (64, 64) float32 tensor, and a call returning
a 1M-entry tensor. Prints the median of each in milliseconds.

    python bench/round_trip.py [--repeats 200]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tfcourse_instructor.grading.selftest.parity import Kernel
from tfcourse_instructor.grading.submission import remote


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        kernel = Kernel(Path(folder))
        try:
            kernel.run(
                "import torch\nsmall = lambda: torch.ones(64, 64)\nbig = lambda: torch.ones(2**20)"
            )
            session = remote.Session(remote.blocking_transport(kernel.client), 10**12)
            env = remote.RemoteGlobals(session)
            small, big = env["small"], env["big"]
            cases = {
                "name in env": lambda: "small" in env,
                "call -> (64, 64) tensor": small,
                "call -> 1M-entry tensor": big,
            }
            times: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(args.repeats):
                for name, run in cases.items():
                    start = time.perf_counter()
                    run()
                    times[name].append(time.perf_counter() - start)
            for name, found in times.items():
                print(f"{name:28} {1000 * statistics.median(found):7.2f} ms")
        finally:
            kernel.stop()


if __name__ == "__main__":
    main()
