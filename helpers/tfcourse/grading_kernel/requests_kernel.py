"""The grading kernel's class: ipykernel's IPython kernel, which also answers the trusted
runner's requests as a message type of their own.

A request is a :data:`~tfcourse.grading_kernel.wire.REQUEST` message on the shell channel
whose content holds the arguments of :func:`tfcourse.grading_kernel.agent.serve`; the kernel
answers with a :data:`~tfcourse.grading_kernel.wire.REPLY` message whose content is
``{"answer": <serve's text>}``. An execute request would carry the same call as a user
expression, at about twice the kernel's cost per request (input transformers, an empty cell,
the result's display formats), and a check makes hundreds of requests.

While a request runs, the kernel lets the agent ask the runner over the stdin channel (the
test's own functions), and fires the events of a silent cell around it, so that figures the
student's code draws are flushed with the request that drew them, not with the next cell.
"""

from __future__ import annotations

from typing import Any

from ipykernel.ipkernel import IPythonKernel

from tfcourse.grading_kernel.wire import REPLY, REQUEST


class GradingKernel(IPythonKernel):
    """An IPython kernel that also answers :data:`REQUEST` messages."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shell_handlers[REQUEST] = self.runner_request

    async def runner_request(self, stream: Any, ident: Any, parent: dict[str, Any]) -> None:
        """Answer one request of the runner (ipykernel's shell handler signature)."""
        from tfcourse.grading_kernel import agent  # looked up now: a notebook may replace it

        content = parent.get("content")
        arguments = content if isinstance(content, dict) else {}
        fields = [arguments.get(name) for name in ("request", "pickled", "grads")]
        self._allow_stdin = True
        self.shell.events.trigger("pre_execute")
        try:
            answer = agent.serve(*[field if isinstance(field, str) else "" for field in fields])
        finally:
            self._allow_stdin = False
            self.shell.events.trigger("post_execute")
        self.session.send(stream, REPLY, {"answer": answer}, parent, ident=ident)
