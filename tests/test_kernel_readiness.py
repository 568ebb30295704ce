"""The grader's kernel client is ready when the kernel is: it has answered on the shell
channel and its iopub channel is connected, so no output of the first cell is lost; a kernel
that dies while starting is reported, not waited for."""

from __future__ import annotations

import asyncio

import pytest

from tfcourse_instructor.grading.submission.execution import CappedKernelManager


async def first_output(code: str) -> str:
    """What ``code``, run as soon as a fresh kernel is ready, prints (asked for at once:
    the kernel is still starting when the client first asks it)."""
    manager = CappedKernelManager(kernel_name="python3")
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        msg_id = client.execute(code)
        while True:
            msg = await client.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] == "stream":
                return msg["content"]["text"]
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


def test_a_starting_kernel_is_ready_with_its_iopub_connected():
    assert asyncio.run(first_output("print('first')")) == "first\n"


async def wait_for_a_dead_kernel() -> None:
    manager = CappedKernelManager(kernel_name="python3")
    await manager.start_kernel()
    client = manager.client()
    client.start_channels()
    try:
        await manager.shutdown_kernel(now=True)
        await client.wait_for_ready(timeout=60)
    finally:
        client.stop_channels()


def test_a_kernel_that_dies_while_starting_is_reported():
    with pytest.raises(RuntimeError, match="died before replying"):
        asyncio.run(wait_for_a_dead_kernel())
