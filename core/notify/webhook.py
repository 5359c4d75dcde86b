"""Generic JSON webhooks, and the JSON POST every HTTP notifier shares.

``WebhookNotifier`` is the smallest complete notifier: it POSTs
``{"version", "kind", "severity", "alerts": [...], "alert_count", "text", "key", "created_at"}``
(documented in the README, "Generic webhook payload") to each configured webhook (route
``webhook:<name>``) that takes the severity. Delivery is at least once: every attempt of one
notification to one webhook carries the same ``Idempotency-Key`` header, so a receiver can drop
the duplicate sent after a timed-out or interrupted attempt.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any

import httpx

from core.config import WebhookConfig, header_secrets, secret_values
from core.notify.base import Notification, Rendered, SendResult, parse_retry_after, target_id
from core.notify.render import alert_json, compose, inert, plain_text
from core.redact import MASK, redact, register_secret
from core.safe_text import display_text, first_line, inert_json

__all__ = ["WEBHOOK_VERSION", "WebhookNotifier", "idempotency_key", "post_json", "render_webhook"]

WEBHOOK_VERSION = 1
"""Bumped only when a field changes meaning or goes away; new fields may appear in any version."""
MAX_ALERTS = 100  # per payload; ``alert_count`` has the total
TEXT_CHARS = 20_000
_KEY_NAMESPACE = uuid.UUID("5f0b6a52-3f0e-4d1e-9a43-6f7073776174")


def _safe_key(key: str) -> str:
    """The notification key, or its digest when the key holds text a receiver should not get."""
    return key if display_text(key, 500) == key else f"sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def idempotency_key(key: str, route: str) -> str:
    """The ``Idempotency-Key`` of the payload with ``key`` sent to ``route``: a UUID v5."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"{key}|{route}"))


def render_webhook(n: Notification) -> dict[str, Any]:
    n = inert(n)
    payload = {
        "version": WEBHOOK_VERSION,
        "kind": n.kind,
        "severity": n.severity,
        "alerts": [alert_json(a) for a in n.alerts[:MAX_ALERTS]],
        "alert_count": len(n.alerts),
        "text": display_text(plain_text(compose(n)), TEXT_CHARS, multiline=True),
        "key": _safe_key(n.key),
        "created_at": n.created_at.astimezone(UTC).isoformat(),
    }
    result: dict[str, Any] = inert_json(payload)
    return result


class WebhookNotifier:
    """Routes ``webhook:<name>``, one per configured webhook that takes the severity."""

    channel = "webhook"

    def __init__(self, hooks: Sequence[WebhookConfig], http: httpx.AsyncClient | None = None) -> None:
        self.hooks = {hook.name: hook for hook in hooks}
        self.http = http
        for hook in hooks:
            for secret in secret_values(hook):
                register_secret(secret)

    def routes(self, severity: str) -> tuple[str, ...]:
        return tuple(f"{self.channel}:{name}" for name, h in self.hooks.items() if severity in h.severities)

    def targets(self) -> dict[str, str]:
        return {f"{self.channel}:{name}": target_id(hook.url) for name, hook in self.hooks.items()}

    def render(self, notification: Notification) -> list[Rendered]:
        if notification.kind == "acknowledged":  # a chat post per acknowledgement would be noise
            return []
        return [Rendered(render_webhook(notification))]

    async def send(self, route: str, payload: Mapping[str, Any]) -> SendResult:
        channel, _, name = route.partition(":")
        hook = self.hooks.get(name) if channel == self.channel else None
        if hook is None:
            return SendResult(False, error=f"no webhook configured for {route}", permanent=True)
        hide = header_secrets(hook.headers)
        headers = dict(hook.headers)
        key = payload.get("key")
        if isinstance(key, str) and key:
            headers = {k: v for k, v in headers.items() if k.lower() != "idempotency-key"}
            headers["Idempotency-Key"] = idempotency_key(key, route)
        return await post_json(
            self.http, hook.url, payload, route=route, timeout_s=hook.timeout, headers=headers, hide=hide
        )


def _body_text(response: httpx.Response) -> str:
    return response.text


async def post_json(
    http: httpx.AsyncClient | None,
    url: str,
    body: Mapping[str, Any],
    *,
    route: str,
    timeout_s: float,
    headers: Mapping[str, str] | None = None,
    hide: Iterable[str] = (),
    describe: Callable[[httpx.Response], str] = _body_text,
) -> SendResult:
    """POST ``body``; classify the outcome for the outbox without revealing ``url`` or ``hide``.

    2xx is delivered; 429/503 carry ``Retry-After``; other 4xx (but 408, 425, 429) are permanent.
    ``describe`` turns an error response into text (the first line is kept).
    """
    if http is None:
        raise RuntimeError(f"sending to {route} needs an HTTP client")
    secrets = [s for s in (url, *hide) if s]

    def scrub(text: str, limit: int) -> str:
        for secret in secrets:
            text = text.replace(secret, route if secret == url else MASK)
        return first_line(redact(text), limit)

    try:
        response = await http.post(url, json=dict(body), headers=dict(headers or {}), timeout=timeout_s)
    except httpx.TimeoutException:
        return SendResult(False, error=f"timed out after {timeout_s:g} s")
    except httpx.HTTPError as exc:
        if isinstance(exc, httpx.ConnectError):
            reason = "connection failed"
        elif isinstance(exc, httpx.RemoteProtocolError):
            reason = "server closed the connection"
        else:
            reason = type(exc).__name__
        detail = str(exc)
        text = f"{reason}: {detail}" if detail and detail not in reason else reason
        return SendResult(False, error=scrub(text, 200))
    status = response.status_code
    if 200 <= status < 300:
        return SendResult(True, status=status)
    try:
        said = describe(response)
    except Exception:
        said = ""
    text = scrub(said, 160) or response.reason_phrase
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if status in (429, 503) else None
    permanent = 400 <= status < 500 and status not in (408, 425, 429)
    return SendResult(
        False, status=status, error=f"HTTP {status}: {text}", retry_after=retry_after, permanent=permanent
    )
