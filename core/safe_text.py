"""Render untrusted text inert before it reaches the terminal.

Error messages, payloads, URLs and stack traces read from the monitored database (or
received from HTTP endpoints) are attacker-influenced.  Written to a terminal verbatim
they can move the cursor, rewrite the screen, change the window title, hyperlink text
(OSC 8), query the terminal, or reorder what the operator reads (Unicode bidi overrides,
"Trojan Source").  The functions here turn any value into plain, printable text:

* ANSI / VT escape sequences are removed: CSI (``ESC [`` and 8-bit ``0x9B``), OSC (BEL or
  ST terminated), DCS / SOS / PM / APC strings, and two-byte ``ESC x`` sequences;
* remaining C0 / C1 control characters, DEL, NUL and lone surrogates become ``U+FFFD``
  (so tampering stays visible); tabs become spaces;
* bidi embedding / override / isolate controls (U+202A-U+202E, U+2066-U+2069) and
  LRM / RLM / ALM marks are removed;
* newlines become a single space in single-line mode; with ``multiline=True`` ``\\r\\n``
  and lone ``\\r`` (cursor-return overwrite tricks) are normalised to ``\\n``;
* output is truncated to ``max_len`` characters, ending in ``…`` when anything was cut.

Rich / Textual markup is deliberately *not* escaped here: ``core`` has no dependency on
rich or textual, and the TUI always passes this text to widgets as ``rich.text.Text``
objects (never as markup strings), so ``[bold]`` in a payload is shown literally.
Anyone rendering these strings as markup must escape them with ``rich.markup.escape``.

Secrets are not masked by default (this module is about terminal safety); pass
``redact_secrets=True`` to additionally run :func:`core.redact.redact` /
:func:`core.redact.scrub`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from core.redact import redact, scrub

__all__ = ["ELLIPSIS", "NOT_JSON_MARKER", "display_text", "first_line", "inert_json", "pretty_json"]

ELLIPSIS = "…"
NOT_JSON_MARKER = "(not valid JSON)"
REPLACEMENT = "\ufffd"

# Escape sequences (ECMA-48).  String-type sequences must be terminated (BEL, ESC \ or
# 8-bit ST); an unterminated introducer falls through to the control-character rule, so
# the text after it stays visible.
_ESCAPES = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"  # OSC, DCS, SOS, PM, APC
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b[ -/]*[0-~]"  # nF / Fp / Fe / Fs escapes (ESC c, ESC 7, ESC ( B ...)
)
# Newline-ish characters (for single-line mode and normalisation).
_NEWLINES = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
# Everything else that must not reach a terminal.
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff]")
_INVISIBLE = re.compile(r"[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")

# Any character some rule above would change (tabs and line breaks included): text without one
# is returned as it is, which is most text.
_SPECIAL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\ud800-\udfff]"
)

# Upper bound on how much raw input is sanitised (keeps huge payloads cheap).
_RAW_FACTOR = 8
_RAW_MIN = 4096


def _to_str(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        return str(value)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"


def _clean(text: str, *, multiline: bool) -> str:
    text = _ESCAPES.sub("", text)
    if multiline:
        text = _NEWLINES.sub("\n", text).replace("\t", "    ")
    else:
        text = _NEWLINES.sub(" ", text).replace("\t", " ")
    text = _INVISIBLE.sub("", text)
    # \x1b and any stray control char (including an unterminated escape introducer).
    text = _CONTROLS.sub(REPLACEMENT, text)
    return text


def _truncate(text: str, max_len: int, *, cut: bool) -> str:
    if len(text) > max_len:
        return text[: max_len - 1] + ELLIPSIS
    if cut:
        if len(text) >= max_len:
            return text[: max_len - 1] + ELLIPSIS
        return text + ELLIPSIS
    return text


def display_text(
    value: object,
    max_len: int = 500,
    *,
    multiline: bool = False,
    max_lines: int | None = None,
    redact_secrets: bool = False,
) -> str:
    """``value`` as printable, inert text of at most ``max_len`` characters.

    ``bytes`` are decoded as UTF-8 with replacement characters; other objects go through
    ``str()`` (falling back to ``repr()`` if ``__str__`` raises).  Single-line mode (the
    default) turns line breaks and tabs into spaces.  With ``multiline=True`` line breaks
    are kept (``\\r\\n`` / ``\\r`` -> ``\\n``) and ``max_lines`` limits the number of lines;
    dropped lines are reported as a final ``… (N more lines)`` line.  When anything is
    cut the result ends with ``…``.
    """
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    if max_lines is not None and max_lines < 1:
        raise ValueError("max_lines must be >= 1")

    raw = _to_str(value)
    if len(raw) <= max_len and not redact_secrets and not _SPECIAL.search(raw):
        return raw
    limit = max(max_len * _RAW_FACTOR, _RAW_MIN)
    cut = len(raw) > limit
    if cut:
        raw = raw[:limit]
    if redact_secrets:
        raw = redact(raw)
    text = _clean(raw, multiline=multiline)

    if multiline and max_lines is not None:
        lines = text.split("\n")
        if len(lines) > max_lines:
            hidden = len(lines) - max_lines
            more = "more lines" if hidden != 1 else "more line"
            suffix = f"{ELLIPSIS} ({hidden}{'+' if cut else ''} {more})"
            text = "\n".join(lines[:max_lines])
            # Keep the marker visible even when max_len is tight.
            room = max_len - len(suffix) - 1
            if room < 1:
                return _truncate(text, max_len, cut=True)
            if len(text) > room:
                text = text[: room - 1] + ELLIPSIS
            return f"{text}\n{suffix}"
    return _truncate(text, max_len, cut=cut)


def first_line(value: object, max_len: int = 120, *, redact_secrets: bool = False) -> str:
    """The first non-blank line of ``value``, sanitised; ``…`` marks dropped text."""
    if max_len < 1:
        raise ValueError("max_len must be >= 1")
    raw = _to_str(value)
    # Enough raw text for the first line, without sanitising megabytes.
    limit = max(max_len * _RAW_FACTOR, _RAW_MIN)
    text = display_text(raw[:limit], limit, multiline=True, redact_secrets=redact_secrets)
    lines = text.split("\n")
    index = next((i for i, line in enumerate(lines) if line.strip()), None)
    if index is None:
        return ""
    line = lines[index].strip()
    more = len(raw) > limit or any(rest.strip() for rest in lines[index + 1 :])
    return _truncate(line, max_len, cut=more)


def inert_json(value: Any, max_len: int = 40_000, *, _depth: int = 0) -> Any:
    """A copy of a JSON value whose every string (keys too) is :func:`display_text` (multiline).

    For payloads sent to other systems: line breaks survive, escape sequences, C0 / C1 and bidi
    controls do not, and no string is longer than ``max_len``. Numbers, booleans and None pass.
    """
    if isinstance(value, str):
        return display_text(value, max_len, multiline=True)
    if _depth > 50:
        return display_text(_dumps(value), max_len, multiline=True)
    if isinstance(value, dict):
        return {display_text(k, 200): inert_json(v, max_len, _depth=_depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [inert_json(v, max_len, _depth=_depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return display_text(value, max_len, multiline=True)


def pretty_json(
    value: Any,
    max_len: int = 4000,
    *,
    max_lines: int | None = None,
    redact_secrets: bool = False,
) -> str:
    """Pretty-print a JSON value (2-space indent, sorted keys), sanitised for display.

    ``value`` may be a parsed value (dict, list, ...) or a ``str`` / ``bytes`` holding
    JSON text (e.g. a JSONB column fetched as text).  Invalid JSON text is shown as
    ``(not valid JSON)`` followed by the sanitised raw text.  With
    ``redact_secrets=True`` secret-looking keys and values are masked first.
    """
    if isinstance(value, str | bytes | bytearray | memoryview):
        raw = _to_str(value)
        try:
            parsed = json.loads(raw)
        except (ValueError, RecursionError):
            body = display_text(
                raw,
                max_len=max(max_len - len(NOT_JSON_MARKER) - 1, 1),
                multiline=True,
                max_lines=None if max_lines is None else max(max_lines - 1, 1),
                redact_secrets=redact_secrets,
            )
            return _truncate(f"{NOT_JSON_MARKER}\n{body}", max_len, cut=False)
    else:
        parsed = value

    if redact_secrets:
        parsed = scrub(parsed)
    text = _dumps(parsed)
    return display_text(text, max_len, multiline=True, max_lines=max_lines, redact_secrets=redact_secrets)


def _dumps(value: Any) -> str:
    try:
        return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except TypeError:
        # Mixed-type keys ({1: .., "a": ..}) cannot be sorted: stringify them first.
        return json.dumps(_stringify_keys(value), indent=2, sort_keys=True, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        # Circular reference or absurd nesting: fall back to repr().
        return repr(value)


def _stringify_keys(value: Any, depth: int = 0) -> Any:
    if depth > 100:
        return repr(value)
    if isinstance(value, dict):
        return {str(k): _stringify_keys(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_stringify_keys(v, depth + 1) for v in value]
    return value
