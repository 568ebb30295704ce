"""The plugin the coordinator registers on every worker of the cluster (imports Dask)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from distributed import WorkerPlugin

from tfcourse_instructor.grading.cluster.worker import remove_workspaces
from tfcourse_instructor.grading.submission.folders import remove_abandoned_folders


class Cleanup(WorkerPlugin):
    """At a worker's start, removes the folders of this machine's worker processes that no
    longer run (killed, or ended by a signal); at its close, its own (Dask ends a worker
    process without running its exit handlers)."""

    name = "tfcourse-cleanup"

    def setup(self, worker: object) -> None:
        remove_abandoned_folders(Path(tempfile.gettempdir()))

    def teardown(self, worker: object) -> None:
        remove_workspaces()
