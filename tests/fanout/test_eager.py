"""eager.start: a send that does not wait finishes on the spot; one that waits, later."""

from __future__ import annotations

import asyncio

import pytest

from beacon.fanout import eager


async def test_a_coroutine_that_never_waits_finishes_before_start_returns() -> None:
    done: list[str] = []

    async def send() -> None:
        done.append("sent")

    assert eager.start(send()) is None
    assert done == ["sent"]


async def test_a_coroutine_that_waits_is_finished_by_a_task() -> None:
    gate = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def send() -> None:
        steps.append("before")
        steps.append(await gate)
        await asyncio.sleep(0)
        steps.append("after")

    task = eager.start(send())
    assert task is not None and steps == ["before"]
    gate.set_result("resumed")
    await task
    assert steps == ["before", "resumed", "after"]


async def test_errors_reach_the_caller_or_the_task() -> None:
    async def fails_at_once() -> None:
        raise ConnectionResetError("gone")

    with pytest.raises(ConnectionResetError):
        eager.start(fails_at_once())

    gate = asyncio.get_running_loop().create_future()

    async def fails_later() -> None:
        await gate

    task = eager.start(fails_later())
    assert task is not None
    gate.set_exception(ConnectionResetError("gone later"))
    with pytest.raises(ConnectionResetError):
        await task


async def test_cancelling_the_task_ends_the_coroutine() -> None:
    gate = asyncio.get_running_loop().create_future()
    cleaned: list[bool] = []

    async def send() -> None:
        try:
            await gate
        finally:
            cleaned.append(True)

    task = eager.start(send())
    assert task is not None
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]
