"""Config problems as one line ``file:line: key: message``, and the helpers that word them."""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence

__all__ = [
    "ConfigError",
    "KeyPath",
    "LocatedValueError",
    "PathPart",
    "format_key",
    "iter_errors",
    "suggest",
]

PathPart = str | int
KeyPath = tuple[PathPart, ...]


class ConfigError(Exception):
    """A configuration problem: ``str(err)`` is one line ``{file}:{line}: {key}: {message}``.

    ``line`` is 1-based or ``None`` (missing file, environment); ``key`` is a dotted path such as
    ``endpoints[1].interval`` or ``""`` for the whole document; absent parts are left out of the
    line. ``others`` holds further problems found in the same pass (the first by line is raised).
    """

    def __init__(self, file: str, line: int | None, key: str, message: str) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.message = message
        self.others: tuple[ConfigError, ...] = ()
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        parts = [where, self.key, self.message] if self.key else [where, self.message]
        return ": ".join(parts)

    def __reduce__(self) -> tuple[type[ConfigError], tuple[str, int | None, str, str]]:
        return (type(self), (self.file, self.line, self.key, self.message))

    def __repr__(self) -> str:
        return f"ConfigError({self.file!r}, {self.line!r}, {self.key!r}, {self.message!r})"


class LocatedValueError(ValueError):
    """Raised from a model validator to blame a key below the model (``loc`` is relative to it)."""

    def __init__(self, loc: KeyPath, message: str) -> None:
        self.loc = loc
        super().__init__(message)


def format_key(path: Sequence[PathPart]) -> str:
    """``("endpoints", 1, "interval") -> "endpoints[1].interval"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def suggest(word: str, candidates: Sequence[str], *, list_allowed: bool = True) -> str:
    """`` (did you mean 'x'?)``, else a short list of the allowed values (if ``list_allowed``)."""
    if not candidates:
        return ""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if list_allowed and len(candidates) <= 12:
        return f" (expected one of: {', '.join(candidates)})"
    return ""


def iter_errors(err: ConfigError) -> Iterator[ConfigError]:
    """The error and everything it carries in ``others``."""
    yield err
    yield from err.others
