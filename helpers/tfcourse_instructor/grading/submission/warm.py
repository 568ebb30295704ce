"""The processes a grading run forks from, each having imported what its runs need once:
nbgrader's preloaded process (:mod:`.preloaded`) and, for sandboxed grading, the zygote that
starts each sandbox's fork server (:mod:`.sandbox.zygote`), with the font list the sandboxes
read. One set serves every assignment a grading command grades."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import TracebackType

from tfcourse.grading_kernel import forkserver
from tfcourse_instructor.grading.course import Course
from tfcourse_instructor.grading.submission import preloaded
from tfcourse_instructor.grading.submission.folders import process_folder
from tfcourse_instructor.grading.submission.sandbox import (
    Zygote,
    font_list,
    sandbox_environment,
)
from tfcourse_instructor.grading.submission.sandbox import zygote as zygote_process


class WarmProcesses:
    """Started by :meth:`start` (nothing runs before), ended by :meth:`close`."""

    def __init__(self, sandboxed: bool, zygote: bool = True) -> None:
        self.sandboxed = sandboxed
        """Whether submissions run in sandboxes (the font list and the zygote serve them)."""
        self._wants_zygote = zygote
        self._started = False
        self.preloaded: preloaded.Preloaded | None = None
        """Where nbgrader's runs (each submission's autograde, the class's feedback) are
        forked from, once started."""
        self.font_list: forkserver.FontList | None = None
        """What every sandbox's matplotlib reads its fonts from (sandboxed grading only: an
        unconfined fork server shares the grader's own cache)."""
        self.zygote: Zygote | None = None
        """What starts each sandbox's fork server, already imported (sandboxed grading where
        Linux allows it, unless ``zygote`` was False)."""

    def start(self) -> None:
        """Start the processes, once; they import in the background from here on."""
        if self._started:
            return
        self._started = True
        if preloaded.SUPPORTED:
            self.preloaded = preloaded.Preloaded()
        if self.sandboxed and forkserver.SUPPORTED:
            self.font_list = font_list()
        if self.sandboxed and self._wants_zygote and zygote_process.SUPPORTED:
            home = process_folder(Path("/tmp"), "zygote-")  # the sandboxes' /tmp has its path
            self.zygote = Zygote(sandbox_environment(home), self.font_list, home)

    def nbgrader(
        self,
        course: Course,
        *args: str,
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        memory_mb: int | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """``nbgrader ARGS`` in ``course``, as :meth:`Course.nbgrader` runs it: forked from
        the preloaded process once started, else started afresh."""
        if self.preloaded is not None:
            return self.preloaded.run(
                course.root, *args, timeout=timeout, env=env, memory_mb=memory_mb
            )
        return course.nbgrader(*args, timeout=timeout, env=env, memory_mb=memory_mb)

    def close(self) -> None:
        """End the processes (they can be started again)."""
        if self.preloaded is not None:
            self.preloaded.close()
        if self.zygote is not None:
            self.zygote.close()
        self.preloaded, self.font_list, self.zygote = None, None, None
        self._started = False

    def __enter__(self) -> WarmProcesses:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
