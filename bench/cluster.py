"""The four services as real processes for the benches, on throwaway databases.

`Cluster(mode, ...)` creates one database per service — PostgreSQL `o2c_bench_<pid>_<tag>_<svc>`
on `O2C_BENCH_POSTGRES_URL` (default the local server as user postgres), or SQLite files in a
temporary directory — writes a keys file with one key per principal the benches use, starts
`python -m services.cli serve SERVICE --port N` (what `o2c serve` runs) for each service on a free
loopback port with workers on and `O2C_WEBHOOK_ALLOW_PRIVATE=true`, as production runs them, and
waits for every `/ready`. `tree` runs the services of another checkout (PYTHONPATH and cwd set to
it); `counting=True` starts them through bench/sqlcount.py instead, which tallies their SQL.
`stop()` terminates (then kills) each process it started, by pid; `drop()` drops the databases.
`replicas={"orders": 2}` starts that many processes of a service on its one database, each on a
port of its own (`orders`, then `orders.1`, ... in `processes`), the extra ones once the first
are ready (its migrations done); the other services are given replica 0's URL (`url(s)`),
`urls(s)` lists them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from shared.auth import append_key

SERVICES = ("orders", "credit", "ledger", "notifier")


def tree_commit(tree: Path) -> str:
    """The checkout's short commit, plus how many files of services/ and shared/ differ from it."""
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--", "services",
                            "shared"], capture_output=True, text=True).stdout.splitlines()
    if dirty:
        commit += f" + {len(dirty)} uncommitted change(s) in services/ and shared/"
    return commit
REPO = Path(__file__).resolve().parents[1]
SERVER = os.environ.get("O2C_BENCH_POSTGRES_URL",
                        "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres")
PRINCIPALS: dict[str, list[str]] = {
    "admin": ["admin"], "sales": ["sales"], "production": ["production"],
    "technical": ["technical"], "quality": ["quality"], "finance": ["finance"],
    "credit_manager": ["credit_manager"],
}
SERVICE_KEY = "bench-service-key"
READY_TIMEOUT = 120.0
QUEUE_SQL = {s: "SELECT count(*) FROM outbox WHERE dispatched_at IS NULL"
             for s in ("orders", "credit", "ledger")}
QUEUE_SQL["notifier"] = "SELECT count(*) FROM deliveries WHERE status = 'pending'"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (Linux /proc; 0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_urls(name: str) -> tuple[str, str, str]:
    """(admin DSN for asyncpg, SQLAlchemy URL of database `name`, asyncpg DSN of it)."""
    url = make_url(SERVER)
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    db = url.set(database=name)
    return (admin, db.render_as_string(hide_password=False),
            db.set(drivername="postgresql").render_as_string(hide_password=False))


async def pg_create(names: list[str]) -> None:
    admin = pg_urls("postgres")[0]
    conn = await asyncpg.connect(admin)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def pg_drop(names: list[str]) -> None:
    admin = pg_urls("postgres")[0]
    conn = await asyncpg.connect(admin)
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def pg_xacts(names: list[str]) -> dict[str, tuple[int, int]]:
    """(xact_commit, xact_rollback) of each database from pg_stat_database."""
    conn = await asyncpg.connect(pg_urls("postgres")[0])
    try:
        rows = await conn.fetch("SELECT datname, xact_commit, xact_rollback FROM pg_stat_database "
                                "WHERE datname = ANY($1::text[])", names)
        return {r["datname"]: (r["xact_commit"], r["xact_rollback"]) for r in rows}
    finally:
        await conn.close()


async def pg_wait_idle(names: list[str], within: float = 15.0) -> None:
    """Wait until no backend is connected to these databases (a backend reports its counters
    to pg_stat_database when it exits; an idle one only after up to 10 s)."""
    deadline = time.monotonic() + within
    conn = await asyncpg.connect(pg_urls("postgres")[0])
    try:
        while time.monotonic() < deadline:
            if not await conn.fetchval("SELECT count(*) FROM pg_stat_activity "
                                       "WHERE datname = ANY($1::text[])", names):
                return
            await asyncio.sleep(0.1)
    finally:
        await conn.close()


def parse_requests(text: str) -> Counter[tuple[str, str, str, str]]:
    """o2c_http_requests_total by (service, method, route, status) from Prometheus text."""
    found: Counter[tuple[str, str, str, str]] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "o2c_http_requests_total":
                labels = sample.labels
                found[(labels.get("service", ""), labels.get("method", ""),
                       labels.get("route", ""), labels.get("status", ""))] += int(sample.value)
    return found


def parse_queue_depths(text: str) -> dict[str, float]:
    depths = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "o2c_queue_depth":
                depths[f"{sample.labels.get('service')}.{sample.labels.get('queue')}"] = sample.value
    return depths


@dataclass
class Process:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid


def start_process(name: str, argv: list[str], env: dict[str, str], log: Path,
                  cwd: Path | None = None, port: int | None = None) -> Process:
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    return Process(name, port or 0, proc, log)


def stop_processes(processes: list[Process], grace: float = 15.0) -> None:
    """SIGTERM each process (by the pid we started), wait, SIGKILL what is left."""
    for p in processes:
        if p.proc.poll() is None:
            p.proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for p in processes:
        try:
            p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait(timeout=5)


async def wait_ready(processes: list[Process], within: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as http:
        for p in processes:
            while True:
                if p.proc.poll() is not None:
                    raise SystemExit(f"{p.name} exited with {p.proc.returncode} while starting:\n"
                                     + tail(p.log))
                try:
                    async with http.get(p.url + "/ready", timeout=aiohttp.ClientTimeout(total=2)) as r:
                        if r.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"{p.name} was not ready within {within:.0f} s:\n" + tail(p.log))
                await asyncio.sleep(0.1)


def log_problems(processes: list[Process]) -> list[str]:
    """Warning and error lines the processes logged: how many, the first, and how many say the
    PostgreSQL server refused a connection (max_connections reached: the machine's load)."""
    found = []
    for p in processes:
        try:
            lines = p.log.read_text(errors="replace").splitlines()
        except OSError:
            continue
        bad = [line for line in lines if '"level": "error"' in line or '"level": "warning"' in line
               or "Traceback" in line or line.startswith(("ERROR", "WARNING"))]
        refused = sum("too many clients" in line for line in lines)
        if bad or refused:
            found.append(f"{p.name}: {len(bad)} warning/error lines"
                         + (f", {refused} mention 'too many clients already'" if refused else "")
                         + (f"; first: {bad[0][:300]}" if bad else ""))
    return found


async def pg_connections() -> tuple[int, int]:
    """(connections in use, max_connections) of the server."""
    conn = await asyncpg.connect(pg_urls("postgres")[0])
    try:
        used = await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                                   "'client backend'")
        return int(used), int(await conn.fetchval("SHOW max_connections"))
    finally:
        await conn.close()


def tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join("    " + line[:400] for line in
                         log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "    (no log)"


@dataclass
class Cluster:
    mode: str  # "postgres" | "sqlite"
    tag: str  # part of the database names: "o2c", "count", ...
    tree: Path | None = None
    counting: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="o2c-bench-")))
    db_drain: bool = False
    replicas: dict[str, int] = field(default_factory=dict)  # service -> processes (default 1)
    processes: dict[str, Process] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    _pg: dict[str, Any] = field(default_factory=dict)

    def db_name(self, service: str) -> str:
        return f"o2c_bench_{os.getpid()}_{self.tag}_{service}"

    @property
    def db_names(self) -> list[str]:
        return [self.db_name(s) for s in SERVICES]

    def db_url(self, service: str) -> str:
        if self.mode == "sqlite":
            return f"sqlite+aiosqlite:///{self.directory / f'{service}.db'}"
        return pg_urls(self.db_name(service))[1]

    def url(self, service: str) -> str:
        return self.processes[service].url

    def replica_names(self, service: str) -> list[str]:
        """`service`, `service.1`, ...: the keys of its processes in `processes`."""
        return [service] + [f"{service}.{k}" for k in range(1, self.replicas.get(service, 1))]

    def urls(self, service: str) -> list[str]:
        return [self.processes[name].url for name in self.replica_names(service)]

    def pids(self) -> dict[str, int]:
        return {s: p.pid for s, p in self.processes.items()}

    def cpu(self) -> dict[str, float]:
        return {s: cpu_seconds(p.pid) for s, p in self.processes.items()}

    def auth(self, principal: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[principal]}"}

    async def start(self) -> None:
        if self.mode == "postgres":
            await pg_create(self.db_names)
        keys_file = self.directory / "api-keys.toml"
        keys_file.write_text("# keys of one bench run\n\n")
        for principal, roles in PRINCIPALS.items():
            self.keys[principal] = f"bench-{principal}-{os.getpid()}"
            append_key(keys_file, self.keys[principal], principal, roles, None)
        self.keys["service"] = SERVICE_KEY
        ports = {s: free_port() for s in SERVICES}
        tree = (self.tree or REPO).resolve()
        env = {k: v for k, v in os.environ.items() if not k.startswith("O2C_")}
        env.update({
            "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1",
            "O2C_DATA_DIR": str(self.directory / "data"), "O2C_API_KEYS_FILE": str(keys_file),
            "O2C_SERVICE_KEY": SERVICE_KEY, "O2C_WEBHOOK_ALLOW_PRIVATE": "true",
            "O2C_MIGRATE_ON_STARTUP": "true", "O2C_WORKERS_ENABLED": "true",
            "O2C_LOG_LEVEL": "WARNING",
        })
        for s in SERVICES:
            env[f"O2C_{s.upper()}_URL"] = f"http://127.0.0.1:{ports[s]}"
            env[f"O2C_{s.upper()}_DATABASE_URL"] = self.db_url(s)
        env.update(self.extra_env)

        def argv(s: str, port: int) -> list[str]:
            if self.counting:
                head = [sys.executable, str(REPO / "bench" / "sqlcount.py")]
            else:
                head = [sys.executable, "-m", "services.cli"]
            return head + ["serve", s, "--port", str(port)]

        for s in SERVICES:
            self.processes[s] = start_process(s, argv(s, ports[s]), env,
                                              self.directory / f"{s}.log", cwd=tree, port=ports[s])
        await wait_ready(list(self.processes.values()))
        extra = []
        for s in SERVICES:
            for name in self.replica_names(s)[1:]:
                port = free_port()
                self.processes[name] = start_process(name, argv(s, port), env,
                                                     self.directory / f"{name}.log", cwd=tree,
                                                     port=port)
                extra.append(self.processes[name])
        await wait_ready(extra)

    async def metrics(self, http: aiohttp.ClientSession) -> tuple[Counter[tuple[str, ...]], dict[str, float]]:
        """Requests by (service, method, route, status) and queue depths, over all services
        (every replica's requests)."""
        total: Counter[tuple[str, ...]] = Counter()
        depths: dict[str, float] = {}
        for p in self.processes.values():
            async with http.get(p.url + "/metrics") as r:
                text = await r.text()
            total.update(parse_requests(text))
            depths.update(parse_queue_depths(text))
        return total, depths

    async def drain(self, http: aiohttp.ClientSession, within: float = 60.0) -> bool:
        """Wait until every outbox and delivery queue is empty twice in a row; False on timeout.

        The counting pass asks the services (/metrics queue depths: its probes are booked apart);
        with `db_drain` the databases are asked directly, so that polling costs the services
        nothing while their CPU is being measured."""
        deadline = time.monotonic() + within
        quiet = 0
        while time.monotonic() < deadline:
            if self.db_drain:
                busy = {k: v for k, v in (await self.queue_depths()).items() if v}
            else:
                _, depths = await self.metrics(http)
                busy = {k: v for k, v in depths.items()
                        if v and (k.endswith(".outbox") or k.endswith(".deliveries"))}
            quiet = quiet + 1 if not busy else 0
            if quiet >= 2:
                return True
            await asyncio.sleep(0.2)
        return False

    async def queue_depths(self) -> dict[str, int]:
        """Undispatched outbox rows (orders, credit, ledger) and pending deliveries (notifier),
        read from the databases by the bench itself."""
        depths = {}
        for s, sql in QUEUE_SQL.items():
            if self.mode == "postgres":
                if s not in self._pg:
                    self._pg[s] = await asyncpg.connect(pg_urls(self.db_name(s))[2])
                depths[s] = int(await self._pg[s].fetchval(sql))
            else:
                with contextlib.closing(sqlite3.connect(
                        f"file:{self.directory / f'{s}.db'}?mode=ro", uri=True, timeout=5)) as conn:
                    depths[s] = int(conn.execute(sql).fetchone()[0])
        return depths

    def stop(self) -> None:
        stop_processes(list(self.processes.values()))

    async def close(self) -> None:
        """Stop the processes and close the bench's own connections to the databases."""
        self.stop()
        for conn in self._pg.values():
            await conn.close()
        self._pg.clear()

    def log_problems(self) -> list[str]:
        return log_problems(list(self.processes.values()))

    async def drop(self) -> None:
        if self.mode == "postgres":
            await pg_drop(self.db_names)
