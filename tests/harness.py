"""Wires the four services in one process for tests.

Each service gets its own database (a copy of a migrated SQLite template, or a PostgreSQL
database truncated between tests), the shared frozen clock, the test keys file and an
`httpx` client whose mounts route `http://<service>.test` to the other apps in-process.
Background workers are off: tests drive the outbox relay and deliveries with `pump()`.

`running_system(..., lock_probe=True)` (or `O2C_TEST_LOCK_PROBE=1` for the whole suite) turns
on `LockProbe`, which pins DESIGN.md §9 "No lock across the network": every request an app
sends to another service (or webhook) is checked against the sender's own database, and a
write transaction held by the sending call chain at that instant fails the test.
"""

from __future__ import annotations

import asyncio
import contextvars
import importlib
import os
import sqlite3
import traceback
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import greenlet
import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from sqlalchemy.engine import make_url
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
    test can take a service down (or bring it back) by swapping its entry in `System.mounts`.

    With a `probe`, every request `caller` sends is first checked by it (`LockProbe.check`)."""

    def __init__(self, mounts: dict[str, httpx.AsyncBaseTransport], *, caller: str | None = None,
                 probe: LockProbe | None = None) -> None:
        self.mounts = mounts
        self.caller = caller
        self.probe = probe

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.probe is not None and self.caller is not None:
            await self.probe.check(self.caller, request)
        origin = f"{request.url.scheme}://{request.url.host}"
        transport = self.mounts.get(origin)
        if transport is None:
            raise httpx.ConnectError(f"no test route to {origin}", request=request)
        return await transport.handle_async_request(request)


# ---------------------------------------------------------------- the lock probe

LOCK_PROBE_ENV = "O2C_TEST_LOCK_PROBE"
_PROBE_KEY = "o2c_lock_probe_txn"
_REPO = Path(__file__).resolve().parent.parent
_HERE = Path(__file__).resolve()


def lock_probe_from_env() -> bool:
    return os.environ.get(LOCK_PROBE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class _Txn:
    """A transaction one app's engine began that may write (SQLite: BEGIN IMMEDIATE)."""

    __slots__ = ("active", "begun_at", "pid", "service")

    def __init__(self, service: str, pid: int | None, begun_at: tuple[str, ...]) -> None:
        self.service, self.pid, self.begun_at, self.active = service, pid, begun_at, True


# The transactions begun by this call chain: the task that began one and everything it runs
# or starts afterwards (in-process ASGI calls run in the caller's task; asyncio copies the
# context into tasks it creates). SQLAlchemy runs engine events in a greenlet that shares the
# task's context, so the `begin` listener below adds to the caller's own set.
_CHAIN: contextvars.ContextVar[frozenset[_Txn]] = contextvars.ContextVar(
    "o2c_lock_probe_chain", default=frozenset())


@dataclass(frozen=True)
class LockViolation:
    """`caller` sent `method url` while its call chain held a write transaction."""

    caller: str
    method: str
    url: str
    held: str
    stack: tuple[str, ...]  # where the request was sent from, innermost last
    begun_at: tuple[str, ...]  # where the held transaction began, innermost last

    def __str__(self) -> str:
        frames = "".join(f"\n      {frame}" for frame in self.stack)
        begun = "".join(f"\n      {frame}" for frame in self.begun_at)
        return (f"{self.caller} sent {self.method} {self.url} while holding a write "
                f"transaction on its database ({self.held}); sent from:{frames}\n"
                f"    the transaction began at:{begun}")


def _caller_stack(limit: int = 12) -> tuple[str, ...]:
    """The project's frames (services/, shared/, tests/ but this file), innermost last. Inside
    SQLAlchemy's greenlet (an engine event) the awaiting code is on the parent greenlet."""
    stack = traceback.extract_stack()[:-2]
    parent = greenlet.getcurrent().parent
    if parent is not None and parent.gr_frame is not None:
        stack = traceback.extract_stack(parent.gr_frame) + stack
    frames = []
    for frame in stack:
        if frame.filename.startswith("<"):
            continue
        path = Path(frame.filename).resolve()
        if path == _HERE or not path.is_relative_to(_REPO) or ".venv" in path.parts:
            continue
        frames.append(f"{path.relative_to(_REPO)}:{frame.lineno} in {frame.name}")
    return tuple(frames[-limit:])


def sqlite_write_locked(path: str) -> bool:
    """Whether another connection holds the database's write lock: a BEGIN IMMEDIATE that
    may not wait (timeout 0) answers "database is locked"."""
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            return True
        raise
    else:
        conn.execute("ROLLBACK")
        return False
    finally:
        conn.close()


# Locks of a PostgreSQL backend that mean it has written or locked rows: any relation lock
# above ACCESS SHARE (ROW SHARE from SELECT … FOR UPDATE, ROW EXCLUSIVE from INSERT/UPDATE/
# DELETE, …), its own transaction id (assigned at its first write or row lock), tuple and
# advisory locks. (Index locks go with their table's and are left out of the report.)
_PG_HELD_LOCKS = """
SELECT l.locktype, l.mode, c.relname AS relation
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
LEFT JOIN pg_class c ON c.oid = l.relation
WHERE l.pid = ANY($1::int[]) AND l.granted AND a.xact_start IS NOT NULL
  AND ((l.locktype = 'relation' AND l.mode <> 'AccessShareLock' AND c.relkind <> 'i')
       OR l.locktype IN ('transactionid', 'tuple', 'advisory'))
ORDER BY l.locktype, c.relname, l.mode
"""


class LockProbe:
    """Checks, for every request an app sends, that the sending call chain holds no write
    transaction on the app's own database (DESIGN.md §9).

    Each app's engine reports the transactions it begins that may write (SQLite `BEGIN
    IMMEDIATE`; every PostgreSQL transaction) and when they end; the transactions begun in the
    sending task's call chain are the suspects. At the instant of the request:

    - SQLite: a separate sqlite3 connection to the app's database file tries `BEGIN
      IMMEDIATE` with timeout 0 (then rolls back); "database is locked" while a suspect is
      open means the caller holds the database-wide write lock across the network.
    - PostgreSQL: pg_locks of the suspects' backends (by pid): a granted lock that only a
      writer holds (see `_PG_HELD_LOCKS`) means the caller holds row locks across the network;
      a transaction that has only read holds none and passes.

    Transactions of other, concurrent tasks are not the caller's: they are checked when they
    send a request themselves, so concurrent tests do not see false alarms. Not seen: a
    transaction held while waiting for another task that makes the call (a worker fed by a
    queue) — no o2c code does that today.
    """

    def __init__(self) -> None:
        self.violations: list[LockViolation] = []
        self.checks: Counter[str] = Counter()  # requests checked, by caller
        self._sqlite_paths: dict[str, str] = {}
        self._pg_dsns: dict[str, str] = {}
        self._pg: dict[str, Any] = {}
        self._pg_lock = asyncio.Lock()  # one query at a time on the probe's connections

    def watch(self, service: str, app: Any) -> None:
        """Follow the transactions of `app`'s database (after its lifespan created it)."""
        db = app.state.db
        url = make_url(db.url)
        if db.sqlite:
            self._sqlite_paths[service] = str(url.database)
        else:
            self._pg_dsns[service] = url.set(drivername="postgresql").render_as_string(
                hide_password=False)
        engine = db.engine.sync_engine

        def began(conn: Any) -> None:
            if db.sqlite and conn.get_execution_options().get("sqlite_begin") == "DEFERRED":
                return  # a read transaction (WAL): holds no write lock
            pid = None
            if not db.sqlite:
                pid = conn.connection.dbapi_connection._connection.get_server_pid()
            txn = _Txn(service, pid, _caller_stack(limit=4))
            ended(conn)
            conn.info[_PROBE_KEY] = txn
            _CHAIN.set(frozenset(t for t in _CHAIN.get() if t.active) | {txn})

        def ended(conn: Any) -> None:
            txn = conn.info.pop(_PROBE_KEY, None)
            if txn is not None:
                txn.active = False

        def checked_in(_dbapi_connection: Any, record: Any) -> None:
            txn = record.info.pop(_PROBE_KEY, None)
            if txn is not None:
                txn.active = False

        event.listen(engine, "begin", began)
        event.listen(engine, "commit", ended)
        event.listen(engine, "rollback", ended)
        event.listen(engine.pool, "checkin", checked_in)

    async def check(self, caller: str, request: httpx.Request) -> None:
        """Record a violation if `caller`'s call chain holds a write transaction right now."""
        self.checks[caller] += 1
        suspects = [t for t in _CHAIN.get() if t.active and t.service == caller]
        if not suspects:
            return
        if caller in self._sqlite_paths:
            if not sqlite_write_locked(self._sqlite_paths[caller]):
                return
            held = "SQLite: database is locked"
        elif caller in self._pg_dsns:
            rows = await self._pg_locks(caller, [t.pid for t in suspects if t.pid is not None])
            if not rows:
                return
            held = "PostgreSQL: " + ", ".join(
                f"{r['mode']} on {r['relation'] or r['locktype']}" for r in rows)
        else:
            return
        self.violations.append(LockViolation(
            caller, request.method, str(request.url), held, _caller_stack(),
            tuple(frame for t in suspects for frame in t.begun_at)))

    async def _pg_locks(self, service: str, pids: list[int]) -> list[Any]:
        import asyncpg

        async with self._pg_lock:
            conn = self._pg.get(service)
            if conn is None:
                conn = self._pg[service] = await asyncpg.connect(self._pg_dsns[service])
            return list(await conn.fetch(_PG_HELD_LOCKS, pids))

    def take(self) -> list[LockViolation]:
        """The violations recorded so far, forgotten (a test that provokes one on purpose)."""
        found, self.violations = self.violations, []
        return found

    def assert_clean(self) -> None:
        if self.violations:
            found = self.take()
            raise AssertionError(
                f"{len(found)} request(s) sent while holding a write transaction (DESIGN.md §9 "
                f"no lock across the network):\n  " + "\n  ".join(str(v) for v in found))

    async def aclose(self) -> None:
        for conn in self._pg.values():
            await conn.close()
        self._pg.clear()


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
    lock_probe: LockProbe | None = None
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
                         clock: FrozenClock, data_dir: Path, lock_probe: bool | None = None,
                         **overrides: Any) -> AsyncIterator[System]:
    """The four apps wired together; `overrides` are per-service settings. `lock_probe`
    (default: `O2C_TEST_LOCK_PROBE`) fails the test on a request sent under a write lock."""
    mounts: dict[str, httpx.AsyncBaseTransport] = {}
    apps: dict[str, Any] = {}
    probe = LockProbe() if (lock_probe_from_env() if lock_probe is None else lock_probe) else None
    common = {
        "data_dir": data_dir, "api_keys_file": keys_file, "service_key": SERVICE_KEY,
        "workers_enabled": False, "http_retries": 1, "http_backoff_seconds": 0.0,
        "log_json": False, **{f"{s}_url": f"http://{s}.test" for s in SERVICES},
    }
    for service in SERVICES:
        settings = settings_for(service, **{f"{service}_database_url": database_urls[service]},
                                **common, **overrides.get(service, {}))
        app_module = importlib.import_module(f"services.{service}.app")
        routing = RoutingTransport(mounts, caller=service, probe=probe)
        apps[service] = app_module.create_app(settings, clock=clock,
                                              http_mounts={"all://": routing})
        mounts[f"http://{service}.test"] = httpx.ASGITransport(
            app=apps[service], raise_app_exceptions=False)
    receiver = WebhookReceiver()
    mounts[HOOKS_URL] = httpx.ASGITransport(app=receiver.app)
    system = System(apps=apps, keys=keys, clock=clock, receiver=receiver, mounts=mounts,
                    lock_probe=probe)
    async with AsyncExitStack() as stack:
        for service in SERVICES:
            await stack.enter_async_context(LifespanManager(apps[service], startup_timeout=30,
                                                            shutdown_timeout=30))
        if probe is not None:
            stack.push_async_callback(probe.aclose)
            for service in SERVICES:
                probe.watch(service, apps[service])
        for service in SERVICES:  # what `keep_registered` does once notifier is up
            subscriber = apps[service].state.subscriber
            # Databases copied from the suite's templates (conftest) hold the subscriptions
            # already: checking costs one read, registering four calls to notifier.
            if subscriber is not None and not await subscriber.registered(apps[service]):
                await subscriber.register(apps[service])
        try:
            yield system
        finally:
            await system.aclose()
        if probe is not None:
            probe.assert_clean()
