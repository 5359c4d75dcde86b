"""PagerDuty Events API v2: one ``trigger`` per alert, ``acknowledge`` when an operator
acknowledges it in opswatch (so PagerDuty stops escalating), ``resolve`` when it clears.

Every alert has a stable ``dedup_key`` (``opswatch/<rule>/<scope>``, see
:func:`core.notify.render.alert_key`): repeats, escalations and re-sends from any instance
update the same PagerDuty alert, and the resolved message closes it. A grouped notification
becomes one event per alert (one outbox row each, so one failure does not resend the rest).
A test message is one outbox row holding two events, sent in order: a trigger and the resolve
of its own alert (a retry repeats both; PagerDuty deduplicates the trigger). The routing key is
added at send time: it is never stored in the outbox, logged or shown in an error.

Events fit the Events API v2 limits: ``summary`` 1,024 characters, ``dedup_key`` 255, ``source``,
``component`` and ``class`` 255; ``custom_details`` hold text bounded by
:func:`core.notify.render.inert`, so an event stays far below the 512 KB request limit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import httpx

from core.config import PagerDutyConfig
from core.notify.base import AlertInfo, HttpNotifier, Notification, Rendered, SendResult, target_id
from core.notify.render import alert_key, headline, inert, plain_when, value_with_threshold
from core.notify.webhook import post_json
from core.safe_text import display_text, inert_json

__all__ = ["PagerDutyNotifier", "render_pagerduty"]

ROUTE = "pagerduty:default"
CLIENT = "opswatch"
_SEVERITIES = {"critical": "critical", "warning": "warning", "info": "info"}
_SUMMARY_CHARS = 1024
_KEY_CHARS = 255
_NAME_CHARS = 255  # source, component, class


def _dedup_key(alert: AlertInfo) -> str:
    key = alert_key(alert)
    if len(key) <= _KEY_CHARS:
        return key
    return f"opswatch/{hashlib.sha256(key.encode()).hexdigest()}"


def _summary(n: Notification, alert: AlertInfo) -> str:
    head = headline(replace(n, alerts=(alert,)))
    what = alert.description or alert.rule
    return display_text(f"{head} — {what}. Value {value_with_threshold(alert)}", _SUMMARY_CHARS)


def _details(n: Notification, alert: AlertInfo) -> dict[str, Any]:
    details: dict[str, Any] = {
        "kind": n.kind,
        "rule": alert.rule,
        "scope": alert.scope,
        "description": alert.description,
        "value": alert.value_text,
        "threshold": alert.threshold_text,
        "since": plain_when(alert.started_at) if alert.started_at else None,
        "fired_at": plain_when(alert.fired_at) if alert.fired_at else None,
        "runbook": alert.runbook,
        "previous_severity": alert.previous_severity,
        "transitions": alert.transitions if n.kind == "flapping" else None,
    }
    return {k: v for k, v in details.items() if v not in (None, "")}


def _trigger(n: Notification, alert: AlertInfo) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "summary": _summary(n, alert),
        "severity": _SEVERITIES.get(alert.severity, "warning"),
        "source": display_text(alert.scope or CLIENT, _NAME_CHARS),
        "component": display_text(alert.rule, _NAME_CHARS),
        "class": display_text(alert.metric or alert.rule, _NAME_CHARS),
        "custom_details": _details(n, alert),
    }
    when = alert.started_at or alert.fired_at
    if when is not None:
        payload["timestamp"] = when.isoformat()
    return {"event_action": "trigger", "dedup_key": _dedup_key(alert), "payload": payload, "client": CLIENT}


def _resolve(dedup_key: str) -> dict[str, Any]:
    return {"event_action": "resolve", "dedup_key": dedup_key}


def render_pagerduty(n: Notification) -> list[Rendered]:
    """The events for ``n`` (without the routing key); ``suffix`` keeps one outbox row per event."""
    return [Rendered(inert_json(r.payload), r.suffix) for r in _render(inert(n))]


def _render(n: Notification) -> list[Rendered]:
    if n.kind == "test":
        key = f"opswatch/test/{hashlib.sha256(n.key.encode()).hexdigest()[:16]}"
        summary = display_text(f"{headline(n)} — {n.note}" if n.note else headline(n), _SUMMARY_CHARS)
        trigger = {
            "event_action": "trigger",
            "dedup_key": key,
            "payload": {
                "summary": summary,
                "severity": _SEVERITIES.get(n.severity, "info"),
                "source": CLIENT,
                "component": "test",
            },
            "client": CLIENT,
        }
        return [Rendered({"events": [trigger, _resolve(key)]})]
    if n.kind == "resolved":
        return [Rendered(_resolve(_dedup_key(a)), _dedup_key(a)) for a in n.alerts]
    if n.kind == "acknowledged":
        return [Rendered({"event_action": "acknowledge", "dedup_key": _dedup_key(a)}, _dedup_key(a))
                for a in n.alerts]  # fmt: skip
    return [Rendered(_trigger(n, a), _dedup_key(a)) for a in n.alerts]


def _describe(response: httpx.Response) -> str:
    """PagerDuty's ``{"status", "message", "errors": [...]}`` as one line."""
    try:
        data = response.json()
    except ValueError:
        return response.text
    if not isinstance(data, dict):
        return response.text
    parts = [str(data.get(k)) for k in ("status", "message") if data.get(k)]
    errors = data.get("errors")
    if isinstance(errors, list) and errors:
        parts.append("; ".join(str(e) for e in errors[:3]))
    return ": ".join(parts) or response.text


class PagerDutyNotifier(HttpNotifier[PagerDutyConfig]):
    """One route, ``pagerduty:default``, for the configured severities (critical by default)."""

    channel = "pagerduty"

    def routes(self, severity: str) -> tuple[str, ...]:
        enabled = self.config.enabled and severity in self.config.severities
        return (ROUTE,) if enabled else ()

    def targets(self) -> dict[str, str]:
        key = self.config.routing_key
        return {ROUTE: target_id(self.config.url, key)} if key else {}

    def render(self, notification: Notification) -> list[Rendered]:
        return render_pagerduty(notification)

    async def send(self, route: str, payload: Mapping[str, Any]) -> SendResult:
        key = self.config.routing_key
        if route != ROUTE or not key:
            return SendResult(False, error=f"no PagerDuty routing key configured for {route}", permanent=True)
        events = payload.get("events")
        batch = events if isinstance(events, list) else [payload]
        if not batch:
            return SendResult(False, error="no event to send", permanent=True)
        status = None
        for event in batch:
            result = await post_json(
                self.http,
                self.config.url,
                {"routing_key": key, **event},
                route=route,
                timeout_s=self.config.timeout,
                hide=[key],
                describe=_describe,
            )
            if not result.ok:
                return result
            status = result.status
        return SendResult(True, status=status, extra={"dedup_key": payload.get("dedup_key")})
