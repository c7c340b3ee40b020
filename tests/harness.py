"""Wires the four services in one process for tests.

Each service gets its own database (a copy of a migrated SQLite template, or a PostgreSQL
database truncated between tests), the shared frozen clock, the test keys file and an
`httpx` client whose mounts route `http://<service>.test` to the other apps in-process.
Background workers are off: tests drive the outbox relay and deliveries with `pump()`.
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from shared.auth import append_key
from shared.clock import FrozenClock
from shared.settings import SERVICES

SERVICE_KEY = "o2csvc_test-service-key"
HOOKS_URL = "http://hooks.test"

# principal name -> (roles, salesperson id)
PRINCIPALS: dict[str, tuple[list[str], str | None]] = {
    "admin": (["admin"], None),
    "sales": (["sales"], None),
    "alice": (["sales"], "S-ALICE"),
    "bob": (["sales"], "S-BOB"),
    "production": (["production"], None),
    "technical": (["technical"], None),
    "quality": (["quality"], None),
    "finance": (["finance"], None),
    "finance2": (["finance"], None),
    "credit_manager": (["credit_manager"], None),
    "auditor": (["auditor"], None),
}


INTERNAL_INBOXES = frozenset(f"http://{s}.test/v1/inbox" for s in SERVICES)


def external_endpoints(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Webhook endpoints a test made, without the services' own subscriptions."""
    return [e for e in items if e["url"] not in INTERNAL_INBOXES]


def write_keys(path: Path) -> dict[str, str]:
    """Write the test keys file; returns principal -> raw key."""
    keys = {}
    for name, (roles, salesperson) in PRINCIPALS.items():
        key = f"o2c_test-{name}"
        append_key(path, key, name, roles, salesperson)
        keys[name] = key
    keys["service"] = SERVICE_KEY
    return keys


class RoutingTransport(httpx.AsyncBaseTransport):
    """Routes each request by `scheme://host` to `mounts`, looked up at request time, so a
    test can take a service down (or bring it back) by swapping its entry in `System.mounts`."""

    def __init__(self, mounts: dict[str, httpx.AsyncBaseTransport]) -> None:
        self.mounts = mounts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.host}"
        transport = self.mounts.get(origin)
        if transport is None:
            raise httpx.ConnectError(f"no test route to {origin}", request=request)
        return await transport.handle_async_request(request)


class WebhookReceiver:
    """A webhook endpoint in-process at `http://hooks.test`; answers with `status`."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.app = Starlette(routes=[Route("/{path:path}", self._receive, methods=["POST"])])

    async def _receive(self, request: Request) -> JSONResponse:
        self.requests.append({"path": request.url.path, "headers": dict(request.headers),
                              "body": await request.body()})
        return JSONResponse({"ok": self.status < 300}, status_code=self.status)


@dataclass
class System:
    apps: dict[str, Any]
    keys: dict[str, str]
    clock: FrozenClock
    receiver: WebhookReceiver
    mounts: dict[str, httpx.AsyncBaseTransport]
    _clients: list[httpx.AsyncClient] = field(default_factory=list)

    def client(self, service: str, principal: str | None = "admin",
               headers: dict[str, str] | None = None) -> httpx.AsyncClient:
        """A client of `service` authenticated as `principal` (None: no key)."""
        all_headers = dict(headers or {})
        if principal is not None:
            all_headers["Authorization"] = f"Bearer {self.keys[principal]}"
        client = httpx.AsyncClient(transport=self.mounts[f"http://{service}.test"],
                                   base_url=f"http://{service}.test", headers=all_headers)
        self._clients.append(client)
        return client

    def state(self, service: str) -> Any:
        return self.apps[service].state

    async def pump(self, rounds: int = 10) -> int:
        """Run outbox relays, dunning, email and webhook deliveries until nothing is left to do."""
        total = 0
        for _ in range(rounds):
            moved = 0
            for service in SERVICES:
                relay = getattr(self.state(service), "relay", None)
                if relay is not None:
                    moved += await relay.dispatch_once()
            notifier = self.state("notifier")
            moved += await notifier.dunning.run_once()  # invoice.overdue → notifications
            moved += await notifier.emails.send_once()
            moved += await notifier.deliveries.deliver_once()
            total += moved
            if moved == 0:
                break
        return total

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def settings_for(service: str, **overrides: Any) -> Any:
    module = importlib.import_module(f"services.{service}.config")
    cls = next(v for k, v in vars(module).items()
               if k.endswith("Settings") and k != "BaseServiceSettings")
    return cls(**overrides)


@asynccontextmanager
async def running_system(*, database_urls: dict[str, str], keys_file: Path, keys: dict[str, str],
                         clock: FrozenClock, data_dir: Path,
                         **overrides: Any) -> AsyncIterator[System]:
    mounts: dict[str, httpx.AsyncBaseTransport] = {}
    apps: dict[str, Any] = {}
    common = {
        "data_dir": data_dir, "api_keys_file": keys_file, "service_key": SERVICE_KEY,
        "workers_enabled": False, "http_retries": 1, "http_backoff_seconds": 0.0,
        "log_json": False, **{f"{s}_url": f"http://{s}.test" for s in SERVICES},
    }
    for service in SERVICES:
        settings = settings_for(service, **{f"{service}_database_url": database_urls[service]},
                                **common, **overrides.get(service, {}))
        app_module = importlib.import_module(f"services.{service}.app")
        apps[service] = app_module.create_app(settings, clock=clock,
                                              http_mounts={"all://": RoutingTransport(mounts)})
        mounts[f"http://{service}.test"] = httpx.ASGITransport(
            app=apps[service], raise_app_exceptions=False)
    receiver = WebhookReceiver()
    mounts[HOOKS_URL] = httpx.ASGITransport(app=receiver.app)
    system = System(apps=apps, keys=keys, clock=clock, receiver=receiver, mounts=mounts)
    async with AsyncExitStack() as stack:
        for service in SERVICES:
            await stack.enter_async_context(LifespanManager(apps[service], startup_timeout=30,
                                                            shutdown_timeout=30))
        for service in SERVICES:  # what `keep_registered` does once notifier is up
            subscriber = apps[service].state.subscriber
            if subscriber is not None:
                await subscriber.register(apps[service])
        try:
            yield system
        finally:
            await system.aclose()
