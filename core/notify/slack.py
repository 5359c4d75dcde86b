"""Slack incoming webhooks: Block Kit messages (with a ``text`` fallback) and delivery.

Every message names the severity with an emoji *and* a word, what is wrong and where, the
current value against the threshold, since when, and the rule's runbook hint. The webhook
URL is looked up per route (``slack:<severity>``, falling back to ``default``) at send time
and never appears in a payload, a log line or an error (:func:`core.notify.webhook.post_json`
replaces it with the route).

Text is made inert and bounded by :func:`core.notify.render.inert`, then every block is fitted
to the Block Kit limits (:func:`fit_blocks`). Should Slack still answer ``400 invalid_blocks``
(it refuses blocks for reasons of its own, such as an unknown emoji), the same message goes
again as plain ``text`` without blocks instead of being dead-lettered.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from loguru import logger

from core.config import SlackConfig
from core.durations import format_duration_human
from core.notify.base import AlertInfo, HttpNotifier, Notification, Rendered, SendResult, target_id
from core.notify.render import alert_fields, headline, inert, status_note
from core.notify.render import plain_when as _plain_when
from core.notify.render import span as _span
from core.notify.render import value_with_threshold as _value_with_threshold
from core.notify.webhook import post_json
from core.safe_text import ELLIPSIS, display_text, inert_json

__all__ = ["SlackNotifier", "fit_blocks", "plain_fallback", "render_slack"]

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

# Block Kit limits (https://api.slack.com/reference/block-kit/blocks).
MAX_BLOCKS = 50
SECTION_TEXT_CHARS = 3000
MAX_FIELDS = 10
FIELD_CHARS = 2000
MAX_CONTEXT_ELEMENTS = 10
CONTEXT_CHARS = 3000
TEXT_CHARS = 3000  # Slack takes 40,000 in ``text``; a notification needs far less
USERNAME_CHARS = 80
_REFUSED_BLOCKS = ("invalid_blocks", "invalid_blocks_format")


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


def cut_mrkdwn(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, ending in "…" when cut, never inside a
    ``<...>`` token (link, date, mention) or an ``&amp;``-style entity."""
    if len(text) <= limit:
        return text
    head = text[: max(0, limit - len(ELLIPSIS))]
    opened = head.rfind("<")
    if opened > head.rfind(">"):
        head = head[:opened]
    amp = head.rfind("&")
    if amp > head.rfind(";") and len(head) - amp < 6:
        head = head[:amp]
    return head + ELLIPSIS


def _fit_text(obj: Any, limit: int) -> dict[str, Any] | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str) or not obj["text"]:
        return None
    return {**obj, "text": cut_mrkdwn(obj["text"], limit)}


def _fit_block(block: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    if kind == "header":
        text = _fit_text(block.get("text"), _HEADER_CHARS)
        return None if text is None else {**block, "text": text}
    if kind == "section":
        fitted: dict[str, Any] = {k: v for k, v in block.items() if k not in ("text", "fields")}
        text = _fit_text(block.get("text"), SECTION_TEXT_CHARS)
        fields = [f for f in (_fit_text(f, FIELD_CHARS) for f in block.get("fields") or ()) if f]
        if text is not None:
            fitted["text"] = text
        if fields:
            fitted["fields"] = fields[:MAX_FIELDS]
        return fitted if text is not None or fields else None
    if kind == "context":
        elements = [e for e in (_fit_text(e, CONTEXT_CHARS) for e in block.get("elements") or ()) if e]
        return {**block, "elements": elements[:MAX_CONTEXT_ELEMENTS]} if elements else None
    return dict(block)


def fit_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``blocks`` within the Block Kit limits: texts cut with "…", at most 10 fields and 10 context
    elements, empty blocks dropped, at most 50 blocks (the last one says how many were left out)."""
    fitted = [b for b in (_fit_block(block) for block in blocks) if b is not None]
    if len(fitted) > MAX_BLOCKS:
        dropped = len(fitted) - MAX_BLOCKS + 1
        fitted = [*fitted[: MAX_BLOCKS - 1], _section(f"{ELLIPSIS} {dropped} more block(s) left out")]
    return fitted


def _texts(objs: Any) -> list[str]:
    items = objs if isinstance(objs, list) else [objs]
    return [o["text"] for o in items if isinstance(o, dict) and isinstance(o.get("text"), str) and o["text"]]


def plain_fallback(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The message of a Block Kit payload as ``text`` alone: header, sections, fields, context."""
    lines: list[str] = []
    for block in payload.get("blocks") or ():
        if isinstance(block, dict):
            lines += _texts(block.get("text"))
            lines += [field.replace("*\n", "*: ", 1) for field in _texts(block.get("fields"))]
            lines += _texts(block.get("elements"))
    text = "\n".join(lines) or str(payload.get("text") or "opswatch notification")
    plain: dict[str, Any] = {"text": cut_mrkdwn(text, TEXT_CHARS)}
    if payload.get("username"):
        plain["username"] = payload["username"]
    return plain


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
    fields = _fields(*alert_fields(n, a, severity=_severity, text=_esc, when=_when))
    if n.kind == "resolved":
        span = _span(a)
        what += "\nBack to normal" + (f" after {span}." if span else ".")
    elif (note := status_note(n, a)) is not None:
        what += f"\n{note}"
    blocks = [_section(what), fields]
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
    """The webhook JSON for ``n``, within the Block Kit limits and free of control characters."""
    n = inert(n)
    blocks = [_header(_headline(n))]
    if n.kind == "test":
        blocks.append(_section(_esc(n.note or "If you can read this, opswatch reaches this channel.")))
    elif n.grouped:
        blocks.extend(_group_blocks(n))
    else:
        blocks.extend(_single_blocks(n))
    payload: dict[str, Any] = {
        "text": cut_mrkdwn(_esc(_fallback_text(n)), TEXT_CHARS),
        "blocks": fit_blocks(blocks),
    }
    if username:
        payload["username"] = display_text(username, USERNAME_CHARS)
    result: dict[str, Any] = inert_json(payload)
    return result


class SlackNotifier(HttpNotifier[SlackConfig]):
    """Routes ``slack:critical|warning|info``; a severity without a webhook uses ``default``."""

    channel = "slack"

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
        result = await post_json(self.http, url, payload, route=route, timeout_s=self.config.timeout)
        if not (result.status == 400 and payload.get("blocks") and _refused_blocks(result.error)):
            return result
        logger.bind(route=route).warning(
            "Slack refused the blocks of a message to {} ({}); sending it as plain text", route, result.error
        )
        plain = await post_json(
            self.http, url, plain_fallback(payload), route=route, timeout_s=self.config.timeout
        )
        if plain.ok:
            return SendResult(True, status=plain.status, extra={"fallback": "plain_text"})
        return plain


def _refused_blocks(error: str | None) -> bool:
    """Slack's 400 body for blocks it will not take: ``invalid_blocks`` / ``invalid_blocks_format``."""
    said = (error or "").removeprefix("HTTP 400:").split()
    return bool(said) and said[0] in _REFUSED_BLOCKS
