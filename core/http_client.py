"""The probes' HTTP transport and error classification.

On loopback, 100 requests in flight, a plain ``httpx.AsyncClient`` measured ~3.1 ms of CPU
per request, httpx over an aiohttp transport ~0.34 ms, aiohttp alone ~0.15 ms and the lean
keep-alive client of :mod:`core.http1` (pre-built requests, httptools parser) ~0.05 ms
(``python -m bench.probes --clients``, bench/README.md). The budget is 0.3 ms per probe
including scheduling and statistics, so ordinary probes take the lean path; redirects and
credentials in the URL go through aiohttp, which handles them fully.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import aiohttp
from yarl import URL

from core.http1 import Http1Client, InvalidRequest, MalformedResponse, ServerDisconnected
from core.safe_text import display_text

__all__ = ["MAX_BODY_BYTES", "ErrorKind", "HttpClient", "HttpResult", "classify_error"]

MAX_BODY_BYTES = 256 * 1024
"""Bytes of a response body read for checks; a longer body is cut and its connection dropped."""

ErrorKind = Literal["timeout", "connect_refused", "dns", "tls", "other"]
Headers = Mapping[str, str] | Sequence[tuple[str, str]]
"""Request headers as a mapping or as the name/value pairs a ProbeSpec keeps."""

_USER_AGENT = "opswatch-probe/0.1"


@dataclass(frozen=True)
class HttpResult:
    status: int
    body: bytes


class HttpClient:
    """Pooled keep-alive connections for all probes: the lean HTTP/1.1 client, plus aiohttp
    sessions (one per ``verify_tls``, created on first use) for what the lean one does not do.

    ``keepalive_s`` stays below Node's default ``keepAliveTimeout`` (5 s) so a probe never
    reuses a connection the server is about to close. ``resolver`` is injectable for tests.
    """

    def __init__(
        self,
        *,
        max_connections: int = 200,
        keepalive_s: float = 4.0,
        dns_cache_s: float = 60.0,
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.keepalive_s = keepalive_s
        self.dns_cache_s = dns_cache_s
        self._resolver = resolver
        self._sessions: dict[bool, aiohttp.ClientSession] = {}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._urls: dict[str, URL] = {}
        self._lean = Http1Client(
            user_agent=_USER_AGENT,
            keepalive_s=keepalive_s,
            dns_cache_s=dns_cache_s,
            max_body=MAX_BODY_BYTES,
            resolver=resolver,
        )

    def _session(self, verify_tls: bool) -> aiohttp.ClientSession:
        session = self._sessions.get(verify_tls)
        if session is None or session.closed:
            connector = aiohttp.TCPConnector(
                limit=self.max_connections,
                limit_per_host=0,
                keepalive_timeout=self.keepalive_s,
                ttl_dns_cache=int(self.dns_cache_s),
                ssl=verify_tls,
                resolver=self._resolver,
            )
            session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                headers={"User-Agent": _USER_AGENT},
            )
            self._sessions[verify_tls] = session
        return session

    def _url(self, url: str) -> URL:
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) > 10_000:
                self._urls.clear()
            parsed = self._urls[url] = URL(url)
        return parsed

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return timeout

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Headers | None,
        timeout_s: float,
        verify_tls: bool = True,
        follow_redirects: bool = False,
    ) -> HttpResult:
        """Send one request and read (at most :data:`MAX_BODY_BYTES` of) the body.

        Raises what the transport raises (and ``TimeoutError``); see :func:`classify_error`.
        """
        parsed = self._url(url)
        if follow_redirects or parsed.user is not None or parsed.scheme not in ("http", "https"):
            return await self._via_aiohttp(method, parsed, headers, timeout_s, verify_tls, follow_redirects)
        async with asyncio.timeout(timeout_s):
            result = await self._lean.request(method, parsed, _pairs(headers), verify_tls=verify_tls)
        return HttpResult(result.status, result.body)

    async def _via_aiohttp(
        self,
        method: str,
        url: URL,
        headers: Headers | None,
        timeout_s: float,
        verify_tls: bool,
        follow_redirects: bool,
    ) -> HttpResult:
        session = self._session(verify_tls)
        async with session.request(
            method,
            url,
            headers=headers,
            timeout=self._timeout(timeout_s),
            allow_redirects=follow_redirects,
            max_redirects=10,
        ) as response:
            body = await _read_capped(response) if method != "HEAD" else b""
            return HttpResult(response.status, body)

    async def close(self) -> None:
        await self._lean.close()
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()


def _pairs(headers: Headers | None) -> tuple[tuple[str, str], ...]:
    if not headers:
        return ()
    return tuple(headers.items()) if isinstance(headers, Mapping) else tuple(headers)


async def _read_capped(response: aiohttp.ClientResponse) -> bytes:
    length = response.content_length
    if length is not None and length <= MAX_BODY_BYTES:
        return await response.read()
    chunks: list[bytes] = []
    size = 0
    while size < MAX_BODY_BYTES:
        chunk = await response.content.read(MAX_BODY_BYTES - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    if not response.content.at_eof():
        response.close()
    return b"".join(chunks)


def classify_error(exc: BaseException, timeout_s: float | None = None) -> tuple[ErrorKind, str]:
    """Map a transport exception to an outcome class and a short, secret-free message."""
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout", f"timed out after {timeout_s:g} s" if timeout_s else "timed out"
    if isinstance(exc, aiohttp.ClientConnectorDNSError | socket.gaierror) or _os_error(exc, socket.gaierror):
        return "dns", "DNS lookup failed"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return "tls", _short(f"TLS certificate error: {_ssl_reason(exc.certificate_error)}")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls", _short(f"TLS certificate error: {_ssl_reason(exc)}")
    if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError) or _os_error(exc, ssl.SSLError):
        return "tls", _short(f"TLS error: {_ssl_reason(exc)}")
    if _refused(exc):
        return "connect_refused", "connection refused"
    if isinstance(exc, aiohttp.ServerDisconnectedError | ServerDisconnected):
        return "other", "server closed the connection"
    if isinstance(exc, MalformedResponse):
        return "other", _short(f"bad response: {exc}")
    if isinstance(exc, InvalidRequest):
        return "other", _short(str(exc))
    if isinstance(exc, aiohttp.TooManyRedirects):
        return "other", "too many redirects"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return "other", "malformed response body"
    if isinstance(exc, aiohttp.ClientResponseError):
        return "other", _short(f"bad response: {exc.message}")
    if isinstance(exc, aiohttp.InvalidURL):
        return "other", "invalid URL"
    if isinstance(exc, aiohttp.ClientOSError | OSError):
        return "other", _short(_os_text(exc))
    return "other", _short(f"{type(exc).__name__}: {exc}")


def _os_error(exc: BaseException, kind: type[BaseException]) -> bool:
    inner = getattr(exc, "os_error", None)
    return isinstance(inner, kind) or isinstance(exc.__cause__, kind)


def _refused(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionRefusedError):
        return True
    inner = getattr(exc, "os_error", None)
    if isinstance(inner, ConnectionRefusedError):
        return True
    return isinstance(exc, OSError) and exc.errno == errno.ECONNREFUSED


def _ssl_reason(exc: BaseException) -> str:
    inner = getattr(exc, "os_error", None) or getattr(exc, "certificate_error", None) or exc
    if isinstance(inner, ssl.SSLCertVerificationError) and inner.verify_message:
        return str(inner.verify_message)
    reason = getattr(inner, "reason", None)
    if isinstance(reason, str) and reason:
        return reason.lower().replace("_", " ")
    return str(inner)


def _os_text(exc: BaseException) -> str:
    inner = getattr(exc, "os_error", None) or exc
    if isinstance(inner, OSError) and inner.strerror:
        return str(inner.strerror)
    return f"{type(inner).__name__}: {inner}"


def _short(text: str) -> str:
    return display_text(text, 160, redact_secrets=True)
