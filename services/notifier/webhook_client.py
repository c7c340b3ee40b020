"""How a webhook leaves notifier: one POST to a subscriber's URL, nothing else.

In production one `aiohttp` session sends every delivery over keep-alive connections (as many
as deliveries may be in flight). Measured beside httpx on 2 cores, bare aiohttp spent about
260–320 µs of CPU per POST, httpx over the aiohttp transport 900–1,000 µs and httpx's own
transport 3,000 µs: at 1,000 deliveries a second that is the difference between a third of a
core and all of it. Tests route webhooks to in-process receivers through httpx mounts, so with
mounts the same interface is served by httpx.

Either way: no credentials, no redirects followed, a connect timeout, a read timeout, and a
total bound (`3 ×` the timeout) so that no send outlives its delivery's lease. The receiver's
answer is read up to `MAX_RESPONSE_BYTES` (so the connection can be reused) and dropped.
"""

from __future__ import annotations

import asyncio
import urllib.request
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import httpx

from services.notifier.config import NotifierSettings
from shared.http import default_ssl_context, failure_cause

USER_AGENT = "o2c-notifier/1.0"
MAX_RESPONSE_BYTES = 64 * 1024


class SendFailed(Exception):
    """No HTTP answer: `cause` says why in words ("connection refused", "timed out reading")."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def _cause(exc: BaseException) -> str:
    cause = failure_cause(exc)
    if isinstance(exc, TimeoutError) and cause.startswith("TimeoutError"):
        return "timed out"  # the total bound
    return cause


class WebhookClient(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST `body`; the answer's status code, or `SendFailed`."""

    async def aclose(self) -> None: ...


class AiohttpWebhooks:
    """Webhooks through one aiohttp session (made on first use, inside the running loop)."""

    def __init__(self, settings: NotifierSettings) -> None:
        timeout = settings.webhook_timeout_seconds
        self._timeout = aiohttp.ClientTimeout(total=3 * timeout, connect=timeout,
                                              sock_connect=min(5.0, timeout), sock_read=timeout)
        self._limit = settings.delivery_concurrency
        self._session: aiohttp.ClientSession | None = None
        # HTTP(S)_PROXY as httpx honoured it, read once: aiohttp's `trust_env` reads the
        # environment and ~/.netrc again for every request (a quarter of the CPU, measured)
        self._proxies = {scheme: url for scheme, url in urllib.request.getproxies().items()
                         if scheme in ("http", "https")}

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit), timeout=self._timeout,
                headers={"user-agent": USER_AGENT}, auto_decompress=False)
        return self._session

    def _proxy(self, url: str) -> str | None:
        if not self._proxies:
            return None
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        if proxy is None or urllib.request.proxy_bypass(parts.hostname or ""):
            return None
        return proxy

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            async with self._open().post(url, data=body, headers=headers, proxy=self._proxy(url),
                                         allow_redirects=False) as response:
                await response.content.read(MAX_RESPONSE_BYTES)
                return response.status
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            raise SendFailed(_cause(exc)) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpxWebhooks:
    """Webhooks through httpx, for tests: `mounts` route them to in-process receivers."""

    def __init__(self, settings: NotifierSettings,
                 mounts: dict[str, httpx.AsyncBaseTransport]) -> None:
        timeout = settings.webhook_timeout_seconds
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(5.0, timeout)), mounts=dict(mounts),
            follow_redirects=False, headers={"user-agent": USER_AGENT},
            verify=default_ssl_context())
        self._total = 3 * timeout

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        try:
            async with asyncio.timeout(self._total):
                response = await self.client.post(url, content=body, headers=headers)
        except (httpx.HTTPError, TimeoutError) as exc:
            raise SendFailed(_cause(exc)) from exc
        return response.status_code

    async def aclose(self) -> None:
        await self.client.aclose()


def make_webhook_client(settings: NotifierSettings,
                        mounts: dict[str, httpx.AsyncBaseTransport] | None) -> WebhookClient:
    """The one client for subscribers' URLs: aiohttp, or httpx through the tests' mounts."""
    if mounts:
        return HttpxWebhooks(settings, mounts)
    return AiohttpWebhooks(settings)
