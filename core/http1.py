"""A lean HTTP/1.1 keep-alive client for the probes' hot path.

A probe sends the same few bytes every interval and reads one small response. aiohttp's
general-purpose request machinery (request and response objects, multidicts, stream readers,
timer contexts) costs ~0.15 ms of CPU per request on this kind of VM; a pre-built request
written to a pooled connection and parsed by ``httptools`` (the llhttp parser uvicorn uses)
costs about a third of that (``python -m bench.probes --clients``, bench/README.md).

Scope, kept deliberately small: http and https, no request body, no redirects, no URL
credentials, no proxies. :class:`core.http_client.HttpClient` sends anything else through
aiohttp. Responses: Content-Length, chunked and read-until-close bodies, ``Connection: close``,
1xx interim responses, gzip/deflate content encoding, a body cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import ip_address

import httptools
from aiohttp.abc import AbstractResolver
from yarl import URL

__all__ = [
    "Http1Client",
    "Http1Result",
    "InvalidRequest",
    "MalformedResponse",
    "ServerDisconnected",
]

_NO_BODY_METHODS = frozenset({"GET", "HEAD", "DELETE", "OPTIONS", "TRACE"})
_RETRYABLE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORBIDDEN = ("\r", "\n", "\0")


class ServerDisconnected(ConnectionError):
    """The server closed the connection before the response was complete."""

    def __init__(self, *, before_response: bool) -> None:
        super().__init__("server closed the connection")
        self.before_response = before_response


class MalformedResponse(Exception):
    """The bytes received are not a valid HTTP/1.x response (or body encoding)."""


class InvalidRequest(ValueError):
    """A header name or value that cannot be sent (control characters)."""


@dataclass(frozen=True)
class Http1Result:
    status: int
    body: bytes


# --------------------------------------------------------------------------- one connection


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection; carries at most one request at a time."""

    def __init__(self, key: tuple[str, str, int, bool], max_body: int) -> None:
        self.key = key
        self.max_body = max_body
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self.reused = False
        self._waiter: asyncio.Future[Http1Result] | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._head = False
        self._got_bytes = False
        self.reusable = False
        self._new_message()

    def _new_message(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0
        self._headers_done = False
        self._framed = False  # Content-Length or Transfer-Encoding: not a read-until-close body
        self._encoding = b""

    # -- use ------------------------------------------------------------------------------------

    def send(self, request: bytes, *, head: bool) -> asyncio.Future[Http1Result]:
        assert self.transport is not None
        self._head = head
        self._got_bytes = False
        self.reusable = False
        self._new_message()
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    @property
    def alive(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            self.close()  # bytes nobody asked for: the connection is out of step
            return
        self._got_bytes = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(MalformedResponse(f"malformed HTTP response ({type(exc).__name__})"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if self._headers_done and not self._framed:
            self._finish()  # a body delimited by the end of the connection
            return
        if isinstance(exc, ssl.SSLError):
            self._fail(exc)
            return
        self._fail(ServerDisconnected(before_response=not self._got_bytes))

    # -- httptools callbacks ------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered in (b"content-length", b"transfer-encoding"):
            self._framed = True
        elif lowered == b"content-encoding":
            self._encoding = value.strip().lower()

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            return
        self._headers_done = True
        if self._head:
            self._finish(reusable=False)  # the parser cannot know a HEAD reply has no body

    def on_body(self, body: bytes) -> None:
        if self._waiter is None or self._waiter.done():
            return
        room = self.max_body - self._size
        if len(body) >= room:
            self._chunks.append(body[:room])
            self._size = self.max_body
            self._finish(reusable=False)  # the rest is not read: drop the connection
            return
        self._chunks.append(body)
        self._size += len(body)

    def on_message_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # interim response: the real one follows on the same connection
            self._new_message()
            return
        self._finish(reusable=self._parser.should_keep_alive())

    # -- completion ---------------------------------------------------------------------------

    def _finish(self, *, reusable: bool = False) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        self.reusable = reusable
        body = b"".join(self._chunks)
        if self._encoding in (b"gzip", b"deflate", b"x-gzip"):
            try:
                body = _decompress(body, self.max_body)
            except zlib.error:
                waiter.set_exception(MalformedResponse("malformed compressed body"))
                return
        waiter.set_result(Http1Result(self._parser.get_status_code(), body))

    def _fail(self, exc: BaseException) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)


def _decompress(body: bytes, limit: int) -> bytes:
    # wbits 47 accepts gzip and zlib headers; raw deflate (no header) is tried as well
    try:
        return zlib.decompressobj(47).decompress(body, limit)
    except zlib.error:
        return zlib.decompressobj(-15).decompress(body, limit)


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class _Target:
    key: tuple[str, str, int, bool]  # scheme, host, port, verify_tls
    host: str
    port: int
    tls: bool
    request: bytes
    method: str


class Http1Client:
    """Keep-alive pools per (scheme, host, port, TLS verification) and pre-built requests."""

    def __init__(
        self,
        *,
        user_agent: str,
        keepalive_s: float = 4.0,
        dns_cache_s: float = 60.0,
        max_body: int = 256 * 1024,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self.user_agent = user_agent
        self.keepalive_s = keepalive_s
        self.dns_cache_s = dns_cache_s
        self.max_body = max_body
        self._resolver = resolver
        self._idle: dict[tuple[str, str, int, bool], deque[_Connection]] = {}
        self._busy: set[_Connection] = set()
        self._targets: dict[tuple[str, URL, tuple[tuple[str, str], ...], bool], _Target] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[tuple[socket.AddressFamily, str]]]] = {}
        self._tls: dict[bool, ssl.SSLContext] = {}

    async def request(
        self,
        method: str,
        url: URL,
        headers: Iterable[tuple[str, str]] = (),
        *,
        verify_tls: bool = True,
    ) -> Http1Result:
        """One request; raises OSError, ``ssl.SSLError``, :class:`ServerDisconnected`,
        :class:`MalformedResponse` or :class:`InvalidRequest`. Bound it with a timeout."""
        target = self._target(method, url, tuple(headers), verify_tls)
        connection = await self._checkout(target)
        try:
            result = await self._exchange(connection, target)
        except ServerDisconnected as exc:
            # a kept-alive connection the server closed just as we reused it: try a fresh one
            if not (connection.reused and exc.before_response and target.method in _RETRYABLE_METHODS):
                raise
            connection = await self._connect(target)
            result = await self._exchange(connection, target)
        return result

    async def _exchange(self, connection: _Connection, target: _Target) -> Http1Result:
        self._busy.add(connection)
        try:
            result = await connection.send(target.request, head=target.method == "HEAD")
        except BaseException:
            connection.close()
            raise
        finally:
            self._busy.discard(connection)
        self._release(connection)
        return result

    async def close(self) -> None:
        for pool in self._idle.values():
            for connection in pool:
                connection.close()
        self._idle.clear()
        for connection in list(self._busy):
            connection.close()
        self._busy.clear()

    # -- requests -------------------------------------------------------------------------------

    def _target(
        self, method: str, url: URL, headers: tuple[tuple[str, str], ...], verify_tls: bool
    ) -> _Target:
        cache_key = (method, url, headers, verify_tls)
        target = self._targets.get(cache_key)
        if target is None:
            if len(self._targets) > 10_000:
                self._targets.clear()
            target = self._targets[cache_key] = self._build(method, url, headers, verify_tls)
        return target

    def _build(
        self, method: str, url: URL, headers: tuple[tuple[str, str], ...], verify_tls: bool
    ) -> _Target:
        host = url.raw_host or ""
        port = url.port or (443 if url.scheme == "https" else 80)
        tls = url.scheme == "https"
        authority = f"[{host}]" if ":" in host else host
        if not url.is_default_port():
            authority = f"{authority}:{port}"
        fields = {"host": ("Host", authority), "user-agent": ("User-Agent", self.user_agent),
                  "accept": ("Accept", "*/*")}  # fmt: skip
        if method not in _NO_BODY_METHODS:
            fields["content-length"] = ("Content-Length", "0")
        for name, value in headers:
            if (
                not name
                or any(c in name for c in (*_FORBIDDEN, ":", " "))
                or any(c in value for c in _FORBIDDEN)
            ):
                raise InvalidRequest("invalid request header")
            fields[name.lower()] = (name, value)
        lines = [f"{method} {url.raw_path_qs or '/'} HTTP/1.1"]
        lines += [f"{name}: {value}" for name, value in fields.values()]
        try:
            request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        except UnicodeEncodeError:
            raise InvalidRequest("request header is not Latin-1") from None
        return _Target((url.scheme, host, port, verify_tls), host, port, tls, request, method)

    # -- connections ----------------------------------------------------------------------------

    async def _checkout(self, target: _Target) -> _Connection:
        pool = self._idle.get(target.key)
        if pool:
            now = asyncio.get_running_loop().time()
            while pool and now - pool[0].idle_since > self.keepalive_s:
                pool.popleft().close()  # oldest first: expired ones sit at the left
            while pool:
                connection = pool.pop()
                if connection.alive:
                    connection.reused = True
                    return connection
        return await self._connect(target)

    def _release(self, connection: _Connection) -> None:
        if not (connection.reusable and connection.alive):
            connection.close()
            return
        connection.idle_since = asyncio.get_running_loop().time()
        self._idle.setdefault(connection.key, deque()).append(connection)

    async def _connect(self, target: _Target) -> _Connection:
        loop = asyncio.get_running_loop()
        context = self._tls_context(target.key[3]) if target.tls else None
        last: OSError | None = None
        for family, address in await self._resolve(target.host, target.port):
            try:
                _, connection = await loop.create_connection(
                    lambda: _Connection(target.key, self.max_body),
                    address,
                    target.port,
                    family=family,
                    ssl=context,
                    server_hostname=target.host if context is not None else None,
                )
            except ssl.SSLError:
                raise  # the address answered: another one of the same host will not do better
            except OSError as exc:
                last = exc
                continue
            return connection
        assert last is not None
        raise last

    async def _resolve(self, host: str, port: int) -> list[tuple[socket.AddressFamily, str]]:
        with contextlib.suppress(ValueError):
            literal = ip_address(host)
            return [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, host)]
        loop = asyncio.get_running_loop()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > loop.time():
            return cached[1]
        if self._resolver is not None:
            found = await self._resolver.resolve(host, port, family=socket.AF_UNSPEC)
            addresses = [(socket.AddressFamily(r["family"]), str(r["host"])) for r in found]
        else:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addresses = list(dict.fromkeys((info[0], str(info[4][0])) for info in infos))
        if not addresses:
            raise socket.gaierror(socket.EAI_NONAME, "no address")
        if len(self._dns) > 10_000:
            self._dns.clear()
        self._dns[(host, port)] = (loop.time() + self.dns_cache_s, addresses)
        return addresses

    def _tls_context(self, verify: bool) -> ssl.SSLContext:
        context = self._tls.get(verify)
        if context is None:
            context = ssl.create_default_context()
            if not verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            self._tls[verify] = context
        return context
