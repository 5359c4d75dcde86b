"""The lean HTTP/1.1 probe client against a raw TCP server on 127.0.0.1 that sends exact bytes."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from yarl import URL

from core.http1 import Http1Client, InvalidRequest, MalformedResponse, ServerDisconnected
from core.http_client import HttpClient, classify_error

Reply = Callable[[bytes], bytes | None]  # request head -> bytes to send (None: close at once)


@dataclass
class RawServer:
    """Answers each request head with ``reply(head)``; closes after it when ``close_after``."""

    reply: Reply = lambda head: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    close_after: bool = False
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    server: asyncio.Server | None = None

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    def url(self, path: str = "/health") -> URL:
        return URL(f"http://127.0.0.1:{self.port}{path}")

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                answer = self.reply(head)
                if answer is None:
                    break
                writer.write(answer)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@pytest_asyncio.fixture
async def raw() -> AsyncIterator[RawServer]:
    server = RawServer()
    await server.start()
    yield server
    assert server.server is not None
    server.server.close()


@pytest_asyncio.fixture
async def lean() -> AsyncIterator[Http1Client]:
    client = Http1Client(user_agent="opswatch-test", max_body=1024)
    yield client
    await client.close()


async def test_request_bytes_and_keep_alive_reuse(raw: RawServer, lean: Http1Client) -> None:
    for _ in range(3):
        result = await lean.request("GET", raw.url("/api/v1/sales?x=1"), (("X-Probe", "yes"),))
        assert (result.status, result.body) == (200, b"ok")
    assert raw.connections == 1
    head = raw.requests[0].decode()
    assert head.startswith("GET /api/v1/sales?x=1 HTTP/1.1\r\n")
    assert f"Host: 127.0.0.1:{raw.port}\r\n" in head
    assert "User-Agent: opswatch-test\r\n" in head and "X-Probe: yes\r\n" in head


async def test_configured_header_replaces_default(raw: RawServer, lean: Http1Client) -> None:
    await lean.request("POST", raw.url(), (("user-agent", "custom/1"),))
    head = raw.requests[0].decode()
    assert "user-agent: custom/1\r\n" in head and "opswatch-test" not in head
    assert "Content-Length: 0\r\n" in head  # a POST without a body still says so


@pytest.mark.parametrize(
    ("reply", "close_after", "body", "connections"),
    [
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            False,
            b"abcde",
            1,
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nall of it", True, b"all of it", 2),
    ],
    ids=["chunked_body", "body_until_close"],
)
async def test_body_framing(
    raw: RawServer, lean: Http1Client, reply: bytes, close_after: bool, body: bytes, connections: int
) -> None:
    """A chunked body is read on a kept connection; a body without a length runs until the close."""
    raw.reply = lambda _: reply
    raw.close_after = close_after
    assert (await lean.request("GET", raw.url())).body == body
    assert (await lean.request("GET", raw.url())).body == body
    assert raw.connections == connections


async def test_connection_close_is_not_reused(raw: RawServer, lean: Http1Client) -> None:
    raw.reply = lambda _: b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n"
    raw.close_after = True
    for _ in range(2):
        assert (await lean.request("GET", raw.url())).status == 204
    assert raw.connections == 2


async def test_interim_response_is_skipped(raw: RawServer, lean: Http1Client) -> None:
    raw.reply = lambda _: (
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
    )
    result = await lean.request("GET", raw.url())
    assert (result.status, result.body) == (503, b"busy")


async def test_gzip_body_is_decoded(raw: RawServer, lean: Http1Client) -> None:
    packed = gzip.compress(b'{"status":"ok"}')
    raw.reply = lambda _: (
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(packed), packed)
    )
    assert (await lean.request("GET", raw.url())).body == b'{"status":"ok"}'


async def test_body_is_capped_and_connection_dropped(raw: RawServer, lean: Http1Client) -> None:
    big = b"x" * 5000
    raw.reply = lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + big
    assert (await lean.request("GET", raw.url())).body == b"x" * 1024
    await lean.request("GET", raw.url())
    assert raw.connections == 2


async def test_head_does_not_wait_for_a_body(raw: RawServer, lean: Http1Client) -> None:
    raw.reply = lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"
    result = await asyncio.wait_for(lean.request("HEAD", raw.url()), 2)
    assert (result.status, result.body) == (200, b"")


async def test_malformed_response(raw: RawServer, lean: Http1Client) -> None:
    raw.reply = lambda _: b"SMTP ready\r\n\r\n"
    with pytest.raises(MalformedResponse) as caught:
        await lean.request("GET", raw.url())
    assert classify_error(caught.value)[0] == "other"
    assert classify_error(caught.value)[1].startswith("bad response: malformed HTTP response")


async def test_server_closing_before_replying(raw: RawServer, lean: Http1Client) -> None:
    raw.reply = lambda _: None
    with pytest.raises(ServerDisconnected) as caught:
        await lean.request("GET", raw.url())
    assert classify_error(caught.value) == ("other", "server closed the connection")


async def test_truncated_body_is_an_error(raw: RawServer, lean: Http1Client) -> None:
    raw.reply = lambda _: b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"
    raw.close_after = True
    with pytest.raises(ServerDisconnected):
        await lean.request("GET", raw.url())


async def test_stale_keep_alive_connection_is_retried_once(raw: RawServer, lean: Http1Client) -> None:
    """The server drops an idle kept-alive connection just before the next probe reuses it."""
    replies = iter([b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", None])
    raw.reply = lambda _: next(replies, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh")
    assert (await lean.request("GET", raw.url())).body == b"ok"
    assert (await lean.request("GET", raw.url())).body == b"fresh"
    assert raw.connections == 2


async def test_idle_connections_expire_after_keepalive(raw: RawServer) -> None:
    client = Http1Client(user_agent="t", keepalive_s=0.05)
    try:
        await client.request("GET", raw.url())
        await asyncio.sleep(0.1)  # time under test: past the 0.05 s keep-alive
        await client.request("GET", raw.url())
    finally:
        await client.close()
    assert raw.connections == 2


@pytest.mark.parametrize(
    "header", [("X-Evil", "a\r\nInjected: 1"), ("Bad Name", "v"), ("X-Null", "a\0b"), ("X-Uni", "caf\u20ac")]
)
async def test_unsendable_headers_are_refused(
    raw: RawServer, lean: Http1Client, header: tuple[str, str]
) -> None:
    with pytest.raises(InvalidRequest):
        await lean.request("GET", raw.url(), (header,))
    assert raw.requests == []


async def test_http_client_times_out_and_drops_the_connection(raw: RawServer) -> None:
    replies = iter([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\npart"])  # then hangs
    raw.reply = lambda _: next(replies, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nfull")
    client = HttpClient()
    try:
        with pytest.raises(TimeoutError):
            await client.request("GET", str(raw.url()), headers=None, timeout_s=0.2)
        result = await client.request("GET", str(raw.url()), headers=None, timeout_s=2)
    finally:
        await client.close()
    assert (result.status, result.body) == (200, b"full")
    assert raw.connections == 2  # the half-read connection was not reused
