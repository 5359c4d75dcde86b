"""A durable local record of what an instance decided and sent while the database was away.

One JSON-lines file per instance in a directory shared by the instances of one host and one
database (``$OPSWATCH_DATA_DIR`` or ``$XDG_DATA_HOME/opswatch``, then ``spool/<database>``).
Every line is flushed and fsync'd before the decision it records takes effect, so a restart or a
crash during the outage loses nothing. The owner holds an exclusive ``flock`` on its file while it
lives (a SIGSTOPped owner still holds it): whoever replays a file whose lock is free knows its
owner is gone and deletes the file after replaying it. Replays are idempotent (dedup keys), so a
file replayed by two instances, or twice, never doubles a message or a history row.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from loguru import logger

from core.notify.outbox import OutboxItem
from core.rules import AlertRecord

__all__ = ["Spool", "SpoolFile", "SpooledItem", "default_spool_dir", "read_spools"]

_TIMES = {f.name for f in fields(AlertRecord) if f.name.endswith(("_at", "since"))}


def default_spool_dir(dsn: str) -> Path:
    """``<data dir>/spool/<database>``: instances of one host and one database share it."""
    base = os.environ.get("OPSWATCH_DATA_DIR")
    if not base:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        base = str(Path(xdg) / "opswatch")
    try:
        parts = urlsplit(dsn)
        where = f"{parts.hostname or ''}:{parts.port or ''}{parts.path}"
    except ValueError:
        where = dsn
    digest = hashlib.sha256(where.encode()).hexdigest()[:16]  # never the DSN itself (credentials)
    return Path(base) / "spool" / digest


def record_json(rec: AlertRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(AlertRecord):
        value = getattr(rec, f.name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif f.name == "transitions":
            value = [t.isoformat() for t in value]
        out[f.name] = value
    return out


def record_from(data: Mapping[str, Any]) -> AlertRecord:
    values = dict(data)
    for name in _TIMES:
        if values.get(name) is not None:
            values[name] = datetime.fromisoformat(values[name])
    values["transitions"] = tuple(datetime.fromisoformat(t) for t in values.get("transitions") or ())
    return AlertRecord(**values)


def fingerprint(rec: AlertRecord | None) -> list[Any] | None:
    """What a replay compares with the stored row: unchanged since the outage began, or not."""
    if rec is None:
        return None
    return [rec.state, rec.fired_at.isoformat() if rec.fired_at else None, rec.announced]


def item_json(item: OutboxItem) -> dict[str, Any]:
    return {
        "dedup_key": item.dedup_key,
        "channel": item.channel,
        "route": item.route,
        "severity": item.severity,
        "kind": item.kind,
        "payload": item.payload,
        "summary": item.summary,
        "alerts": list(item.alerts),
        "target": item.target,
    }


def item_from(data: Mapping[str, Any]) -> OutboxItem:
    return OutboxItem(
        data["dedup_key"],
        data["channel"],
        data["route"],
        data["severity"],
        data["kind"],
        data["payload"],
        data["summary"],
        tuple(data.get("alerts") or ()),
        data.get("target"),
    )


@dataclass
class SpooledItem:
    item: OutboxItem
    status: str = "unsent"  # unsent | sent | dead
    attempts: int = 0
    error: str | None = None
    http_status: int | None = None


@dataclass
class SpoolFile:
    """One instance's spool, folded: per alert the state before the outage and the latest decision."""

    path: Path
    owner: str
    alive: bool  # its owner still holds the lock (running, or paused)
    before: dict[tuple[str, str], list[Any] | None] = field(default_factory=dict)
    records: dict[tuple[str, str], AlertRecord] = field(default_factory=dict)
    transitions: list[dict[str, Any]] = field(default_factory=list)
    items: dict[str, SpooledItem] = field(default_factory=dict)

    def add(self, line: Mapping[str, Any]) -> None:
        kind = line.get("type")
        if kind == "alert":
            key = (str(line["rule"]), str(line["scope"]))
            self.before.setdefault(key, line.get("before"))
            self.records[key] = record_from(line["record"])
        elif kind == "transition":
            self.transitions.append(dict(line))
        elif kind == "item":
            item = item_from(line["item"])
            self.items.setdefault(item.dedup_key, SpooledItem(item))
        elif kind in ("sent", "dead"):
            spooled = self.items.get(str(line["key"]))
            if spooled is not None:
                spooled.status = kind
                spooled.attempts = int(line.get("attempts") or 0)
                spooled.error = line.get("error")
                spooled.http_status = line.get("status")

    @property
    def empty(self) -> bool:
        return not (self.records or self.transitions or self.items)


def _safe_name(instance_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", instance_id)[:120] or "instance"


class Spool:
    """This instance's spool file (created on the first write, removed by :meth:`clear`)."""

    def __init__(self, directory: Path, instance_id: str) -> None:
        self.directory = directory
        self.instance_id = instance_id
        self.path = directory / f"{_safe_name(instance_id)}.jsonl"
        self._file: IO[str] | None = None
        self.failed = False  # a write failed (disk full, read-only): logged once

    def write(self, lines: Iterable[Mapping[str, Any]]) -> None:
        text = "".join(
            json.dumps({"owner": self.instance_id, **line}, ensure_ascii=False) + "\n" for line in lines
        )
        if not text:
            return
        try:
            if self._file is None:
                self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                handle = open(self.path, "a", encoding="utf-8")  # kept open (and locked) while we live
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    handle.close()
                    raise
                self._file = handle
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            if not self.failed:
                logger.error("cannot write the offline spool {}: {}", self.path, exc.strerror or exc)
            self.failed = True

    def clear(self) -> None:
        """Everything spooled is stored in the database now."""
        handle, self._file = self._file, None
        with contextlib.suppress(OSError):
            self.path.unlink()
        if handle is not None:
            handle.close()

    def close(self) -> None:
        handle, self._file = self._file, None
        if handle is not None:
            handle.close()


def read_spools(directory: Path, *, exclude: Path | None = None) -> list[SpoolFile]:
    """Every spool file in ``directory`` (not ``exclude``), oldest first; unreadable lines skipped."""
    try:
        paths = sorted(directory.glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    except OSError:
        return []
    out: list[SpoolFile] = []
    for path in paths:
        if exclude is not None and path == exclude:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                alive = _locked(handle)
                spool = SpoolFile(path, path.stem, alive)
                for raw in handle:
                    try:
                        line = json.loads(raw)
                        spool.owner = str(line.get("owner") or spool.owner)
                        spool.add(line)
                    except (ValueError, KeyError, TypeError):
                        continue  # a torn last line from a crash mid-write
        except OSError:
            continue
        out.append(spool)
    return out


def _locked(handle: IO[str]) -> bool:
    """True when another process holds the file's lock (its owner lives)."""
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return False


def remove(spool: SpoolFile) -> None:
    """Delete a replayed file whose owner is gone."""
    if not spool.alive:
        with contextlib.suppress(OSError):
            spool.path.unlink()
