"""Log level names: one resolution of the configured level and the ``LOG_LEVEL`` override.

Kept free of loguru so that :mod:`core.config` can validate a level without importing it;
:mod:`core.logging` re-exports everything here.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LEVELS", "LEVEL_NO", "normalise_level", "resolve_level"]

LEVELS = ("TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL")
LEVEL_NO = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "SUCCESS": 25, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL", "ERR": "ERROR", "VERBOSE": "DEBUG"}


def normalise_level(name: str) -> str | None:
    """The canonical name of a level spelling (``warn`` -> ``WARNING``), None if unknown."""
    upper = name.strip().upper()
    upper = _ALIASES.get(upper, upper)
    return upper if upper in LEVEL_NO else None


def resolve_level(configured: str, env: Mapping[str, str]) -> str:
    """The effective level name: ``env["LOG_LEVEL"]`` when set and valid, else ``configured``.

    Names are case-insensitive; ``warn`` and ``fatal`` are accepted (Winston spelling).
    An invalid ``LOG_LEVEL`` is ignored (:func:`setup_logging` logs a warning); an
    invalid ``configured`` level raises :class:`ValueError`.
    """
    override = env.get("LOG_LEVEL", "")
    if override and override.strip():
        resolved = normalise_level(override)
        if resolved is not None:
            return resolved
    resolved = normalise_level(configured)
    if resolved is None:
        raise ValueError(f"unknown log level {configured!r}; expected one of {', '.join(LEVELS)}")
    return resolved
