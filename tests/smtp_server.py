"""A real SMTP server on 127.0.0.1 for tests (aiosmtpd, in the test's event loop).

``SmtpSink`` records every accepted message; ``script("451 4.3.0 try later")`` makes the
next DATA commands fail with those replies. Optional STARTTLS (``tls_context``, required
with ``require_starttls``) and AUTH (``credentials``). ``self_signed_cert(dir)`` makes a
throw-away certificate for 127.0.0.1 with the ``openssl`` command line tool.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.waiting import arrivals


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage
    tls: bool  # arrived over STARTTLS
    login: str | None  # the AUTH user, if any

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content()).replace("\r\n", "\n")


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.sink.attempts += 1
        if self.sink.replies:
            return self.sink.replies.popleft()
        raw = envelope.original_content or envelope.content
        assert isinstance(raw, bytes)
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        auth = session.auth_data
        login = auth.login.decode() if isinstance(auth, LoginPassword) else None
        async with self.sink.arrived:
            self.sink.mails.append(
                Mail(
                    str(envelope.mail_from),
                    tuple(envelope.rcpt_tos),
                    message,
                    session.ssl is not None,
                    login,
                )
            )
            self.sink.arrived.notify_all()
        return "250 2.0.0 OK"


class SmtpSink:
    def __init__(
        self,
        *,
        tls_context: ssl.SSLContext | None = None,
        require_starttls: bool = False,
        credentials: tuple[str, str] | None = None,
        auth_require_tls: bool = True,
    ) -> None:
        self.mails: list[Mail] = []
        self.replies: deque[str] = deque()
        self.attempts = 0
        self.arrived = asyncio.Condition()
        self.credentials = credentials
        self._kwargs: dict[str, Any] = {
            "hostname": "sink.test",
            "tls_context": tls_context,
            "require_starttls": require_starttls,
            "auth_require_tls": auth_require_tls,
            "authenticator": self._authenticate if credentials else None,
            "enable_SMTPUTF8": True,
        }
        self._server: asyncio.Server | None = None
        self.port = 0

    def script(self, *replies: str) -> None:
        self.replies.extend(replies)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.credentials is not None
            and (data.login.decode(), data.password.decode()) == self.credentials
        )
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)

    async def wait_for(self, count: int, within: float = 10.0) -> list[Mail]:
        return await arrivals(self.arrived, self.mails, count, within)

    async def __aenter__(self) -> SmtpSink:
        loop = asyncio.get_running_loop()
        handler = _Handler(self)
        self._server = await loop.create_server(
            lambda: SMTP(handler, loop=loop, **self._kwargs), "127.0.0.1", 0
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def self_signed_cert(directory: Path) -> tuple[Path, Path] | None:
    """(cert, key) for CN/IP 127.0.0.1, or None when ``openssl`` is not installed."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key
