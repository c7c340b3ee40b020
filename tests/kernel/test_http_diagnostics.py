"""shared.http names the real cause of a failed call — over real loopback sockets, through the
httpx-aiohttp transport the services use — and logs one warning line when retries run out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from shared.errors import DependencyUnavailable
from shared.http import ServiceHttp, failure_cause, make_client
from shared.settings import BaseServiceSettings

Reply = Callable[["LoopbackServer", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LoopbackServer:
    """A raw HTTP/1.1 server on 127.0.0.1 whose every connection is handled by `reply`."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests = 0
        self.release = asyncio.Event()  # set at the end: a reply that waits returns
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            await self.reply(self, reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[LoopbackServer]:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self.release.set()
            self.server.close()
            await self.server.wait_closed()


async def _answer_503(server: LoopbackServer, reader, writer) -> None:
    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
    await writer.drain()


async def _hang(server: LoopbackServer, reader, writer) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.release.wait(), timeout=5)


async def _reset(server: LoopbackServer, reader, writer) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()  # linger 0: the close sends RST


def _settings(**urls: str) -> BaseServiceSettings:
    return BaseServiceSettings(http_timeout_seconds=0.2, http_retries=3, http_backoff_seconds=0.0,
                               **{f"{service}_url": url for service, url in urls.items()})


async def _give_up(settings: BaseServiceSettings, method: str = "GET",
                   path: str = "/v1/customers/C-1/credit") -> DependencyUnavailable:
    client = make_client(settings)
    try:
        with pytest.raises(DependencyUnavailable) as raised:
            await ServiceHttp(client, settings).call("credit", method, path)
    finally:
        await client.aclose()
    return raised.value


def _warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_refused_connection_says_so(caplog):
    caplog.set_level(logging.INFO)
    problem = await _give_up(_settings(credit=f"http://127.0.0.1:{_closed_port()}"))
    assert problem.detail == "The credit service is unavailable: connection refused (3 attempts)."
    assert "Timeout" not in problem.detail
    assert problem.body()["code"] == "dependency_unavailable" and problem.body()["dependency"] == "credit"

    (line,) = _warnings(caplog)  # one line for the three attempts
    assert line.name == "o2c.http" and line.exc_info is None
    assert line.getMessage() == (
        "credit GET /v1/customers/C-1/credit gave up after 3 attempts: connection refused")


async def test_http_503_is_named_and_retried(caplog):
    caplog.set_level(logging.INFO)
    async with LoopbackServer(_answer_503).running() as server:
        problem = await _give_up(_settings(credit=server.url), method="post", path="/v1/reservations")
    assert server.requests == 3
    assert problem.detail == "The credit service is unavailable: HTTP 503 (3 attempts)."
    (line,) = _warnings(caplog)
    assert line.getMessage() == "credit POST /v1/reservations gave up after 3 attempts: HTTP 503"
    assert line.exc_info is None


async def test_a_server_that_does_not_answer_times_out_reading(caplog):
    caplog.set_level(logging.INFO)
    async with LoopbackServer(_hang).running() as server:
        problem = await asyncio.wait_for(_give_up(_settings(credit=server.url)), timeout=5)
    assert server.requests == 3
    assert "timed out reading (3 attempts)" in problem.detail
    (line,) = _warnings(caplog)
    assert line.getMessage().endswith("gave up after 3 attempts: timed out reading")


async def test_a_reset_connection_says_so(caplog):
    caplog.set_level(logging.INFO)
    async with LoopbackServer(_reset).running() as server:
        problem = await _give_up(_settings(credit=server.url))
    assert "connection reset (3 attempts)" in problem.detail
    assert len(_warnings(caplog)) == 1


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs to a full backlog")
async def test_a_listener_that_never_accepts_times_out_connecting():
    listener = socket.socket()
    fillers: list[socket.socket] = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        for _ in range(3):  # fill the accept queue: further SYNs get no answer
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(listener.getsockname())
            fillers.append(filler)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        problem = await asyncio.wait_for(_give_up(_settings(credit=url)), timeout=5)
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert "timed out connecting (3 attempts)" in problem.detail


async def test_httpx_own_transport_gets_the_same_words():
    """The webhook client uses httpx's transport: its errors carry the OSError too."""
    # A refused connection answers at once; the generous timeout only keeps a loaded machine
    # from turning "refused" into "timed out".
    async with httpx.AsyncClient(timeout=10) as client:
        with pytest.raises(httpx.ConnectError) as raised:
            await client.get(f"http://127.0.0.1:{_closed_port()}/")
    assert failure_cause(raised.value) == "connection refused"


def test_httpx_types_name_the_cause_when_nothing_lies_beneath():
    request = httpx.Request("GET", "http://credit.test/")
    assert failure_cause(httpx.ConnectError("down", request=request)) == "could not connect"
    assert failure_cause(httpx.ReadTimeout("slow", request=request)) == "timed out reading"
    assert failure_cause(httpx.PoolTimeout("busy", request=request)) == (
        "timed out waiting for a connection")
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except OSError as exc:
            raise httpx.ConnectTimeout(str(exc), request=request) from exc
    except httpx.ConnectTimeout as mapped:  # what httpx-aiohttp makes of a reset
        assert failure_cause(mapped) == "connection reset"


async def test_every_service_client_shares_one_verifying_tls_context():
    """Building a context loads the CA bundle (~40 ms); clients share the process's one, and
    it still verifies certificates and host names."""
    import ssl

    from shared.http import default_ssl_context

    settings = _settings(credit="https://credit.example")
    first, second = make_client(settings), make_client(settings)
    try:
        context = default_ssl_context()
        assert first._transport.ssl_context is context and second._transport.ssl_context is context
        assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    finally:
        await first.aclose()
        await second.aclose()
