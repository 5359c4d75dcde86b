"""Capturing what opswatch logs through loguru during a test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger


@contextmanager
def captured_log(level: str, fmt: str) -> Iterator[list[str]]:
    """The formatted lines logged at `level` or above while the block runs (no locals, as in production)."""
    lines: list[str] = []
    sink = logger.add(lines.append, level=level, format=fmt, backtrace=False, diagnose=False)
    try:
        yield lines
    finally:
        logger.remove(sink)
