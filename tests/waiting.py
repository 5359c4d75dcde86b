"""Waiting on a condition with a timeout, instead of sleeping a fixed time and hoping."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

POLL_S = 0.02


async def until(
    check: Callable[[], object | Awaitable[object]], within: float = 5.0, what: str = "", poll: float = POLL_S
) -> None:
    """Return once `check()` (plain or async) is truthy; fail the test after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what or check}")
        await asyncio.sleep(poll)


async def arrivals(arrived: asyncio.Condition, items: Sequence[T], count: int, within: float) -> list[T]:
    """Wait until ``items`` holds ``count`` (``arrived`` is notified on each arrival); a copy of them."""

    async def _wait() -> None:
        async with arrived:
            await arrived.wait_for(lambda: len(items) >= count)

    await asyncio.wait_for(_wait(), within)
    return list(items)
