"""Slack incoming webhooks: Block Kit messages (with a ``text`` fallback) and delivery.

Every message names the severity with an emoji *and* a word, what is wrong and where, the
current value against the threshold, since when, and the rule's runbook hint. The webhook
URL is looked up per route (``slack:<severity>``, falling back to ``default``) at send time
and never appears in a payload, a log line or an error (:func:`core.notify.webhook.post_json`
replaces it with the route).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx

from core.config import SlackConfig
from core.notify.base import AlertInfo, Notification, Rendered, SendResult, target_id
from core.notify.render import headline
from core.notify.render import plain_when as _plain_when
from core.notify.render import span as _span
from core.notify.render import value_with_threshold as _value_with_threshold
from core.notify.webhook import post_json
from core.redact import register_secret
from core.rules import format_duration_human

__all__ = ["SlackNotifier", "render_slack"]

EMOJI = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}
RESOLVED_EMOJI = ":white_check_mark:"
FLAPPING_EMOJI = ":arrows_counterclockwise:"
TEST_EMOJI = ":test_tube:"
RUNBOOK_EMOJI = ":book:"
_SEVERITIES = ("critical", "warning", "info")

_MAX_LINES = 40
_SECTION_CHARS = 2900
_HEADER_CHARS = 150
_TEXT_TITLES = 10


def _esc(text: str) -> str:
    """Slack mrkdwn control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _when(at: datetime) -> str:
    """A Slack date token (shown in the reader's time zone) with a UTC fallback."""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time_secs}}|{_plain_when(at)}>"


def _severity(severity: str) -> str:
    return f"{EMOJI.get(severity, EMOJI['info'])} {severity.capitalize()}"


def _headline(n: Notification) -> str:
    if n.kind == "test":
        icon = TEST_EMOJI
    elif n.kind == "resolved":
        icon = RESOLVED_EMOJI
    elif n.kind == "flapping":
        icon = FLAPPING_EMOJI
    else:
        icon = EMOJI.get(n.severity, EMOJI["info"])
    return f"{icon} {headline(n)}"


def _fallback_text(n: Notification) -> str:
    head = _headline(n)
    if n.kind == "test":
        return f"{head} — {n.note}" if n.note else head
    if n.grouped:
        titles = ", ".join(a.title for a in n.alerts[:_TEXT_TITLES])
        more = f" and {len(n.alerts) - _TEXT_TITLES} more" if len(n.alerts) > _TEXT_TITLES else ""
        return f"{head} — {titles}{more}"
    a = n.alerts[0]
    what = a.description or a.rule
    if n.kind == "resolved":
        fired = f", fired {_plain_when(a.fired_at)}" if a.fired_at else ""
        span = f" after {_span(a)}" if _span(a) else ""
        return f"{head} — {what} (was {a.severity.upper()}{fired}, resolved{span}). Value {a.value_text}"
    if n.kind == "flapping":
        window = format_duration_human(n.flapping_window_s)
        return f"{head} — changed state {a.transitions} times within {window}; notifications paused"
    since = f" since {_plain_when(a.started_at)}" if a.started_at else ""
    return f"{head} — {what}. Value {_value_with_threshold(a)}{since}"


def _header(text: str) -> dict[str, Any]:
    if len(text) > _HEADER_CHARS:
        text = text[: _HEADER_CHARS - 1] + "…"
    return {"type": "header", "text": {"type": "plain_text", "text": text, "emoji": True}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _fields(*pairs: tuple[str, str]) -> dict[str, Any]:
    return {
        "type": "section",
        "fields": [{"type": "mrkdwn", "text": f"*{name}*\n{value}"} for name, value in pairs if value],
    }


def _runbooks(alerts: tuple[AlertInfo, ...]) -> list[dict[str, Any]]:
    seen: dict[str, str] = {}
    for a in alerts:
        if a.runbook and a.rule not in seen:
            seen[a.rule] = a.runbook
    if not seen:
        return []
    if len(alerts) == 1 or (len(seen) == 1 and len({a.rule for a in alerts}) == 1):
        text = f"{RUNBOOK_EMOJI} *Runbook:* {_esc(next(iter(seen.values())))}"
        return [{"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}]
    elements = [
        {"type": "mrkdwn", "text": f"{RUNBOOK_EMOJI} *{_esc(rule)}:* {_esc(hint)}"}
        for rule, hint in list(seen.items())[:10]
    ]
    return [{"type": "context", "elements": elements}]


def _single_blocks(n: Notification) -> list[dict[str, Any]]:
    a = n.alerts[0]
    what = f"*{_esc(a.description or a.rule)}*"
    if n.kind == "resolved":
        span = _span(a)
        blocks = [
            _section(f"{what}\nBack to normal" + (f" after {span}." if span else ".")),
            _fields(
                ("Was", _severity(a.severity)),
                ("Where", _esc(a.scope)),
                ("Value", _esc(a.value_text)),
                ("Threshold", _esc(a.threshold_text)),
                ("Fired", _when(a.fired_at) if a.fired_at else ""),
                ("Resolved", _when(a.resolved_at) if a.resolved_at else ""),
            ),
        ]
        return blocks + _runbooks(n.alerts)
    if n.kind == "repeat" and a.fired_at is not None:
        firing_for = format_duration_human((n.created_at - a.fired_at).total_seconds())
        what += f"\nStill firing after {firing_for} and not acknowledged."
    elif n.kind == "escalated":
        what += f"\nSeverity raised from {(a.previous_severity or '').upper()} to {a.severity.upper()}."
    elif n.kind == "flapping":
        window = format_duration_human(n.flapping_window_s)
        what += (
            f"\nChanged state {a.transitions} times within {window}; "
            "notifications for this alert are paused until it settles."
        )
    blocks = [
        _section(what),
        _fields(
            ("Severity", _severity(a.severity)),
            ("Where", _esc(a.scope)),
            ("Value", _esc(a.value_text)),
            ("Threshold", _esc(a.threshold_text)),
            ("Since", _when(a.started_at) if a.started_at else ""),
        ),
    ]
    return blocks + _runbooks(n.alerts)


def _group_line(n: Notification, a: AlertInfo) -> str:
    title = f"*{_esc(a.title)}*"
    if n.kind == "resolved":
        span = _span(a)
        when = f" {_when(a.resolved_at)}" if a.resolved_at else ""
        return f"• {title}: {_esc(a.value_text)}, resolved{when}" + (f" after {span}" if span else "")
    since = f" since {_when(a.started_at)}" if a.started_at else ""
    return f"• {title}: {_esc(_value_with_threshold(a))}{since}"


def _group_blocks(n: Notification) -> list[dict[str, Any]]:
    lines = [_group_line(n, a) for a in n.alerts[:_MAX_LINES]]
    if len(n.alerts) > _MAX_LINES:
        lines.append(f"… and {len(n.alerts) - _MAX_LINES} more")
    blocks: list[dict[str, Any]] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) + 1 > _SECTION_CHARS:
            blocks.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line[:_SECTION_CHARS])
        size += len(line) + 1
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    return blocks + _runbooks(n.alerts)


def render_slack(n: Notification, *, username: str | None = None) -> dict[str, Any]:
    """The webhook JSON for ``n``."""
    blocks = [_header(_headline(n))]
    if n.kind == "test":
        blocks.append(_section(_esc(n.note or "If you can read this, opswatch reaches this channel.")))
    elif n.grouped:
        blocks.extend(_group_blocks(n))
    else:
        blocks.extend(_single_blocks(n))
    payload: dict[str, Any] = {"text": _esc(_fallback_text(n)), "blocks": blocks}
    if username:
        payload["username"] = username
    return payload


class SlackNotifier:
    """Routes ``slack:critical|warning|info``; a severity without a webhook uses ``default``."""

    channel = "slack"

    def __init__(self, config: SlackConfig, http: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.http = http
        hooks = config.webhooks
        for url in (hooks.critical, hooks.warning, hooks.info, hooks.default):
            if url:
                register_secret(url)

    def _url(self, route: str) -> str | None:
        channel, _, severity = route.partition(":")
        if channel != self.channel or not self.config.enabled:
            return None
        return self.config.webhooks.for_severity(severity)

    def routes(self, severity: str) -> tuple[str, ...]:
        route = f"{self.channel}:{severity}"
        return (route,) if self._url(route) else ()

    def targets(self) -> dict[str, str]:
        found = {f"{self.channel}:{sev}": self._url(f"{self.channel}:{sev}") for sev in _SEVERITIES}
        return {route: target_id(url) for route, url in found.items() if url}

    def render(self, notification: Notification) -> list[Rendered]:
        if notification.kind == "acknowledged":  # a chat post per acknowledgement would be noise
            return []
        return [Rendered(render_slack(notification, username=self.config.username))]

    async def send(self, route: str, payload: Mapping[str, Any]) -> SendResult:
        url = self._url(route)
        if url is None:
            return SendResult(False, error=f"no Slack webhook configured for {route}", permanent=True)
        return await post_json(self.http, url, payload, route=route, timeout_s=self.config.timeout)
