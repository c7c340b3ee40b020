"""The production webhook client (aiohttp) against a real loopback server: what the receiver
gets, answers that are not 2xx, redirects not followed, and failures named by their cause.
(The rest of the suite routes webhooks to in-process receivers through httpx.)"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from services.notifier.config import NotifierSettings
from services.notifier.webhook_client import USER_AGENT, AiohttpWebhooks, SendFailed


class Receiver(asyncio.Protocol):
    """HTTP/1.1 keep-alive, one canned answer per request; `hang` paths never answer."""

    requests: list[tuple[str, dict[str, str], bytes]]
    answer: bytes

    def connection_made(self, transport) -> None:
        self.transport, self.buffer = transport, b""
        type(self).connections += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            lines = self.buffer[:end].decode().split("\r\n")
            headers = {k.strip().lower(): v.strip()
                       for k, _, v in (line.partition(":") for line in lines[1:])}
            total = end + 4 + int(headers.get("content-length", 0))
            if len(self.buffer) < total:
                return
            body, self.buffer = self.buffer[end + 4:total], self.buffer[total:]
            path = lines[0].split()[1]
            self.requests.append((path, headers, body))
            if not path.startswith("/hang"):
                self.transport.write(self.answer)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, type[Receiver]]]:
    class This(Receiver):
        requests = []
        answer = b"HTTP/1.1 204 No Content\r\n\r\n"
        connections = 0

    server = await asyncio.get_running_loop().create_server(This, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}", This


@pytest.fixture
async def client() -> AsyncIterator[AiohttpWebhooks]:
    webhooks = AiohttpWebhooks(NotifierSettings(webhook_timeout_seconds=0.5))
    yield webhooks
    await webhooks.aclose()


async def test_a_post_arrives_as_sent_over_one_kept_alive_connection(client, receiver):
    base, server = receiver
    headers = {"webhook-id": "msg_1", "webhook-signature": "v1,abc",
               "content-type": "application/json"}
    for _ in range(3):
        assert await client.post(base + "/hook", b'{"a": 1}', headers) == 204
    assert server.connections == 1
    path, got, body = server.requests[0]
    assert (path, body) == ("/hook", b'{"a": 1}')
    assert got["webhook-id"] == "msg_1" and got["user-agent"] == USER_AGENT
    assert "authorization" not in got


async def test_other_answers_and_redirects_are_returned_as_they_are(client, receiver):
    base, server = receiver
    server.answer = b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops"
    assert await client.post(base + "/hook", b"{}", {}) == 500
    server.answer = b"HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"
    assert await client.post(base + "/hook", b"{}", {}) == 302
    assert [p for p, _, _ in server.requests] == ["/hook", "/hook"]  # not followed


async def test_failures_are_named_by_their_cause(client, receiver):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    with pytest.raises(SendFailed) as refused:
        await client.post(f"http://127.0.0.1:{closed}/hook", b"{}", {})
    assert refused.value.cause == "connection refused"
    base, _ = receiver
    with pytest.raises(SendFailed) as slow:
        await client.post(base + "/hang", b"{}", {})
    assert slow.value.cause == "timed out reading"
