"""The plugin the coordinator registers on every worker of the cluster (imports Dask)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from distributed import WorkerPlugin

from tfcourse_instructor.grading.cluster.worker import remove_workspaces
from tfcourse_instructor.grading.submission.folders import remove_abandoned_folders
from tfcourse_instructor.grading.submission.sandbox import resources


class Cleanup(WorkerPlugin):
    """At a worker's start and close, ends what this machine's worker processes that no
    longer run (killed, or ended by a signal) left: their folders, and the processes of their
    sandboxes' control groups. At its close, also its own folders and processes (Dask ends a
    worker process without running its exit handlers)."""

    name = "tfcourse-cleanup"

    def setup(self, worker: object) -> None:
        remove_abandoned_folders(Path(tempfile.gettempdir()))
        resources.remove_abandoned()

    def teardown(self, worker: object) -> None:
        remove_workspaces()
        resources.remove_abandoned()
