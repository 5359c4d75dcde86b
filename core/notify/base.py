"""What every notifier shares: the message model, the Notifier interface, send results.

The engine describes *what* to say as a :class:`Notification`; each notifier renders it to
its own payload (stored in the outbox before anything is sent) and later sends a stored
payload to a route such as ``slack:critical``. Routes name a configured target, never its
address: URLs and keys are looked up from the config at send time.
"""

from __future__ import annotations

import email.utils
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, Protocol, TypeVar

import httpx
from pydantic import BaseModel

from core.config import register_secrets

__all__ = [
    "KINDS",
    "AlertInfo",
    "Notification",
    "Notifier",
    "Rendered",
    "SendResult",
    "epoch_ms",
    "log_fields",
    "parse_retry_after",
    "summary_line",
    "target_id",
]

KINDS = ("firing", "grouped", "resolved", "repeat", "escalated", "flapping", "test", "acknowledged")
"""``acknowledged`` is rendered only by channels with an acknowledge of their own (PagerDuty)."""


def epoch_ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


@dataclass(frozen=True)
class AlertInfo:
    """One alert inside a notification, with display text already formatted."""

    rule: str
    scope: str
    severity: str
    metric: str
    value: float | None
    value_text: str
    threshold_text: str
    description: str
    runbook: str | None
    started_at: datetime | None
    fired_at: datetime | None
    resolved_at: datetime | None = None
    previous_severity: str | None = None  # escalations
    transitions: int = 0  # flapping: flips within the window

    @property
    def title(self) -> str:
        return f"{self.rule} on {self.scope}" if self.scope else self.rule

    @property
    def incident_key(self) -> str:
        """Stable per firing episode (PagerDuty-style dedup key)."""
        fired = epoch_ms(self.fired_at) if self.fired_at else 0
        return f"{self.rule}/{self.scope}/{fired}"


@dataclass(frozen=True)
class Notification:
    kind: str  # one of KINDS
    severity: str  # route severity: critical | warning | info
    alerts: tuple[AlertInfo, ...]
    key: str  # deterministic; the outbox dedup key is ``key|route[|suffix]``
    created_at: datetime
    note: str = ""  # free text (test messages)
    flapping_window_s: float = 0.0

    @property
    def grouped(self) -> bool:
        return len(self.alerts) > 1


@dataclass(frozen=True)
class Rendered:
    """One payload to store; ``suffix`` distinguishes several payloads of one notification."""

    payload: Mapping[str, Any]
    suffix: str = ""


@dataclass(frozen=True)
class SendResult:
    ok: bool
    status: int | None = None
    error: str | None = None  # secret-free, one line
    retry_after: float | None = None  # seconds, from a 429/503 Retry-After
    permanent: bool = False  # retrying cannot help (e.g. 404 webhook gone)
    extra: Mapping[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    """A channel (Slack, PagerDuty, email, webhook). Rendering is pure; ``send`` does the I/O."""

    channel: str

    def routes(self, severity: str) -> tuple[str, ...]:
        """Routes (``channel:target``) that take ``severity``; empty when not configured."""
        ...

    def targets(self) -> Mapping[str, str]:
        """Every route it can send to, with the :func:`target_id` of that route's destination."""
        ...

    def render(self, notification: Notification) -> list[Rendered]: ...

    async def send(self, route: str, payload: Mapping[str, Any]) -> SendResult: ...


def target_id(*parts: object) -> str:
    """A short fingerprint of a destination (URL, routing key...), stored with each outbox row.

    Instances sharing the outbox may give one route different destinations; a row is only sent
    by an instance whose destination for the route has the same fingerprint. The parts are
    credentials, so only this one-way digest is ever stored.
    """
    text = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(f"opswatch-target\x1f{text}".encode()).hexdigest()[:16]


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def summary_line(n: Notification) -> str:
    """One line for outbox listings: ``CRITICAL firing: api-down on checkout``."""
    label = f"{n.severity.upper()} {n.kind}"
    if n.kind == "test":
        return f"{label}: {n.note}" if n.note else label
    titles = [a.title for a in n.alerts]
    if len(titles) == 1:
        return f"{label}: {titles[0]}"
    shown = ", ".join(titles[:5]) + (f", +{len(titles) - 5} more" if len(titles) > 5 else "")
    return f"{label}: {len(titles)} alerts ({shown})"


_LOG_FIELD_CHARS = 200


def _joined(values: Iterable[str]) -> str:
    text = ",".join(dict.fromkeys(v for v in values if v))
    return text if len(text) <= _LOG_FIELD_CHARS else text[: _LOG_FIELD_CHARS - 1] + "…"


def log_fields(alerts: Iterable[str], severities: Iterable[str]) -> dict[str, str]:
    """``rule``, ``scope`` and ``severity`` log fields for alerts given as ``rule/scope`` (the
    outbox's ``alerts`` column); several values are comma-separated, each listed once."""
    pairs = [a.partition("/") for a in alerts]
    return {
        "rule": _joined(rule for rule, _, _ in pairs),
        "scope": _joined(scope for _, _, scope in pairs),
        "severity": _joined(severities),
    }


_Section = TypeVar("_Section", bound=BaseModel)


class HttpNotifier(Generic[_Section]):
    """Set-up shared by notifiers posting over HTTP: their config section, client, secrets."""

    def __init__(self, config: _Section, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.http = http
        register_secrets(config)
