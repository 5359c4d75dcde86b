"""Generic JSON webhooks, and the JSON POST every HTTP notifier shares.

``WebhookNotifier`` is the smallest complete notifier: it POSTs
``{"kind", "severity", "alerts": [...], "text", "key", "created_at"}`` to each configured
webhook (route ``webhook:<name>``) that takes the severity. ``key`` is the notification's
deterministic id, for receivers that want to drop a duplicate after a timed-out retry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any

import httpx

from core.config import WebhookConfig, is_secret_header
from core.notify.base import Notification, Rendered, SendResult, parse_retry_after, target_id
from core.notify.render import alert_json, compose, plain_text
from core.redact import MASK, redact, register_secret
from core.safe_text import first_line

__all__ = ["WebhookNotifier", "post_json", "render_webhook"]


def render_webhook(n: Notification) -> dict[str, Any]:
    return {
        "kind": n.kind,
        "severity": n.severity,
        "alerts": [alert_json(a) for a in n.alerts],
        "text": plain_text(compose(n)),
        "key": n.key,
        "created_at": n.created_at.astimezone(UTC).isoformat(),
    }


class WebhookNotifier:
    """Routes ``webhook:<name>``, one per configured webhook that takes the severity."""

    channel = "webhook"

    def __init__(self, hooks: Sequence[WebhookConfig], http: httpx.AsyncClient | None = None) -> None:
        self.hooks = {hook.name: hook for hook in hooks}
        self.http = http
        for hook in hooks:
            for secret in (hook.url, *_secret_values(hook.headers)):
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
        hide = _secret_values(hook.headers)
        return await post_json(
            self.http, hook.url, payload, route=route, timeout_s=hook.timeout, headers=hook.headers, hide=hide
        )


def _secret_values(headers: Mapping[str, str]) -> list[str]:
    """Credential header values, and the token alone (``Bearer <token>``)."""
    values: list[str] = []
    for name, value in headers.items():
        if is_secret_header(name) and value:
            values.append(value)
            token = value.split()[-1]
            if token != value and len(token) >= 6:
                values.append(token)
    return values


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
