"""Calls between services: one `httpx.AsyncClient` per service, made at start-up.

Every call carries the service key as bearer, the current `X-Request-ID` and, for POSTs, an
`Idempotency-Key`, so a retried call is safe. Connection errors, time-outs and 502/503/504
are retried with exponential backoff; when retries run out the caller gets
`DependencyUnavailable` (503 `dependency_unavailable`), never a half-known outcome, and one
warning line names the call and its cause in words (`failure_cause`).
Typed clients for each target live in the calling service's `clients.py`.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import random
import socket
import ssl
import uuid
from collections.abc import Iterator
from typing import Any, TypeVar

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport
from pydantic import BaseModel, ValidationError

from shared.errors import DependencyUnavailable
from shared.observability import current_request_id, new_request_id
from shared.settings import BaseServiceSettings

log = logging.getLogger("o2c.http")
RETRY_STATUSES = frozenset({502, 503, 504})

# What went wrong underneath, by the exception found in the cause chain. httpx-aiohttp maps
# every aiohttp connection error it does not know better to `httpx.ConnectTimeout` (a refused
# connection, a reset, a server that hung up), so its httpx type alone is not the cause.
_ERRNO_CAUSES = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection reset",
    errno.ETIMEDOUT: "timed out connecting",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
}
_UNDERLYING_CAUSES: tuple[tuple[type[BaseException], str], ...] = (
    (aiohttp.ConnectionTimeoutError, "timed out connecting"),
    (aiohttp.SocketTimeoutError, "timed out reading"),
    (aiohttp.ServerDisconnectedError, "server closed the connection"),
    (aiohttp.ClientPayloadError, "response cut short"),
    (socket.gaierror, "host name not resolved"),
    (ssl.SSLError, "TLS handshake failed"),
)
# Only when nothing underneath says more (httpx's own transports, test transports).
_HTTPX_CAUSES: tuple[tuple[type[httpx.HTTPError], str], ...] = (
    (httpx.ConnectTimeout, "timed out connecting"),
    (httpx.ReadTimeout, "timed out reading"),
    (httpx.WriteTimeout, "timed out writing"),
    (httpx.PoolTimeout, "timed out waiting for a connection"),
    (httpx.ConnectError, "could not connect"),
    (httpx.ReadError, "read failed"),
    (httpx.WriteError, "write failed"),
    (httpx.RemoteProtocolError, "broken HTTP response"),
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, then what it was raised from or while handling, down to the first error.

    Suppressed context counts too: httpcore's pool re-raises its ConnectError `from None`,
    which leaves the OSError that says "refused" only as suppressed context.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def failure_cause(exc: BaseException) -> str:
    """A failed call's cause in words: "connection refused", "timed out reading", …"""
    links = list(_chain(exc))
    for link in links:
        for kind, words in _UNDERLYING_CAUSES:
            if isinstance(link, kind):
                return words
        if isinstance(link, OSError) and link.errno in _ERRNO_CAUSES:
            return _ERRNO_CAUSES[link.errno]
    aiohttp_error = next((link for link in links if isinstance(link, aiohttp.ClientError)), None)
    if aiohttp_error is not None:  # one we have no words for: its own name and message
        return f"{type(aiohttp_error).__name__}: {aiohttp_error}"[:200]
    for kind, words in _HTTPX_CAUSES:
        if isinstance(exc, kind):
            return words
    return f"{type(exc).__name__}: {exc}"[:200]


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx's default verifying context, made once per process and shared by every client.

    Building one loads the CA bundle, about 40 ms of CPU; each client built its own, four per
    process at start and one per app in every test (issue 14, part 6). A context may serve
    many connections and clients at once."""
    return httpx.create_ssl_context()


def make_client(settings: BaseServiceSettings,
                mounts: dict[str, httpx.AsyncBaseTransport] | None = None) -> httpx.AsyncClient:
    """The service's client for the other services.

    It keeps the httpx API over the aiohttp transport: `make bench` (bench/http_client.py) on 2 cores
    measured about 400–490 against 720–900 µs of client CPU per call with httpx's own transport.
    """
    timeout = httpx.Timeout(settings.http_timeout_seconds, connect=min(2.0, settings.http_timeout_seconds))
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    transport = AiohttpTransport(verify=default_ssl_context(), limits=limits)
    return httpx.AsyncClient(timeout=timeout, transport=transport,
                             mounts=mounts or None, follow_redirects=False)


Model = TypeVar("Model", bound=BaseModel)


class ServiceHttp:
    """Retrying, authenticated calls to the other o2c services."""

    def __init__(self, client: httpx.AsyncClient, settings: BaseServiceSettings) -> None:
        self.client = client
        self.settings = settings
        key = settings.service_key.get_secret_value() if settings.service_key else None
        self._auth = f"Bearer {key}" if key else None

    async def get_model(self, service: str, path: str, model: type[Model], *, what: str,
                        missing: tuple[int, ...] = (404,),
                        params: dict[str, Any] | None = None) -> Model | None:
        """GET `path` of `service` read as `model`; None for a `missing` status (404: it does not
        know the thing). No answer, any other status, or a body that is not the model is 503
        `dependency_unavailable` naming `what` (the caller fails closed)."""
        response = await self.call(service, "GET", path, params=params)
        if response.status_code in missing:
            return None
        if response.status_code != 200:
            raise DependencyUnavailable(
                f"The {service} service answered {response.status_code} for {what}.",
                dependency=service)
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise DependencyUnavailable(
                f"The {service} service sent {what} in a form {self.settings.service_name} "
                "cannot read.", dependency=service) from exc

    async def call(self, service: str, method: str, path: str, *, json: Any = None,
                   params: dict[str, Any] | None = None, idempotency_key: str | None = None,
                   expect: tuple[int, ...] = ()) -> httpx.Response:
        """Call `service` and return its response; 4xx answers are returned, not raised."""
        url = self.settings.service_url(service) + path
        headers = {"X-Request-ID": current_request_id() or new_request_id()}
        if self._auth:
            headers["Authorization"] = self._auth
        if method.upper() == "POST":
            headers["Idempotency-Key"] = idempotency_key or str(uuid.uuid4())
        attempts = max(1, self.settings.http_retries)
        cause = "no attempt"
        for attempt in range(attempts):
            try:
                response = await self.client.request(method, url, json=json, params=params,
                                                     headers=headers)
            except (httpx.TransportError, aiohttp.ClientError) as exc:  # the latter: unmapped ones
                cause = failure_cause(exc)
            else:
                if response.status_code not in RETRY_STATUSES or response.status_code in expect:
                    return response
                cause = f"HTTP {response.status_code}"
            if attempt + 1 < attempts:
                delay = self.settings.http_backoff_seconds * (2**attempt)
                await asyncio.sleep(delay * (0.5 + random.random()))
        tries = f"{attempts} attempt{'s' if attempts > 1 else ''}"
        log.warning("%s %s %s gave up after %s: %s", service, method.upper(), path, tries, cause)
        raise DependencyUnavailable(f"The {service} service is unavailable: {cause} ({tries}).",
                                    dependency=service)
