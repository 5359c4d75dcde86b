"""Email over SMTP: one multipart (plain text + HTML) message per notification.

The message is rendered when the notification is queued (subject, both bodies, a
deterministic ``Message-ID`` and the ``Date``), so every retry and every instance sends the
same message; sender and recipients are read from the config at send time. Sending uses
the standard library's ``smtplib`` in a worker thread (``aiosmtplib`` is not a dependency)
with one deadline for the whole conversation (connect, STARTTLS, AUTH, DATA), so a send
never outlives the outbox lease. SMTP 5xx replies are permanent, 4xx and network errors are
retried.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import html
import smtplib
import socket
import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from loguru import logger

from core.config import EmailConfig, register_secrets
from core.notify.base import Notification, Rendered, SendResult, target_id
from core.notify.render import Message, compose, inert, plain_text, titles
from core.redact import MASK, redact
from core.safe_text import display_text, first_line, inert_json

__all__ = ["EmailNotifier", "build_message", "render_email", "subject_line"]

ROUTE = "email:default"
_SUBJECT_CHARS = 200
_BODY_CHARS = 1_000_000
_MAX_ITEMS = 200
_COLOURS = {"critical": "#b00020", "warning": "#a15c00", "info": "#1f5fa8", "resolved": "#1b7f3b"}
_KIND_WORDS = {
    "firing": "firing",
    "resolved": "resolved",
    "repeat": "still firing",
    "flapping": "flapping",
    "test": "test",
}


def subject_line(n: Notification) -> str:
    """``[opswatch] CRITICAL firing: 2 alerts - api-down on ep0, api-down on ep1``."""
    sev = n.severity.upper()
    if n.kind == "test":
        return f"[opswatch] {sev} test: opswatch test message"
    if n.kind == "escalated":
        word = f"escalated from {(n.alerts[0].previous_severity or '').upper()}"
    else:
        word = _KIND_WORDS.get(n.kind, n.kind)
    count = len(n.alerts)
    label = f"[opswatch] {sev} {word}: {count} alert{'s' if count != 1 else ''} - {titles(n)}"
    return display_text(label, _SUBJECT_CHARS)


def _html(m: Message, colour: str) -> str:
    e = html.escape
    out = [
        '<!DOCTYPE html><html><body style="font-family:Arial,Helvetica,sans-serif;font-size:14px">',
        f'<h2 style="color:{colour};margin:0 0 12px">{e(m.headline)}</h2>',
    ]
    for i, line in enumerate(m.lead):
        out.append(f"<p><strong>{e(line)}</strong></p>" if i == 0 else f"<p>{e(line)}</p>")
    if m.fields:
        out.append('<table cellpadding="4" style="border-collapse:collapse">')
        out.extend(
            f'<tr><th align="left" style="color:#555">{e(label)}</th><td>{e(value)}</td></tr>'
            for label, value in m.fields
        )
        out.append("</table>")
    if m.items:
        out.append("<ul>")
        out.extend(f"<li><strong>{e(title)}</strong>: {e(detail)}</li>" for title, detail in m.items)
        if m.more:
            out.append(f"<li>… and {m.more} more</li>")
        out.append("</ul>")
    for rule, hint in m.runbooks:
        label = f"Runbook ({e(rule)})" if rule else "Runbook"
        out.append(f"<p>&#128214; <em>{label}:</em> {e(hint)}</p>")
    out.append('<p style="color:#888;font-size:12px">Sent by opswatch.</p></body></html>')
    return "\n".join(out) + "\n"


def _domain(sender: str | None) -> str:
    domain = (sender or "").rpartition("@")[2].strip()
    return domain if domain and all(c.isalnum() or c in ".-" for c in domain) else "opswatch.invalid"


def render_email(n: Notification, sender: str | None = None) -> dict[str, Any]:
    """The stored form of the message: subject, bodies, Message-ID and Date (all inert text)."""
    n = inert(n)
    m = compose(n, max_items=_MAX_ITEMS)
    colour = _COLOURS["resolved"] if n.kind == "resolved" else _COLOURS.get(n.severity, _COLOURS["info"])
    digest = hashlib.sha256(n.key.encode()).hexdigest()[:32]
    payload: dict[str, Any] = inert_json(
        {
            "subject": subject_line(n),
            "text": plain_text(m),
            "html": _html(m, colour),
            "message_id": f"<{digest}.opswatch@{_domain(sender)}>",
            "date": format_datetime(n.created_at),
            "kind": n.kind,
            "severity": n.severity,
        },
        _BODY_CHARS,
    )
    return payload


def build_message(payload: Mapping[str, Any], sender: str, recipients: tuple[str, ...]) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = Address(addr_spec=sender)
    msg["To"] = [Address(addr_spec=r) for r in recipients]
    msg["Subject"] = display_text(str(payload.get("subject") or "[opswatch] notification"), _SUBJECT_CHARS)
    # Headers are single-line text (display_text): a stored payload cannot inject CR/LF.
    msg["Date"] = display_text(str(payload.get("date") or format_datetime(datetime.now(UTC))), 100)
    msg["Message-ID"] = display_text(str(payload["message_id"]), 200)
    msg["Auto-Submitted"] = "auto-generated"
    for header, key in (("X-Opswatch-Severity", "severity"), ("X-Opswatch-Kind", "kind")):
        if payload.get(key):
            msg[header] = display_text(str(payload[key]), 20)
    msg.set_content(str(payload.get("text") or ""))
    if payload.get("html"):
        msg.add_alternative(str(payload["html"]), subtype="html")
    return msg


@functools.cache
def _local_name() -> str:
    return socket.getfqdn()


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds

    def left(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0:
            raise TimeoutError
        return left


class _Client(smtplib.SMTP):
    """``smtplib.SMTP`` whose every read and write gets only what is left of one deadline."""

    def __init__(self, deadline: _Deadline, host: str, port: int, local_hostname: str) -> None:
        self.deadline = deadline
        super().__init__(host, port, local_hostname=local_hostname, timeout=deadline.left())

    def _arm(self) -> None:
        if self.sock is not None:
            self.sock.settimeout(self.deadline.left())

    def send(self, s: Any) -> None:
        self._arm()
        super().send(s)

    def getreply(self) -> tuple[int, bytes]:
        self._arm()
        return super().getreply()


class EmailNotifier:
    """One route, ``email:default``: every configured recipient, for the configured severities."""

    channel = "email"

    def __init__(self, config: EmailConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.ssl_context = ssl_context
        register_secrets(config)

    def routes(self, severity: str) -> tuple[str, ...]:
        return (ROUTE,) if self.config.enabled and severity in self.config.severities else ()

    def targets(self) -> dict[str, str]:
        """Keyed by the recipients: any instance mailing the same people may send the message."""
        cfg = self.config
        if not (cfg.enabled and cfg.sender and cfg.recipients):
            return {}
        return {ROUTE: target_id(*sorted({r.lower() for r in cfg.recipients}))}

    def render(self, notification: Notification) -> list[Rendered]:
        if notification.kind == "acknowledged":  # a chat post per acknowledgement would be noise
            return []
        return [Rendered(render_email(notification, self.config.sender))]

    async def send(self, route: str, payload: Mapping[str, Any]) -> SendResult:
        cfg = self.config
        if route != ROUTE or not cfg.enabled or not cfg.sender or not cfg.recipients:
            return SendResult(False, error=f"no SMTP server configured for {route}", permanent=True)
        try:
            message = build_message(payload, cfg.sender, cfg.recipients)
        except (KeyError, ValueError, TypeError) as exc:
            return SendResult(False, error=f"cannot build the message: {type(exc).__name__}", permanent=True)
        return await asyncio.to_thread(self._send_sync, message)

    def _send_sync(self, message: EmailMessage) -> SendResult:
        cfg = self.config
        deadline = _Deadline(cfg.timeout)
        try:
            refused = self._converse(message, deadline)
        except Exception as exc:
            return self._failure(exc, deadline)
        if refused:
            logger.warning(
                "SMTP server refused {} of {} recipients; the others got the message",
                len(refused),
                len(cfg.recipients),
            )
        return SendResult(True, status=250, extra={"refused": len(refused)})

    def _converse(self, message: EmailMessage, deadline: _Deadline) -> dict[str, tuple[int, bytes]]:
        cfg = self.config
        assert cfg.smtp_host is not None and cfg.sender is not None
        smtp = _Client(deadline, cfg.smtp_host, cfg.smtp_port, _local_name())
        try:
            smtp.ehlo()
            if cfg.starttls:
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if cfg.username:
                smtp.login(cfg.username, cfg.password or "")
            refused = smtp.send_message(message, from_addr=cfg.sender, to_addrs=list(cfg.recipients))
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass  # the message was accepted; a lost QUIT does not change that
            return refused
        finally:
            smtp.close()

    def _failure(self, exc: BaseException, deadline: _Deadline) -> SendResult:
        permanent = False
        status: int | None = None
        if isinstance(exc, smtplib.SMTPResponseException):
            status = exc.smtp_code
            permanent = 500 <= status < 600
            said = exc.smtp_error
            text = f"SMTP {status}: {said.decode(errors='replace') if isinstance(said, bytes) else said}"
        elif isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            status = codes[0] if codes else None
            permanent = bool(codes) and all(500 <= c < 600 for c in codes)
            text = f"SMTP {status}: all {len(codes)} recipients refused"
        elif isinstance(exc, smtplib.SMTPNotSupportedError):
            permanent = True
            text = f"not supported by the SMTP server: {exc}"
        elif isinstance(exc, TimeoutError) or isinstance(exc.__context__, TimeoutError):
            text = f"timed out after {deadline.seconds:g} s"
        elif isinstance(exc, smtplib.SMTPServerDisconnected):
            text = f"SMTP server closed the connection: {exc}"
        elif isinstance(exc, ssl.SSLError):
            text = f"TLS error: {exc}"
        elif isinstance(exc, smtplib.SMTPException):
            text = f"SMTP error: {exc}"
        elif isinstance(exc, OSError):
            text = f"connection failed: {exc}"
        else:
            logger.opt(exception=exc).error("unexpected error while sending email")
            text = f"internal error: {type(exc).__name__}"
        if self.config.password:
            text = text.replace(self.config.password, MASK)
        return SendResult(False, status=status, error=first_line(redact(text), 200), permanent=permanent)
