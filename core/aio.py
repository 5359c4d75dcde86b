"""Waiting with a time limit in loops that must stop when cancelled, on Python 3.11.

In 3.11 ``asyncio.wait_for`` can swallow a cancellation that arrives just as the awaited
event is set (fixed in 3.12, where it is built on ``asyncio.timeout``): a background loop that
waits that way keeps running after ``task.cancel()``, and whoever awaits the task hangs.
These helpers use ``asyncio.timeout``, which never loses a cancellation.
"""

from __future__ import annotations

import asyncio
from typing import TypeVar

__all__ = ["get_within", "wait_event"]

T = TypeVar("T")


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` have passed; True when it is set."""
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def get_within(queue: asyncio.Queue[T], seconds: float) -> T | None:
    """The next item of ``queue``, or None when none arrives within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            return await queue.get()
    except TimeoutError:
        return None
