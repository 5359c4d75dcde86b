"""Small exception types shared by several core modules."""

from __future__ import annotations


class ReadOnlyError(Exception):
    """A mutating action was refused because this opswatch runs read-only (``--read-only``, wall)."""
