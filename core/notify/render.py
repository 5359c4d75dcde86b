"""Channel-neutral wording of a notification, shared by Slack, email, PagerDuty and webhooks.

Every notifier renders through :func:`inert` first: rule names, endpoint names, descriptions,
runbooks and notes are untrusted, so each text field of the notification loses terminal, C1
and bidi control characters and is cut (with "…") to :data:`LIMITS`. What a channel then
builds is bounded by construction; each channel still fits its output to its receiver's own
limits (Slack Block Kit, PagerDuty Events v2, email headers) and passes it through
:func:`core.safe_text.inert_json`.

:func:`headline` is the one-line title every channel uses (Slack adds an emoji);
:func:`compose` lays a notification out as a :class:`Message` (lead paragraphs, labelled
fields for one alert, one line per alert for a group, runbook hints) that a channel turns
into plain text (:func:`plain_text`) or its own markup. Text in a :class:`Message` is
single-line and free of control characters, but not escaped for any markup.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from core.durations import format_duration_human
from core.notify.base import AlertInfo, Notification, log_fields, summary_line
from core.safe_text import display_text

__all__ = [
    "LIMITS",
    "Limits",
    "Message",
    "alert_fields",
    "alert_json",
    "alert_key",
    "compose",
    "describe",
    "headline",
    "inert",
    "plain_text",
    "plain_when",
    "span",
    "status_note",
    "titles",
    "value_with_threshold",
]

_FIELD_CHARS = 500
_LINE_CHARS = 1000


@dataclass(frozen=True)
class Limits:
    """Longest text (characters) a notification may carry into any channel, per field."""

    name: int = 100  # rule names, severities (config names are at most 100)
    scope: int = 200  # endpoint names as metric sources report them
    text: int = 200  # metric, value and threshold text
    description: int = 2000  # rule description; multi-line
    runbook: int = 2000  # multi-line
    note: int = 2000  # test message text; multi-line


LIMITS = Limits()


def _line(value: str, limit: int) -> str:
    return display_text(value, limit)


def _block(value: str, limit: int) -> str:
    return display_text(value, limit, multiline=True)


def _inert_alert(a: AlertInfo) -> AlertInfo:
    return replace(
        a,
        rule=_line(a.rule, LIMITS.name),
        scope=_line(a.scope, LIMITS.scope),
        severity=_line(a.severity, LIMITS.name),
        metric=_line(a.metric, LIMITS.text),
        value_text=_line(a.value_text, LIMITS.text),
        threshold_text=_line(a.threshold_text, LIMITS.text),
        description=_block(a.description, LIMITS.description),
        runbook=None if a.runbook is None else _block(a.runbook, LIMITS.runbook),
        previous_severity=None if a.previous_severity is None else _line(a.previous_severity, LIMITS.name),
    )


def inert(n: Notification) -> Notification:
    """``n`` with every text field free of control characters and within :data:`LIMITS`."""
    return replace(
        n,
        severity=_line(n.severity, LIMITS.name),
        alerts=tuple(_inert_alert(a) for a in n.alerts),
        note=_block(n.note, LIMITS.note),
    )


def plain_when(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def span(alert: AlertInfo) -> str:
    """How long a resolved alert lasted (``7m 3s``); empty when unknown."""
    start = alert.started_at or alert.fired_at
    if start is None or alert.resolved_at is None:
        return ""
    return format_duration_human((alert.resolved_at - start).total_seconds())


def value_with_threshold(alert: AlertInfo) -> str:
    return (
        f"{alert.value_text} (threshold {alert.threshold_text})" if alert.threshold_text else alert.value_text
    )


def headline(n: Notification) -> str:
    """``CRITICAL: api-down on checkout``, ``RESOLVED: 3 alerts``, ``TEST (WARNING): ...``."""
    sev = n.severity.upper()
    count = len(n.alerts)
    subject = n.alerts[0].title if count == 1 else f"{count} alerts"
    if n.kind == "test":
        return f"TEST ({sev}): opswatch test message"
    if n.kind == "resolved":
        return f"RESOLVED: {subject}"
    if n.kind == "repeat":
        return f"{sev} (still firing): {subject}"
    if n.kind == "flapping":
        return f"FLAPPING ({sev}): {subject}"
    if n.kind == "escalated":
        previous = (n.alerts[0].previous_severity or "").upper()
        return f"{sev} (escalated from {previous}): {subject}"
    return f"{sev}: {subject}" if count == 1 else f"{sev}: {count} alerts firing"


def titles(n: Notification, shown: int = 3) -> str:
    """``api-down on ep0, api-down on ep1, +8 more``."""
    names = [a.title for a in n.alerts]
    more = f", +{len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def alert_key(alert: AlertInfo) -> str:
    """Stable per alert (rule and scope), the same across repeats, instances and restarts."""
    return f"opswatch/{alert.rule}/{alert.scope}" if alert.scope else f"opswatch/{alert.rule}"


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at is not None else None


def alert_json(alert: AlertInfo) -> dict[str, Any]:
    """One alert as JSON-safe data (timestamps ISO 8601 UTC; a non-finite value becomes null)."""
    value = alert.value if alert.value is not None and math.isfinite(alert.value) else None
    return {
        "id": alert_key(alert),
        "rule": alert.rule,
        "scope": alert.scope,
        "severity": alert.severity,
        "metric": alert.metric,
        "value": value,
        "value_text": alert.value_text,
        "threshold_text": alert.threshold_text,
        "description": alert.description,
        "runbook": alert.runbook,
        "started_at": _iso(alert.started_at),
        "fired_at": _iso(alert.fired_at),
        "resolved_at": _iso(alert.resolved_at),
        "previous_severity": alert.previous_severity,
        "transitions": alert.transitions,
    }


@dataclass(frozen=True)
class Message:
    headline: str
    lead: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()  # one alert: (label, value)
    items: tuple[tuple[str, str], ...] = ()  # a group: (title, detail) per alert
    more: int = 0  # alerts of a group left out of ``items``
    runbooks: tuple[tuple[str, str], ...] = ()  # (rule, hint); rule is "" when all alerts share it


def _clean(text: str, limit: int = _FIELD_CHARS) -> str:
    return display_text(text, limit)


def _runbooks(alerts: tuple[AlertInfo, ...]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for a in alerts:
        if a.runbook and a.rule not in seen:
            seen[a.rule] = _clean(a.runbook, _LINE_CHARS)
    if len({a.rule for a in alerts}) == 1:
        return tuple(("", hint) for hint in seen.values())
    return tuple((_clean(rule, 100), hint) for rule, hint in seen.items())


def status_note(n: Notification, a: AlertInfo) -> str | None:
    """The sentence a repeat, escalation or flapping notice adds about its alert."""
    if n.kind == "repeat" and a.fired_at is not None:
        firing_for = format_duration_human((n.created_at - a.fired_at).total_seconds())
        return f"Still firing after {firing_for} and not acknowledged."
    if n.kind == "escalated":
        return f"Severity raised from {(a.previous_severity or '').upper()} to {a.severity.upper()}."
    if n.kind == "flapping":
        window = format_duration_human(n.flapping_window_s)
        return (
            f"Changed state {a.transitions} times within {window}; "
            "notifications for this alert are paused until it settles."
        )
    return None


def alert_fields(
    n: Notification,
    a: AlertInfo,
    *,
    severity: Callable[[str], str],
    text: Callable[[str], str],
    when: Callable[[datetime], str],
) -> list[tuple[str, str]]:
    """The labelled values of a one-alert notice, each rendered by the channel's own functions."""

    def at(moment: datetime | None) -> str:
        return when(moment) if moment else ""

    common = [("Where", text(a.scope)), ("Value", text(a.value_text)), ("Threshold", text(a.threshold_text))]
    if n.kind == "resolved":
        was = ("Was", severity(a.severity))
        return [was, *common, ("Fired", at(a.fired_at)), ("Resolved", at(a.resolved_at))]
    return [("Severity", severity(a.severity)), *common, ("Since", at(a.started_at))]


def _single(n: Notification) -> Message:
    a = n.alerts[0]
    lead = [a.description or a.rule]
    if n.kind == "resolved":
        took = span(a)
        lead.append(f"Back to normal after {took}." if took else "Back to normal.")
    elif (note := status_note(n, a)) is not None:
        lead.append(note)
    fields = alert_fields(n, a, severity=str.capitalize, text=str, when=plain_when)
    return Message(
        _clean(headline(n)),
        tuple(_clean(line, _LINE_CHARS) for line in lead),
        tuple((label, _clean(value)) for label, value in fields if value),
        runbooks=_runbooks(n.alerts),
    )


def _item(n: Notification, a: AlertInfo) -> tuple[str, str]:
    if n.kind == "resolved":
        took = span(a)
        when = f" {plain_when(a.resolved_at)}" if a.resolved_at else ""
        detail = f"{a.value_text}, resolved{when}" + (f" after {took}" if took else "")
    else:
        since = f" since {plain_when(a.started_at)}" if a.started_at else ""
        detail = f"{value_with_threshold(a)}{since}"
    return _clean(a.title, 200), _clean(detail)


def compose(n: Notification, *, max_items: int = 100) -> Message:
    """The channel-neutral layout of ``n``; a group lists at most ``max_items`` alerts."""
    if n.kind == "test":
        note = n.note or "If you can read this, opswatch reaches this channel."
        return Message(_clean(headline(n)), (_clean(note, _LINE_CHARS),))
    if len(n.alerts) == 1:
        return _single(n)
    items = tuple(_item(n, a) for a in n.alerts[:max_items])
    return Message(
        _clean(headline(n)),
        items=items,
        more=max(0, len(n.alerts) - max_items),
        runbooks=_runbooks(n.alerts),
    )


def plain_text(m: Message) -> str:
    """The message as plain text (email body, webhook ``text``)."""
    parts = [m.headline]
    if m.lead:
        parts.append("\n".join(m.lead))
    if m.fields:
        width = max(len(label) for label, _ in m.fields) + 1
        parts.append("\n".join(f"{label + ':':<{width}} {value}" for label, value in m.fields))
    if m.items:
        lines = [f"- {title}: {detail}" for title, detail in m.items]
        if m.more:
            lines.append(f"… and {m.more} more")
        parts.append("\n".join(lines))
    if m.runbooks:
        books = [f"Runbook ({rule}): {hint}" if rule else f"Runbook: {hint}" for rule, hint in m.runbooks]
        parts.append("\n".join(books))
    return "\n\n".join(parts) + "\n"


def describe(notifications: Sequence[Notification]) -> tuple[str, dict[str, str]]:
    """What ``notifications`` are about, for a log line: their summaries, and the ``rule``,
    ``scope`` and ``severity`` fields (:func:`core.notify.base.log_fields`)."""
    clean = [inert(n) for n in notifications]
    text = "; ".join(summary_line(n) for n in clean[:5])
    if len(clean) > 5:
        text += f"; +{len(clean) - 5} more"
    alerts = [f"{a.rule}/{a.scope}" if a.scope else a.rule for n in clean for a in n.alerts]
    return text, log_fields(alerts, (n.severity for n in clean))
