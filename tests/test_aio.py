"""Background loops stop when cancelled, even if their event is set at the same moment."""

from __future__ import annotations

import asyncio

import pytest

from core.aio import get_within, wait_event


async def test_a_cancellation_that_coincides_with_the_event_is_not_lost() -> None:
    event = asyncio.Event()
    rounds = 0

    async def loop() -> None:
        nonlocal rounds
        while True:
            await wait_event(event, 5.0)
            event.clear()
            rounds += 1

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)  # the loop reaches its wait (it exposes no state to wait on)
    event.set()  # wakes the waiter ...
    task.cancel()  # ... and cancels it in the same loop iteration (3.11's wait_for lost this)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1.0)
    assert task.cancelled()


async def test_wait_event_and_get_within_time_out() -> None:
    event: asyncio.Event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True
    queue: asyncio.Queue[int] = asyncio.Queue()
    assert await get_within(queue, 0.01) is None
    queue.put_nowait(7)
    assert await get_within(queue, 0.01) == 7
