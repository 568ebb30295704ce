"""Grading on a Dask cluster: a real scheduler and two real workers on 127.0.0.1 grade the
sample class of notebook 1 with the kit's ``grade --scheduler``, while the test kills what a
cluster loses in practice: the coordinator half-way, a worker holding a submission, and the
workers of one submission again and again. The grades, feedback and summary must be those of
one machine (the ``samples`` run), and nothing of the cluster may outlive it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import distributed
import psutil
import pytest

from tfcourse_instructor.grading.cluster import bundle, coordinator, worker
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.selftest import samples

from conftest import free_port, graded_results, one_notebook_course, recorded, wait_until

pytestmark = pytest.mark.slow

ASSIGNMENT = "01_attention"
ALLOWED_FAILURES = 1
"""The scheduler retries a submission whose worker died once; a second death stops it."""
UNLIMITED = 10
"""Kills planned for a submission that kills every worker it runs on."""
EXIT_SECONDS = 30
"""How long a stopped cluster's last processes may take to end."""
POLL_SECONDS = 0.2
"""How often the killer looks at what the workers run: a submission's kernel runs for
seconds on a worker, so it is seen there many times over."""
KERNEL = "tfcourse.grading_kernel.kernel"
"""The module nbgrader starts as a submission's kernel: the kernel's stand-in outside the
sandbox, which asks the sandbox's fork server for the kernel and lives as long as it."""
DASK = str(Path(sys.executable).parent / "dask")


@dataclass
class Cluster:
    """A scheduler and its workers, each a process group of this test's."""

    address: str
    scheduler_file: Path
    marker: str
    """An environment variable's value that every process of the cluster inherits."""
    processes: list[subprocess.Popen] = field(default_factory=list)


def start_cluster(folder: Path) -> Cluster:
    port = free_port()
    marker = uuid.uuid4().hex
    env = {
        **os.environ,
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(ALLOWED_FAILURES),
        # One submission per worker at a time: a killed worker held that one only.
        "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
        "TFCOURSE_TEST_CLUSTER": marker,
        "TMPDIR": str(folder),
    }
    cluster = Cluster(f"tcp://127.0.0.1:{port}", folder / "scheduler.json", marker)
    commands = [[DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port)]]
    commands[0] += ["--scheduler-file", str(cluster.scheduler_file)]
    commands += [
        [DASK, "worker", cluster.address, "--nthreads", "1", "--name", f"w{i}"] for i in (1, 2)
    ]
    for command in commands:
        log = (folder / f"{command[1]}-{len(cluster.processes)}.log").open("w")
        cluster.processes.append(
            subprocess.Popen(
                [*command, "--no-dashboard"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    with distributed.Client(cluster.address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    return cluster


def stop_cluster(cluster: Cluster) -> None:
    for process in reversed(cluster.processes):
        os.killpg(process.pid, signal.SIGTERM)
    for process in cluster.processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def cluster_processes(marker: str) -> list[str]:
    """Processes still carrying the cluster's marker, or sandboxes left without a parent."""
    left = []
    for process in psutil.process_iter(["pid", "name", "ppid"]):
        try:
            environ = process.environ()
        except (psutil.Error, OSError):
            continue
        if environ.get("TFCOURSE_TEST_CLUSTER") == marker:
            try:
                named = " ".join(process.cmdline())[:300]
            except psutil.Error:
                named = process.info["name"]
            left.append(f"{process.pid} {named}")
    return left


class Killer(threading.Thread):
    """SIGKILLs the worker running a planned student's submission once nbgrader has started
    that submission's kernel there, as many times as planned. The worker may hold other
    submissions waiting their turn: Dask counts the death against them too, the kit must
    not."""

    def __init__(self, address: str, plan: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.plan = dict(plan)
        self.kills: Counter[str] = Counter()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.log: list[str] = []
        """Each kill: when, which worker, and the task it was running."""

    def run(self) -> None:
        try:
            self._kill_as_planned()
        except BaseException as error:
            self.error = error
            raise

    def _kill_as_planned(self) -> None:
        def executing(dask_worker: distributed.Worker) -> list[str]:
            """The keys of the tasks the worker is running for the coordinator (not those
            waiting, nor those of the killed coordinator, cancelled but running to their end);
            nested, so that it travels to the workers by value."""
            return [task.key for task in dask_worker.state.executing if task.state == "executing"]

        def kernel_started() -> bool:
            """Whether a process of the worker's runs a submission's kernel."""
            for process in psutil.Process().children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if KERNEL in process.cmdline():
                        return True
            return False

        def kill_if_in_kernel(key: str, dask_worker: distributed.Worker) -> bool:
            """SIGKILL the worker if it runs ``key`` and that submission's kernel has started;
            False if not (yet). Checked and done in the worker's event loop, where a task's end
            and the next one's start are handled: no other task can have started in between,
            and the worker runs one task at a time."""
            if key in executing(dask_worker) and kernel_started():
                os.kill(os.getpid(), signal.SIGKILL)
            return False

        with distributed.Client(self.address, timeout="60s") as client:
            while not self.stop.wait(POLL_SECONDS):
                for worker, keys in client.run(executing, on_error="ignore").items():
                    for key in keys:
                        student = self._student(key)
                        if self.kills[student] >= self.plan.get(student, 0):
                            continue
                        answer = client.run(
                            kill_if_in_kernel, key, workers=[worker], on_error="return"
                        )
                        if answer.get(worker) is False:  # not yet, or it has ended
                            continue
                        self.kills[student] += 1
                        self.log.append(f"{time.strftime('%X')} killed {worker} for {key}")

    @staticmethod
    def _student(key: str) -> str:
        prefix = f"grade-{ASSIGNMENT}-"
        return key[len(prefix) : -9] if key.startswith(prefix) else ""


def grade_on(course: Course, address: str, *options: str) -> subprocess.Popen:
    command = ["grade", "--assignment", ASSIGNMENT, "--scheduler", address, *options]
    return subprocess.Popen(
        [sys.executable, "-m", "tfcourse_instructor.grading", *command],
        cwd=course.root,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@dataclass(frozen=True)
class KillPlan:
    once: str
    """Its worker is killed once: the submission is graded on another."""
    always: str
    """Its workers are killed each time: it is not graded."""


def kill_plan(course: Course, merged: set[str]) -> KillPlan:
    """Two submissions the restarted run grades as tasks of their own: notebooks no other
    student handed in (an identical one is graded with it, as one task), not merged by the
    first run. The first run was stopped after two of its four tasks in flight were done, so
    two of the four such submissions are left at least."""
    made = {s.student_id: json.dumps(s.make(course), sort_keys=True) for s in samples.SAMPLES}
    alone = [s for s, text in made.items() if list(made.values()).count(text) == 1]
    # The untouched release's kernel runs the shortest: killed once at most, where it must be.
    left = sorted((s for s in alone if s not in merged), key=lambda s: s != "untouched")
    assert len(left) >= 2, f"the first run merged {sorted(merged)}"
    return KillPlan(once=left[-2], always=left[-1])


@pytest.fixture(scope="module")
def graded_on_cluster(tmp_path_factory):
    """The sample class of notebook 1 graded on a two-worker cluster, its coordinator killed
    once half-way and restarted; returns the course, the restarted run's output and the
    kills made."""
    folder = tmp_path_factory.mktemp("cluster")
    course = one_notebook_course(folder / "course", ASSIGNMENT)
    samples.write_samples(course)
    workers = folder / "workers"
    workers.mkdir()
    cluster = start_cluster(workers)
    try:
        # The first run finds the scheduler through its file, as on a shared file system.
        first = grade_on(course, str(cluster.scheduler_file), "--merge-every", "2")
        wait_until(lambda: len(recorded(course)) >= 2, 900, "a first batch merged")
        os.killpg(first.pid, signal.SIGKILL)
        first.communicate()
        merged_before = set(recorded(course))
        plan = kill_plan(course, merged_before)
        killer = Killer(cluster.address, {plan.once: 1, plan.always: UNLIMITED})
        killer.start()
        second = grade_on(course, cluster.address)
        out, err = second.communicate(timeout=1800)
        killer.stop.set()
        killer.join()
        # Shown with a failing test: the plan, and what each kill interrupted.
        print(f"merged by the first run: {sorted(merged_before)}; {plan}", *killer.log, sep="\n")
        assert killer.error is None, repr(killer.error)
        assert second.returncode == 0, out + err
        with distributed.Client(cluster.address, timeout="60s") as client:
            last_workers = set(client.run(os.getpid).values())
    finally:
        stop_cluster(cluster)
    # The signals that end a stopped cluster's processes (its workers' preloaded nbgrader
    # processes and their runs die with their parents) take moments, not no time.
    deadline = time.monotonic() + EXIT_SECONDS
    while (left := cluster_processes(cluster.marker)) and time.monotonic() < deadline:
        time.sleep(0.5)
    return course, out, merged_before, killer.kills, left, (workers, last_workers), plan


def test_the_cluster_grades_as_one_machine(graded_on_cluster, graded_samples):
    course, out, _, kills, _, _, plan = graded_on_cluster
    assert kills[plan.once] == 1, "the killed worker never held the submission"
    one_machine = graded_samples[0][ASSIGNMENT]
    students = {s.student_id for s in samples.SAMPLES} - {plan.always}
    assert graded_results(course, students) == graded_results(one_machine, students)
    assert "late-reference handed in 1.5 days late" in out


def test_a_submission_that_kills_its_workers_is_not_graded_and_the_class_completes(
    graded_on_cluster,
):
    """Not graded once more workers than allowed died while running it; more may have died
    if a worker running a neighbour died while it waited there (sent again, not counted)."""
    course, out, _, kills, _, _, plan = graded_on_cluster
    assert ALLOWED_FAILURES + 1 <= kills[plan.always] < UNLIMITED
    record = recorded(course)[plan.always]
    killed = f"not graded: killed {kills[plan.always]} workers"
    assert not record["graded"]
    assert {"notebook": "", "problem": killed} in record["issues"]
    assert any(plan.always in line and killed in line for line in out.splitlines()), out
    assert len(recorded(course)) == len(samples.SAMPLES)


def test_a_restarted_coordinator_grades_only_what_was_not_merged(graded_on_cluster):
    _, out, merged_before, *_ = graded_on_cluster
    total = len(samples.SAMPLES)
    assert 2 <= len(merged_before) < total
    kept = len(merged_before)
    counts = re.search(rf"{total} submission\(s\), grading (\d+)(?:, (\d+) identical)?", out)
    assert counts, out
    assert int(counts[1]) + int(counts[2] or 0) == total - kept
    assert f", {kept} unchanged since last graded" in out


def test_nothing_of_the_cluster_outlives_it(graded_on_cluster):
    """No process; and of the workers' scratch folders, only those of the last workers (ended
    by the signal that stopped the cluster, as Dask's own are): a killed worker's was removed
    by the worker that replaced it."""
    *_, left, (workers, last_workers), _ = graded_on_cluster
    assert left == []
    for folder in workers.glob("tfcourse-*"):
        assert int(folder.name.split("-")[1]) in last_workers, f"{folder} was left behind"


def packed_bundle(folder: Path, **changed: str) -> bundle.Bundle:
    (folder / "template").mkdir(parents=True)
    (folder / "template" / "inputs.txt").write_text("inputs", encoding="utf-8")
    signature = bundle.environment_signature(["numpy"])
    return bundle.pack(folder / "template", ASSIGNMENT, {**signature, **changed})


@pytest.mark.parametrize(
    ("changed", "refusal"),
    [({"numpy": "0.0"}, r"numpy \S+ \(coordinator: 0\.0\)"), ({"kit": "0"}, r"kit \S+")],
)
def test_a_worker_with_other_software_is_refused(tmp_path, changed, refusal):
    """The coordinator checks every worker's signature before it sends anything: a worker
    whose packages or kit differ is named with what differs."""
    packed = packed_bundle(tmp_path, **changed)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
        ) as local,
        distributed.Client(local) as client,
    ):
        with pytest.raises(coordinator.ClusterRefused, match=refusal):
            coordinator.check_workers(client, packed, sandboxed=False)
        equal = packed_bundle(tmp_path / "equal")
        assert coordinator.check_workers(client, equal, sandboxed=False) == 1


def test_a_result_from_other_inputs_or_software_is_refused(tmp_path):
    """A result is kept only if it names the bundle that was sent and an equal environment;
    its notebooks are written under the names the course knows, never the result's."""
    course = one_notebook_course(tmp_path / "course", ASSIGNMENT)
    packed = packed_bundle(tmp_path)
    notebook = (course.release_dir / f"{ASSIGNMENT}.ipynb").read_text(encoding="utf-8")
    good = worker.WorkerResult(
        "alice", packed.digest, packed.environment, {ASSIGNMENT: notebook, "../x": notebook}, []
    )
    received = tmp_path / "received"
    kept = coordinator.accept(good, course, packed, "alice", received)
    assert kept.autograded == received / "alice" / ASSIGNMENT
    assert sorted(p.name for p in received.rglob("*.ipynb")) == [f"{ASSIGNMENT}.ipynb"]
    for result, why in [
        (replace(good, digest="0" * 64), "other inputs"),
        (replace(good, student="bob"), "other inputs"),
        (replace(good, environment={**packed.environment, "numpy": "0.0"}), "numpy 0.0"),
    ]:
        refused = coordinator.accept(result, course, packed, "alice", tmp_path / why)
        assert refused.autograded is None
        assert why in refused.issues[0].problem and "not graded" in refused.issues[0].problem
