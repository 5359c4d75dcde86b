"""Structured logging for opswatch (loguru), modelled on the seed's Winston setup.

:func:`setup_logging` configures loguru once per process:

* ``{directory}/combined.log`` gets every record at the configured level and
  ``{directory}/error.log`` only ERROR and above.  Both are JSON lines::

      {"timestamp": "2026-01-08T12:00:00.123Z", "level": "error", "message": "...",
       "service": "opswatch", "environment": "production", "logger": "core.db",
       "endpoint": "sales", "exception": {"type": "...", "value": "...", "traceback": "..."}}

  Bound context (``logger.bind(endpoint=...)``, ``logger.contextualize(...)``, keyword
  arguments of a log call) is flattened into the object under its own names; a context
  key that collides with a standard field is written as ``extra_<key>``.  Files rotate
  by size (default 5 MB) and ``retention`` files are kept per log *including* the active
  one (Winston's ``maxFiles``).  Lines are written synchronously (line-buffered), so a
  record is on disk when the logging call returns.
* a :class:`LogBuffer` ring buffer keeps the most recent records for the in-app log panel;
* nothing is written to the terminal unless ``console=True`` (headless mode, usually with
  ``json_console=True`` for JSON lines on stderr).  Loguru's default stderr sink is removed.
* every record is redacted *before any sink sees it* (a global loguru patcher): the
  message, every bound value (:func:`core.redact.scrub`: secret-named keys are masked,
  strings are redacted) and the exception text.  Bound values are also converted to
  JSON-compatible data (str / int / float / bool / None / lists / dicts; anything else
  becomes its redacted ``str()``).
* records of the standard :mod:`logging` module (asyncpg, httpx, ...) are routed into
  loguru (``intercept_stdlib=True``), so third-party warnings follow the same path
  instead of reaching the terminal through :data:`logging.lastResort`.

:func:`setup_logging` owns the sinks it adds: calling it again replaces them, and sinks
added by others (e.g. the Sentry bridge of :mod:`core.telemetry`) are left alone.
:func:`reset_logging` removes everything it installed.
"""

from __future__ import annotations

import inspect
import json
import logging as std_logging
import math
import os
import re
import sys
import threading
import traceback
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from loguru import logger

from core.log_levels import LEVEL_NO, LEVELS, normalise_level, resolve_level
from core.redact import redact, scrub
from core.safe_text import display_text

if TYPE_CHECKING:
    from collections.abc import Callable

    from loguru import Message, Record

__all__ = [
    "DEFAULT_RETENTION",
    "DEFAULT_ROTATION",
    "LEVELS",
    "LogBuffer",
    "LogLine",
    "normalise_level",
    "reset_logging",
    "resolve_level",
    "setup_logging",
]

DEFAULT_ROTATION = 5 * 1024 * 1024
DEFAULT_RETENTION = 5

# Key under record["extra"] where the patcher leaves its precomputed output.
_INTERNAL = "_opswatch"
_RESERVED = frozenset({"timestamp", "level", "message", "service", "environment", "logger", "exception"})
# Characters json.dumps(ensure_ascii=False) leaves raw but which a terminal running
# `tail -f combined.log` could interpret (C1 controls) or reorder (bidi controls).
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# --------------------------------------------------------------------------- ring buffer


@dataclass(frozen=True, slots=True)
class LogLine:
    """One record as kept by :class:`LogBuffer` (already redacted; not yet display-safe)."""

    time: datetime
    level: str
    message: str
    extra: dict[str, str] = field(default_factory=dict)


class LogBuffer:
    """Thread-safe ring buffer of the last ``capacity`` records.

    ``version`` increases by one for every appended record, so a UI can poll it and
    only call :meth:`snapshot` when it changed.
    """

    def __init__(self, capacity: int = 2000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self._lines: deque[LogLine] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._version = 0

    @property
    def capacity(self) -> int:
        return self._lines.maxlen or 0

    @property
    def version(self) -> int:
        return self._version

    def __len__(self) -> int:
        with self._lock:
            return len(self._lines)

    def append(self, line: LogLine) -> None:
        with self._lock:
            self._lines.append(line)
            self._version += 1

    def snapshot(self) -> list[LogLine]:
        """A copy of the buffered lines, oldest first."""
        with self._lock:
            return list(self._lines)

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()
            self._version += 1

    def sink(self, message: Message) -> None:
        """Loguru sink: append the (already redacted) record."""
        record = message.record
        extra = {str(key): _as_text(value) for key, value in record["extra"].items() if key != _INTERNAL}
        internal = record["extra"].get(_INTERNAL)
        if isinstance(internal, dict) and internal.get("exc"):
            extra["exception"] = str(internal["exc"])
        self.append(
            LogLine(
                time=record["time"].astimezone(UTC),
                level=record["level"].name,
                message=record["message"],
                extra=extra,
            )
        )


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


# --------------------------------------------------------------------------- record preparation


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-compatible copy of an already scrubbed value."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > 20:
        return "<max depth>"
    if isinstance(value, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return redact(_safe_str(value))


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _dumps(payload: dict[str, Any]) -> str:
    text = json.dumps(payload, ensure_ascii=False, default=str)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _make_patcher(service: str, environment: str) -> Callable[[Record], None]:
    def patch(record: Record) -> None:
        try:
            _prepare(record, service, environment)
        except Exception as exc:  # a logging call must never raise
            try:
                message = redact(_safe_str(record["message"]))
            except Exception:
                message = "<log message could not be redacted>"
            record["message"] = message
            fallback = {
                "timestamp": _timestamp(record["time"]),
                "level": record["level"].name.lower(),
                "message": message,
                "service": service,
                "environment": environment,
                "log_error": f"could not prepare record: {type(exc).__name__}",
            }
            record["extra"] = {_INTERNAL: {"json": _dumps(fallback), "exc": None, "tb": None}}

    return patch


def _prepare(record: Record, service: str, environment: str) -> None:
    message = redact(record["message"])
    record["message"] = message

    raw_extra = {k: v for k, v in record["extra"].items() if k != _INTERNAL}
    extra: dict[str, Any] = {str(k): _plain(v) for k, v in scrub(raw_extra).items()}

    payload: dict[str, Any] = {
        "timestamp": _timestamp(record["time"]),
        "level": record["level"].name.lower(),
        "message": message,
        "service": service,
        "environment": environment,
        "logger": record["name"],
    }
    for key, value in extra.items():
        payload[f"extra_{key}" if key in _RESERVED else key] = value

    exc_summary: str | None = None
    tb_text: str | None = None
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        type_name = exception.type.__name__
        value_text = redact(_safe_str(exception.value)) if exception.value is not None else ""
        try:
            tb_text = redact(
                "".join(traceback.format_exception(exception.type, exception.value, exception.traceback))
            )
        except Exception:
            tb_text = f"{type_name}: {value_text}\n"
        exc_summary = f"{type_name}: {value_text}" if value_text else type_name
        payload["exception"] = {"type": type_name, "value": value_text, "traceback": tb_text}

    extra[_INTERNAL] = {"json": _dumps(payload), "exc": exc_summary, "tb": tb_text}
    record["extra"] = extra


def _file_format(record: Record) -> str:
    # Callable formats get no automatic "{exception}" suffix: the (redacted) traceback is
    # already inside the JSON object.
    if isinstance(record["extra"].get(_INTERNAL), dict):
        return "{extra[" + _INTERNAL + "][json]}\n"
    return "{message}\n"


def _noop_patcher(record: Record) -> None:
    return None


# --------------------------------------------------------------------------- console


class _ConsoleSink:
    """stderr sink: JSON lines, or one sanitised human-readable line per record."""

    def __init__(self, stream: TextIO, *, as_json: bool) -> None:
        self._stream = stream
        self._as_json = as_json

    def __call__(self, message: Message) -> None:
        record = message.record
        internal = record["extra"].get(_INTERNAL)
        if not isinstance(internal, dict):
            internal = {}
        if self._as_json:
            line = str(internal.get("json") or _dumps({"message": record["message"]})) + "\n"
        else:
            line = self._render_text(record, internal)
        self._stream.write(line)
        self._stream.flush()

    @staticmethod
    def _render_text(record: Record, internal: dict[str, Any]) -> str:
        moment = record["time"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        context = " ".join(
            f"{key}={_as_text(value)}" for key, value in record["extra"].items() if key != _INTERNAL
        )
        text = f"{moment} | {record['level'].name:<8} | {record['message']}"
        if context:
            text += f" | {context}"
        text = display_text(text, 20_000, multiline=True)
        tb = internal.get("tb")
        if tb:
            text += "\n" + display_text(str(tb), 20_000, multiline=True).rstrip("\n")
        return text + "\n"


# --------------------------------------------------------------------------- stdlib bridge


class _InterceptHandler(std_logging.Handler):
    """Forward :mod:`logging` records to loguru (standard loguru recipe)."""

    def emit(self, record: std_logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        try:
            text = record.getMessage()
        except Exception:
            text = _safe_str(record.msg)
        # Find the caller of the logging call so loguru reports the right module.
        frame, depth = inspect.currentframe(), 0
        while frame is not None and (depth == 0 or frame.f_code.co_filename == std_logging.__file__):
            frame = frame.f_back
            depth += 1
        try:
            logger.opt(depth=depth, exception=record.exc_info).log(level, text)
        except Exception:
            pass


# --------------------------------------------------------------------------- setup

_state_lock = threading.RLock()
_handler_ids: list[int] = []
_intercept: _InterceptHandler | None = None


def _remove_own_sinks() -> None:
    global _intercept
    for handler_id in _handler_ids:
        try:
            logger.remove(handler_id)
        except ValueError:
            pass
    _handler_ids.clear()
    if _intercept is not None:
        std_logging.getLogger().removeHandler(_intercept)
        _intercept = None


def reset_logging() -> None:
    """Remove every sink, the stdlib bridge and the patcher installed by :func:`setup_logging`."""
    with _state_lock:
        _remove_own_sinks()
        logger.configure(patcher=_noop_patcher)


def setup_logging(
    *,
    level: str = "INFO",
    directory: Path | str | None = Path("logs"),
    rotation: int = DEFAULT_ROTATION,
    retention: int = DEFAULT_RETENTION,
    service: str = "opswatch",
    environment: str = "production",
    console: bool = False,
    json_console: bool = False,
    buffer_size: int = 2000,
    intercept_stdlib: bool = True,
    env: Mapping[str, str] | None = None,
) -> LogBuffer:
    """Configure loguru for opswatch and return the ring buffer for the log panel.

    ``level`` is overridden by ``$LOG_LEVEL`` (``env`` defaults to :data:`os.environ`).
    ``directory=None`` disables the log files; if the directory cannot be created or
    written, file logging is disabled and a warning is logged (to the buffer) instead of
    raising.  ``rotation`` is the size in bytes at which a file is rotated, ``retention``
    the number of files kept per log including the active one.

    Raises :class:`ValueError` only for invalid arguments (unknown level, non-positive
    rotation / retention / buffer size).
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    resolved = resolve_level(level, environ)
    if rotation < 1:
        raise ValueError("rotation must be a positive number of bytes")
    if retention < 1:
        raise ValueError("retention must be >= 1")

    warnings: list[str] = []
    raw_env_level = environ.get("LOG_LEVEL", "")
    if raw_env_level.strip() and normalise_level(raw_env_level) is None:
        warnings.append(f"ignoring invalid LOG_LEVEL={raw_env_level.strip()!r}; using level {resolved}")

    buffer = LogBuffer(buffer_size)
    with _state_lock:
        global _intercept
        _remove_own_sinks()
        try:
            logger.remove(0)  # loguru's default stderr sink
        except ValueError:
            pass
        logger.configure(patcher=_make_patcher(service, environment))

        common: dict[str, Any] = {"backtrace": False, "diagnose": False, "catch": True}
        _handler_ids.append(logger.add(buffer.sink, level=resolved, format="{message}", **common))
        if console:
            sink = _ConsoleSink(sys.stderr, as_json=json_console)
            _handler_ids.append(logger.add(sink, level=resolved, format="{message}", **common))

        if directory is not None:
            warning = _add_file_sinks(Path(directory).expanduser(), resolved, rotation, retention, common)
            if warning:
                warnings.append(warning)

        if intercept_stdlib:
            _intercept = _InterceptHandler()
            std_logging.getLogger().addHandler(_intercept)

    for text in warnings:
        logger.warning(text)
    return buffer


def _add_file_sinks(
    directory: Path, level: str, rotation: int, retention: int, common: dict[str, Any]
) -> str | None:
    added: list[int] = []
    error_level = level if LEVEL_NO[level] > LEVEL_NO["ERROR"] else "ERROR"
    options: dict[str, Any] = {
        "format": _file_format,
        "rotation": rotation,
        # loguru counts rotated files only; Winston's maxFiles counts the active one too.
        "retention": retention - 1,
        "encoding": "utf-8",
        # Written in the calling thread: a line-buffered append costs ~10 µs, while
        # enqueue=True (pickling every record through a pipe) costs ~100 µs per record.
        "enqueue": False,
        **common,
    }
    try:
        directory.mkdir(parents=True, exist_ok=True)
        added.append(logger.add(str(directory / "combined.log"), level=level, **options))
        added.append(logger.add(str(directory / "error.log"), level=error_level, **options))
    except (OSError, ValueError) as exc:
        for handler_id in added:
            try:
                logger.remove(handler_id)
            except ValueError:
                pass
        reason = redact(f"{type(exc).__name__}: {exc}")
        return f"file logging disabled: cannot write to log directory {directory} ({reason})"
    _handler_ids.extend(added)
    return None
