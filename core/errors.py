"""Small exception types shared by several core modules."""

from __future__ import annotations


class ReadOnlyError(Exception):
    """A mutating action was refused because this opswatch runs read-only (``--read-only``, wall)."""


class UsageError(Exception):
    """Bad input, or an expected failure while starting (a port in use, a database that refuses):
    the CLI prints it as one line and exits with code 2."""
