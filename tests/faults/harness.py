"""The four services as real processes on real databases, and the means to hurt them.

`Cluster` starts `o2c serve SERVICE --port N` for each service on free loopback ports, with
its own database (a SQLite file in the run's directory, or a throwaway PostgreSQL database
created here and dropped at the end), a generated keys file and `O2C_MIGRATE_ON_STARTUP`.
It can SIGKILL a service (by the pid it started, never another process), keep it down and
start it again with the same environment but without `O2C_FAILPOINTS`, so recovery runs on
clean code. `watch()` notices a service that died on its own — a failpoint firing — names
the point from its log and restarts it. Every wait is bounded; `stop()` terminates, then
kills, each process by pid.

`FAILPOINTS` is the table of the points placed in services/ and shared/ (names from
`shared/failpoints.py`), each with the service it runs in and the order route that reaches
it. `Sizes` holds the scenario sizes: the full form by default, a bounded one for CI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from shared.auth import append_key, generate_key
from shared.settings import SERVICES
from tests import pg_admin

O2C = Path(sys.executable).with_name("o2c")
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 15.0
STOP_GRACE = 5.0  # at the end of a run: SIGTERM, this long to exit, then SIGKILL

# principal -> roles; every principal of the keys file the driver uses.
PRINCIPALS: dict[str, list[str]] = {
    "admin": ["admin"], "sales": ["sales"], "production": ["production"],
    "technical": ["technical"], "quality": ["quality"], "finance": ["finance"],
    "credit_manager": ["credit_manager"],
}

# What the webhook sink subscribes to: every order and invoice event of DESIGN.md §8.
SINK_EVENT_TYPES: tuple[str, ...] = (
    "order.created", "order.submitted", "order.approved", "order.rejected", "order.contracted",
    "order.fulfillment_started", "order.delivered", "order.invoiced", "order.closed",
    "order.cancelled", "order.returned", "order.change_requested", "order.changed",
    "invoice.issued", "invoice.paid",
)


# --- Sizes ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """How big each scenario is. `O2C_FAULTS_BOUNDED=1` picks the CI form; any field can be
    set on its own with `O2C_FAULTS_<FIELD>` (e.g. `O2C_FAULTS_FLOWS=20`)."""

    bounded: bool
    flows: int                 # a: concurrent order flows
    failpoint_flows: int       # e: concurrent flows while a failpoint is armed
    outage_seconds: float      # a, b: how long a killed service stays down
    storm: int                 # b: orders settled at once while orders is killed
    retries: int               # c: POSTs each re-sent at once with the same key
    payments: int              # d: payments per idempotency failpoint
    kill_hits: tuple[int, ...]  # d: the K of `kill@K`; one ledger run each, payments split evenly
    failpoints: tuple[str, ...]  # e: the points to run (empty: every point of the table)
    converge_seconds: float    # after the last restart: how long recovery may take
    lease_seconds: float       # outbox/delivery leases, after which a killed process's claimed
                               # rows come back (0: the services' defaults, 30 s and 60 s)
    recovery_seconds: float    # orders' step recovery tick; grace 2x, backoff cap 5x (0: defaults)
    seed: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Sizes:
        bounded = env.get("O2C_FAULTS_BOUNDED", "").lower() in ("1", "true", "yes")
        sizes = BOUNDED if bounded else FULL
        overrides: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"O2C_FAULTS_{f.name.upper()}")
            if raw is None or f.name == "bounded":
                continue
            current = getattr(sizes, f.name)
            if isinstance(current, tuple):
                items = [s.strip() for s in raw.split(",") if s.strip()]
                overrides[f.name] = tuple(int(s) for s in items) if f.name == "kill_hits" else tuple(items)
            else:
                overrides[f.name] = type(current)(raw)
        return replace(sizes, **overrides)


FULL = Sizes(bounded=False, flows=50, failpoint_flows=16, outage_seconds=60, storm=30,
             retries=1000, payments=500, kill_hits=(1, 7, 23, 51, 88), failpoints=(),
             converge_seconds=180, lease_seconds=0, recovery_seconds=0, seed=20261201)
BOUNDED = Sizes(bounded=True, flows=8, failpoint_flows=6, outage_seconds=3, storm=8, retries=100,
                payments=50, kill_hits=(3, 17), failpoints=(
                    "orders.settle.after_invoice", "orders.submit.after_remote"),
                converge_seconds=75, lease_seconds=5, recovery_seconds=1,
                seed=20261201)


# --- Failpoints ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Failpoint:
    """A point of `shared/failpoints.py`: where it runs and which order route reaches it."""

    name: str
    route: str = "happy"  # the driver's route whose flows pass the point (driver.ROUTES)
    hit: int = 1          # kill on the hit-th pass (`kill@hit`): past the first flows' setup

    @property
    def service(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def spec(self) -> str:
        return f"{self.name}=kill@{self.hit}"


ORDER_STEPS: dict[str, str] = {  # orders' cross-service step -> the route that takes it
    "submit": "happy", "credit_recheck": "recheck", "revise": "revise", "cancel": "cancel",
    "sign_contract": "prepaid", "settle": "happy", "return": "returns", "change_apply": "change",
}

FAILPOINTS: dict[str, Failpoint] = {p.name: p for p in (
    *(Failpoint(f"orders.{step}.{moment}", route)
      for step, route in ORDER_STEPS.items() for moment in ("after_intent", "after_remote")),
    Failpoint("orders.settle.after_invoice"),
    *(Failpoint(f"{service}.idempotency.{moment}", hit=hit)
      for service, hit in (("orders", 12), ("credit", 6), ("ledger", 4), ("notifier", 9))
      for moment in ("before_commit", "after_commit")),
    *(Failpoint(f"{service}.outbox.after_post", hit=3) for service in ("orders", "credit", "ledger")),
    Failpoint("notifier.delivery.after_send", hit=5),
)}

IDEMPOTENCY_POINTS = ("ledger.idempotency.before_commit", "ledger.idempotency.after_commit")
_FAILPOINT_LOG = re.compile(r"failpoint (\S+): SIGKILL")


# --- Keys and databases --------------------------------------------------------------------


def write_keys(path: Path) -> dict[str, str]:
    """A keys file (DESIGN.md §2: sha-256, principal, roles) with one fresh key per principal."""
    path.write_text("# keys of one fault-injection run; SHA-256 only\n\n")
    keys = {}
    for principal, roles in PRINCIPALS.items():
        keys[principal] = generate_key()
        append_key(path, keys[principal], principal, roles, None)
    return keys


def pg_server() -> str:
    """The PostgreSQL server the postgres mode creates its databases on."""
    return os.environ.get("O2C_FAULTS_PG_SERVER") or os.environ.get(
        "O2C_TEST_PG_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")


class Databases:
    """One database per service: SQLite files in `directory`, or PostgreSQL `<prefix>_<service>`."""

    def __init__(self, mode: str, directory: Path, prefix: str) -> None:
        if mode not in ("sqlite", "postgres"):
            raise ValueError(f"unknown database mode {mode!r}")
        self.mode, self.directory, self.prefix = mode, directory, prefix
        self.server = pg_server()
        self.created = False

    def url(self, service: str) -> str:
        if self.mode == "sqlite":
            return f"sqlite+aiosqlite:///{self.directory / f'{service}.db'}"
        base = self.server.replace("postgresql://", "postgresql+asyncpg://", 1)
        return base.rsplit("/", 1)[0] + f"/{self.prefix}_{service}"

    async def create(self, services: Iterable[str]) -> None:
        if self.mode == "postgres":
            await pg_admin.drop(self.prefix, self.server)
            for service in services:
                await pg_admin.create(f"{self.prefix}_{service}", self.server)
        self.created = True

    async def drop(self) -> None:
        if self.mode == "postgres" and self.created:
            await pg_admin.drop(self.prefix, self.server)

    async def fetch(self, service: str, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a read-only query on a service's own database (what the harness inspects)."""
        engine = create_async_engine(self.url(service), poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                return [tuple(row) for row in await conn.execute(text(sql))]
        finally:
            await engine.dispose()


async def leftover_databases(prefix: str) -> list[str]:
    """PostgreSQL databases whose name starts with `prefix` (nothing may be left behind)."""
    import asyncpg

    conn = await asyncpg.connect(pg_server())
    try:
        rows = await conn.fetch("SELECT datname FROM pg_database WHERE datname LIKE $1",
                                prefix.replace("_", r"\_") + "%")
        return [r["datname"] for r in rows]
    finally:
        await conn.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- One service process -------------------------------------------------------------------


@dataclass
class Crash:
    """A service that died without the harness killing it."""

    service: str
    returncode: int
    failpoint: str | None  # the point named in its log when it SIGKILLed itself
    at: float

    @property
    def by_sigkill(self) -> bool:
        return self.returncode == -signal.SIGKILL


class ServiceProcess:
    """`o2c serve` for one service; output to a log file that outlives restarts."""

    def __init__(self, name: str, port: int, env: dict[str, str], log_path: Path) -> None:
        self.name, self.port, self.env, self.log_path = name, port, env, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._log_offset = 0

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, failpoints: str | None = None) -> None:
        env = dict(self.env)
        if failpoints:
            env["O2C_FAILPOINTS"] = failpoints
        self.starts += 1
        with self.log_path.open("ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- harness: start #{self.starts} failpoints={failpoints or '-'}\n".encode())
            log.flush()
            self.proc = subprocess.Popen([str(O2C), "serve", self.name, "--port", str(self.port)],
                                         env=env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def returncode(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process this object started (no cleanup, no flush)."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT)

    def terminate(self) -> None:
        """SIGTERM: ask the process to shut down (`stop` waits for it)."""
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGTERM)

    def stop(self, grace: float = STOP_TIMEOUT) -> bool:
        """SIGTERM, then SIGKILL after `grace` seconds; False when it had to be killed."""
        if not self.alive():
            return True
        assert self.proc is not None
        self.terminate()
        try:
            self.proc.wait(timeout=grace)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=STOP_TIMEOUT)
            return False

    def failpoint_fired(self) -> str | None:
        """The failpoint this run of the process SIGKILLed itself at, from its log."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            found = _FAILPOINT_LOG.search(log.read().decode(errors="replace"))
        return found.group(1) if found else None

    async def wait_ready(self, http: httpx.AsyncClient, within: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited with code {self.returncode()} while "
                                   f"starting:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if (await http.get(f"{self.url}/ready", timeout=2)).status_code == 200:
                    return
            await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready within {within:.0f}s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 12) -> str:
        """The last warnings and errors of every run of the service, then its last lines."""
        if not self.log_path.exists():
            return "(no log)"
        every = self.log_path.read_text(errors="replace").splitlines()
        notable = [line for line in every if '"level": "info"' not in line and '"level": "debug"' not in line]
        shown = notable[-lines:] + ["    …"] + every[-5:]
        return "\n".join(f"    {line[:600]}" for line in shown)

    def statuses_logged(self, status: int) -> Counter[str]:
        """Routes whose access-log lines show `status`, over every run of this service."""
        routes: Counter[str] = Counter()
        if not self.log_path.exists():
            return routes
        for line in self.log_path.read_text(errors="replace").splitlines():
            if f'"status": {status}' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if entry.get("status") == status:
                    routes[f"{entry.get('method', '?')} {entry.get('route', '?')}"] += 1
        return routes


# --- The cluster ---------------------------------------------------------------------------


@dataclass
class Cluster:
    """Some or all of the four services as processes, their databases and keys."""

    directory: Path
    databases: Databases
    services: tuple[str, ...] = SERVICES
    lease_seconds: float = 0.0  # 0: the services' own outbox and delivery leases
    recovery_seconds: float = 0.0  # 0: orders' own step recovery timers
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    crashes: list[Crash] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)
    _held: set[str] = field(default_factory=set)
    _started_at: float = field(default_factory=time.monotonic)

    def url(self, service: str) -> str:
        return self.processes[service].url

    def note(self, what: str) -> None:
        self.timeline.append(f"t={time.monotonic() - self._started_at:7.2f}s {what}")

    def _env(self, ports: dict[str, int], keys_file: Path, service_key: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("O2C_")}
        env.update({
            "PYTHONUNBUFFERED": "1",
            "O2C_DATA_DIR": str(self.directory / "data"),
            "O2C_API_KEYS_FILE": str(keys_file),
            "O2C_SERVICE_KEY": service_key,
            "O2C_WEBHOOK_ALLOW_PRIVATE": "true",
            "O2C_MIGRATE_ON_STARTUP": "true",
            "O2C_OUTBOX_POLL_SECONDS": "0.2",
            "O2C_DELIVERY_POLL_SECONDS": "0.2",
            "O2C_LOG_LEVEL": "INFO",
        })
        if self.lease_seconds:
            env["O2C_OUTBOX_LEASE_SECONDS"] = env["O2C_DELIVERY_LEASE_SECONDS"] = str(self.lease_seconds)
        if self.recovery_seconds:
            env["O2C_STEP_RECOVERY_SECONDS"] = str(self.recovery_seconds)
            env["O2C_STEP_GRACE_SECONDS"] = str(2 * self.recovery_seconds)
            env["O2C_STEP_BACKOFF_MAX_SECONDS"] = str(5 * self.recovery_seconds)
        for service in SERVICES:  # services not started stay unreachable, on a free port
            env[f"O2C_{service.upper()}_URL"] = f"http://127.0.0.1:{ports[service]}"
            env[f"O2C_{service.upper()}_DATABASE_URL"] = self.databases.url(service)
        return env

    async def start(self, failpoints: Mapping[str, str] | None = None) -> None:
        """Create the databases and start every service; `failpoints`: service -> O2C_FAILPOINTS."""
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        await self.databases.create(self.services)
        keys_file = self.directory / "api-keys.toml"
        self.keys = write_keys(keys_file)
        self.keys["service"] = generate_key("o2csvc")
        ports = {service: free_port() for service in SERVICES}
        env = self._env(ports, keys_file, self.keys["service"])
        for service in self.services:
            self.processes[service] = ServiceProcess(service, ports[service], env,
                                                     self.directory / f"{service}.log")
            self.processes[service].start((failpoints or {}).get(service))
        async with httpx.AsyncClient() as http:
            await asyncio.gather(*(p.wait_ready(http) for p in self.processes.values()))
        self.note("all services ready")

    async def restart(self, service: str, failpoints: str | None = None) -> None:
        """Start a stopped service again with the same environment (and no failpoints unless
        named: the harness restarts after a crash on clean code)."""
        process = self.processes[service]
        process.start(failpoints)
        async with httpx.AsyncClient() as http:
            await process.wait_ready(http)
        self.note(f"{service} restarted and ready (failpoints {failpoints or '-'})")

    async def rearm(self, service: str, failpoints: str) -> None:
        """Stop the service gracefully and start it again with `failpoints` armed."""
        self._held.add(service)
        try:
            self.processes[service].stop()
            await self.restart(service, failpoints)
        finally:
            self._held.discard(service)

    async def outage(self, service: str, seconds: float) -> None:
        """SIGKILL the service, keep it down `seconds` (the deliberate outage), restart it."""
        self._held.add(service)
        try:
            self.processes[service].kill()
            self.note(f"SIGKILL {service} (pid {self.processes[service].pid}), down {seconds:g}s")
            await asyncio.sleep(seconds)
            await self.restart(service)
        finally:
            self._held.discard(service)

    async def watch(self, down_seconds: float = 0.0) -> None:
        """Until cancelled: restart (clean) any service that died on its own, noting why."""
        while True:
            for service, process in self.processes.items():
                code = process.returncode()
                if code is None or service in self._held:
                    continue
                crash = Crash(service, code, process.failpoint_fired(), time.monotonic())
                self.crashes.append(crash)
                self.note(f"{service} died (code {code}, failpoint {crash.failpoint or '-'})")
                self._held.add(service)
                try:
                    await asyncio.sleep(down_seconds)
                    await self.restart(service)
                finally:
                    self._held.discard(service)
            await asyncio.sleep(0.05)

    def statuses_logged(self, status: int) -> dict[str, Counter[str]]:
        return {s: c for s, p in self.processes.items() if (c := p.statuses_logged(status))}

    def log_tails(self, lines: int = 12) -> str:
        return "\n".join(f"--- {s} ({p.log_path}):\n{p.log_tail(lines)}"
                         for s, p in self.processes.items())

    def stop(self) -> list[str]:
        """Stop every process by pid (terminate, then kill); the services that had to be killed."""
        for process in self.processes.values():
            process.terminate()  # all at once; then wait for (or kill) each
        deadline = time.monotonic() + STOP_GRACE
        return [service for service, process in self.processes.items()
                if not process.stop(grace=max(0.1, deadline - time.monotonic()))]


# --- A webhook sink ------------------------------------------------------------------------


class WebhookSink:
    """A loopback HTTP server that records every webhook delivery it receives (answers 204)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[tuple[dict[str, str], bytes]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with sink._lock:
                    sink._received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/o2c"
        self.secret = ""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def received(self) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return list(self._received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=STOP_TIMEOUT)
