"""Write paths at the speed of their SQL (issue 11): o2c's write endpoints next to bare endpoints
that issue the same SQL, on PostgreSQL and on SQLite, in one run.

For each database (PostgreSQL: throwaway databases `o2c_bench_<pid>_<tag>_<service>` on
`O2C_BENCH_POSTGRES_URL`, created and dropped; SQLite: files in a temporary directory):

1. Counting pass (one client, `--count-requests` per path). The four services run through
   bench/sqlcount.py (the same `services.cli serve`, with SQLAlchemy hooks) with their periodic
   polls an hour apart, so that only work the requests cause is counted; the outbox relay and
   the deliveries still run, woken by each commit. Per request of each path: the SQL statements
   (by kind) and transactions of each service, split into the request's own path (`sync`: every
   request carrying its X-Request-ID, in any service) and what follows the answer (`async`:
   outbox relay, notifier's ingest and deliveries, inbox handlers); pool checkouts and
   pre-pings; the HTTP requests between services (the wrapper's tally by request id, checked
   against each service's /metrics request counters, diffed, less the client's own requests).
   pg_stat_statements needs `shared_preload_libraries`, so statements are counted in the
   processes; on PostgreSQL the transaction totals are checked against pg_stat_database
   (`xact_commit + xact_rollback`), read once the services' backends exited.
2. o2c, measured: the four services as plain `python -m services.cli serve SERVICE` (what `o2c
   serve` runs; workers on, `O2C_WEBHOOK_ALLOW_PRIVATE=true`, default pools, as production),
   customers with a large credit limit and open invoices made through the API; per path a
   warm-up, then `--requests` requests from N concurrent clients (16 on PostgreSQL, 64 on
   SQLite): POST /v1/customers, POST /v1/orders (orders asks credit for the customer), POST
   /v1/orders/{id}/submit (of the drafts the previous path made: credit reserves), POST
   /v1/payments (oldest open invoice first), and the lifecycle — create → submit → five reviews
   → contract → start-fulfillment → deliveries → settle → pay → closed on `invoice.paid`, the
   happy route of tests/faults/driver.py — for `--flows` orders, `--flow-concurrency` (16) at a
   time: orders/s. Reported: req/s, p50, p99, 5xx (and transport errors: must be 0), the CPU
   seconds per request of each process (/proc/<pid>/stat), taken once the outbox and delivery
   queues are empty again (read from the databases, so the polling costs the services nothing)
   so that the events a request causes are in it; `tail`: how long that took after the last
   answer; HTTP requests between services per request under load, and 5xx among them.
3. bare, measured: bench/bare.py (FastAPI + asyncpg, or aiosqlite, under uvicorn; one process
   each for credit, orders and ledger, on databases migrated with shared.migrations) issuing
   the same statements as o2c for each path (the counting pass prints both sides' counts), with
   the same requests at the same concurrency, after o2c's processes stopped (the two never hold
   the server's connections at once). Submit is a two-service hop: bare orders reads and writes
   its order and calls bare credit over HTTP (aiohttp), which reads and inserts the reservation.

    .venv/bin/python -m bench.write_paths [--databases postgres,sqlite] [--requests 200]
        [--warmup 20] [--pg-concurrency 16] [--sqlite-concurrency 64] [--customers 16]
        [--flows 16] [--flow-concurrency 16] [--count-requests 5] [--count-flows 2]
        [--paths customers,orders,submit,payments,lifecycle] [--tree PATH] [--no-bare]
        [--show-sql] [--phase-timeout 20] [--verbose]

`--tree PATH` runs the o2c processes from another checkout (PYTHONPATH and cwd set to it; the
bench itself, the bare reference and its schema stay this checkout's), to measure an older
commit the same way. Bounded: fixed request counts, no request started after a phase's deadline
(`--phase-timeout`, then the rate is of what was sent), a bounded wait for every queue, and every
process started here is stopped by its pid; the databases are dropped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from bench.cluster import (
    REPO,
    Cluster,
    Process,
    cpu_seconds,
    free_port,
    log_problems,
    pg_connections,
    pg_create,
    pg_drop,
    pg_urls,
    pg_wait_idle,
    pg_xacts,
    start_process,
    stop_processes,
    tree_commit,
    wait_ready,
)

PATHS = ("customers", "orders", "submit", "payments", "lifecycle")
LABELS = {"customers": "POST /v1/customers", "orders": "POST /v1/orders",
          "submit": "POST /v1/orders/{id}/submit", "payments": "POST /v1/payments",
          "lifecycle": "lifecycle, orders/s"}
DEPARTMENTS = ("sales", "production", "technical", "quality", "finance")
QUANTITY, UNIT_PRICE = 100, 1850
PAYMENT_MINOR, INVOICE_MINOR = 1_000, 2_000
LIMIT_MINOR = 10_000_000_000
# The counting pass: periodic polls an hour apart, so an idle poll is not counted as work.
QUIET_POLLS = {f"O2C_{name}": "3600" for name in (
    "OUTBOX_POLL_SECONDS", "DELIVERY_POLL_SECONDS", "DUNNING_POLL_SECONDS", "EMAIL_POLL_SECONDS",
    "STEP_RECOVERY_SECONDS", "CREDIT_RETRY_SECONDS")}
CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})
REQUEST_TIMEOUT = 60.0
DRAIN_LIMIT = 120.0  # the longest wait for o2c's queues after a measured phase
FLOW_LIMIT = 180.0  # the longest a lifecycle flow may take, create to closed


# --- HTTP client ---------------------------------------------------------------------------


class Api:
    """The bench's client for o2c or the bare processes; counts what it sent and got."""

    def __init__(self, http: aiohttp.ClientSession, urls: dict[str, str],
                 keys: dict[str, str]) -> None:
        self.http, self.urls, self.keys = http, urls, keys
        self.sent: Counter[str] = Counter()  # requests by service, polls left out
        self.polls = 0  # the lifecycle's GETs of its order, and other waiting
        self.statuses: Counter[str] = Counter()
        self.failures: list[str] = []

    def reset(self) -> None:
        self.sent.clear()
        self.polls = 0
        self.statuses.clear()
        self.failures.clear()

    @property
    def server_errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if not s.isdigit() or int(s) >= 500)

    async def call(self, method: str, service: str, path: str, principal: str = "admin",
                   body: Any = None, key: str | None = None, rid: str | None = None,
                   ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.keys.get(principal, 'bare')}",
                   "X-Bench-Client": "1"}
        if key is not None:
            headers["Idempotency-Key"] = key
        if rid is not None:
            headers["X-Request-ID"] = rid
        if (rid or "").startswith("benchpoll-"):
            self.polls += 1
        else:
            self.sent[service] += 1
        try:
            async with self.http.request(method, self.urls[service] + path, json=body,
                                         headers=headers) as r:
                status, raw = r.status, await r.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.statuses[f"error:{type(exc).__name__}"] += 1
            if len(self.failures) < 20:
                self.failures.append(f"{method} {service} {path}: {type(exc).__name__} {exc}")
            return 0, None
        self.statuses[str(status)] += 1
        if status >= 300 and len(self.failures) < 20:
            self.failures.append(f"{method} {service} {path} -> {status}: {raw[:300]!r}")
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, None


def client_connector(limit: int) -> aiohttp.TCPConnector:
    """The bench's connection pool. Idle connections are dropped after 3 s, before uvicorn's
    5 s keep-alive timeout closes them from its side (else a request sent just as the server
    closes would fail with ServerDisconnectedError, which is no answer of the service's)."""
    return aiohttp.TCPConnector(limit=limit, keepalive_timeout=3.0)


@dataclass
class Load:
    count: int
    seconds: float
    latencies: list[float]
    client_cpu: float
    skipped: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def drive(count: int, concurrency: int, one: Callable[[int], Awaitable[Any]],
                deadline: float) -> Load:
    """`one(i)` for i in range(count) on `concurrency` workers, none started after `deadline`."""
    todo = iter(range(count))
    latencies: list[float] = []
    skipped = 0

    async def worker() -> None:
        nonlocal skipped
        for i in todo:
            if time.monotonic() > deadline:
                skipped += 1
                continue
            started = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - started)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    return Load(count, seconds, latencies, (time.process_time() - cpu) / max(1, count), skipped)


# --- What each path sends -----------------------------------------------------------------


@dataclass
class Work:
    """Ids a run of one target needs: set-up customers, the orders created for submit."""

    run: str
    customers: list[str] = field(default_factory=list)
    orders: dict[int, str] = field(default_factory=dict)
    unapplied: int = 0  # payments that found no open invoice (should stay 0)
    flows_closed: int = 0
    flow_failures: list[str] = field(default_factory=list)


def customer_body(name: str) -> dict[str, Any]:
    return {"name": f"Bench {name}", "salesperson_id": "S-BENCH",
            "contacts": [{"name": "Li Na", "role": "finance"}]}


def order_body(customer_id: str, ref: str) -> dict[str, Any]:
    return {"customer_id": customer_id, "currency": "CNY", "payment_method": "credit",
            "payment_terms_days": 30,
            "delivery_date": (date.today() + timedelta(days=30)).isoformat(),
            "delivery_place": "Shenzhen warehouse 3", "external_ref": ref,
            "lines": [{"sku": "PCB-4L", "name": "4-layer PCB", "quantity": str(QUANTITY),
                       "unit_price_minor": UNIT_PRICE}]}


def request_for(path: str, api: Api, work: Work, rid: Callable[[int], str | None],
                ) -> Callable[[int], Awaitable[Any]]:
    """The request `i` of a path (customers, orders, submit, payments)."""
    run = work.run

    async def customers(i: int) -> None:
        await api.call("POST", "credit", "/v1/customers", "credit_manager",
                       customer_body(f"{run}-{i}"), key=f"{run}-customer-{i}", rid=rid(i))

    async def orders(i: int) -> None:
        customer = work.customers[i % len(work.customers)]
        status, body = await api.call("POST", "orders", "/v1/orders", "sales",
                                      order_body(customer, f"{run}-{i}"), key=f"{run}-order-{i}",
                                      rid=rid(i))
        if status == 201:
            work.orders[i] = body["id"]

    async def submit(i: int) -> None:
        order = work.orders.get(i)
        if order is None:
            api.statuses["no draft order"] += 1
            return
        await api.call("POST", "orders", f"/v1/orders/{order}/submit", "sales",
                       key=f"{run}-submit-{i}", rid=rid(i))

    async def payments(i: int) -> None:
        customer = work.customers[i % len(work.customers)]
        status, body = await api.call("POST", "ledger", "/v1/payments", "finance", {
            "customer_id": customer, "amount_minor": PAYMENT_MINOR, "currency": "CNY",
            "method": "bank_transfer", "reference": f"{run}-{i}"}, key=f"{run}-pay-{i}", rid=rid(i))
        if status == 201 and body.get("unapplied_minor"):
            work.unapplied += 1

    return {"customers": customers, "orders": orders, "submit": submit,
            "payments": payments}[path]


async def lifecycle_flow(api: Api, work: Work, i: int, counting: bool) -> None:
    """One credit order from intake to its automatic close on `invoice.paid` (the happy route
    of tests/faults/driver.py): customer, limit, order, submit, five reviews (approve if still
    in review), contract, start-fulfillment, deliveries, settle, payment, then wait for closed
    (at most FLOW_LIMIT seconds after the flow began)."""
    deadline = time.monotonic() + FLOW_LIMIT
    name = f"{work.run}-life-{i}"
    step_no = 0

    def rid() -> str | None:
        nonlocal step_no
        step_no += 1
        return f"bench-{name}-{step_no}" if counting else None

    async def must(method: str, service: str, path: str, principal: str, body: Any = None,
                   step: str = "", ok: tuple[int, ...] = (200, 201)) -> Any:
        key = f"{name}-{step}" if method == "POST" else None
        status, answer = await api.call(method, service, path, principal, body, key=key, rid=rid())
        if status not in ok:
            raise RuntimeError(f"{step or path} answered {status}")
        return answer

    now = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    try:
        customer = await must("POST", "credit", "/v1/customers", "credit_manager",
                              customer_body(name), "customer")
        cid = customer["id"]
        await must("PUT", "credit", f"/v1/customers/{cid}/credit-limit", "credit_manager", {
            "limit_minor": LIMIT_MINOR, "currency": "CNY", "terms_days": 30, "reason": "bench"},
            "limit")
        order = await must("POST", "orders", "/v1/orders", "sales", order_body(cid, name), "order")
        oid = order["id"]
        base = f"/v1/orders/{oid}"
        order = await must("POST", "orders", f"{base}/submit", "sales", step="submit")
        for department in DEPARTMENTS:
            order = await must("POST", "orders", f"{base}/reviews", department,
                               {"department": department, "decision": "approve"},
                               f"review-{department}")
        if order["state"] == "in_review":
            order = await must("POST", "orders", f"{base}/approve", "sales", step="approve")
        await must("POST", "orders", f"{base}/contract", "sales",
                   {"contract_number": f"CT-{name}", "signed_at": now}, "contract")
        await must("POST", "orders", f"{base}/start-fulfillment", "production", step="start")
        await must("POST", "orders", f"{base}/deliveries", "production", {
            "delivered_at": now, "lines": [{"line_id": line["id"], "quantity": line["quantity"]}
                                           for line in order["lines"]]}, "deliver")
        order = await must("POST", "orders", f"{base}/settle", "finance", {}, "settle")
        await must("POST", "ledger", "/v1/payments", "finance", {
            "customer_id": cid, "amount_minor": order["total_minor"], "currency": "CNY",
            "method": "bank_transfer", "reference": f"{name}-pay"}, "pay")
        poll = 0
        while True:
            poll += 1
            status, order = await api.call("GET", "orders", base, "sales",
                                           rid=f"benchpoll-{name}-{poll}")
            if status == 200 and order["state"] == "closed":
                work.flows_closed += 1
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"still {order and order.get('state')} {FLOW_LIMIT:.0f} s "
                                   "after it began")
            await asyncio.sleep(0.1)
    except (RuntimeError, KeyError, TypeError) as exc:
        if len(work.flow_failures) < 10:
            work.flow_failures.append(f"flow {i}: {exc}")


# --- Set-up --------------------------------------------------------------------------------


async def setup_o2c(api: Api, work: Work, customers: int, invoices_each: int, concurrency: int,
                    deadline: float) -> None:
    """Customers with a large credit limit, and `invoices_each` open invoices for each."""
    made: dict[int, str] = {}

    async def customer(i: int) -> None:
        status, body = await api.call("POST", "credit", "/v1/customers", "credit_manager",
                                      customer_body(f"{work.run}-setup-{i}"),
                                      key=f"{work.run}-setup-{i}")
        if status != 201:
            raise SystemExit(f"set-up: POST /v1/customers answered {status}: {api.failures[-1:]}")
        status, _ = await api.call("PUT", "credit", f"/v1/customers/{body['id']}/credit-limit",
                                   "credit_manager", {"limit_minor": LIMIT_MINOR, "currency": "CNY",
                                                      "terms_days": 30, "reason": "bench"})
        if status != 200:
            raise SystemExit(f"set-up: PUT credit-limit answered {status}: {api.failures[-1:]}")
        made[i] = body["id"]

    await drive(customers, concurrency, customer, deadline)
    work.customers = [made[i] for i in sorted(made)]
    due = (date.today() + timedelta(days=30)).isoformat()
    pairs = [(c, n) for n in range(invoices_each) for c in work.customers]

    async def invoice(i: int) -> None:
        status, _ = await api.call("POST", "ledger", "/v1/invoices", "service", {
            "order_id": str(uuid.uuid4()), "customer_id": pairs[i][0], "currency": "CNY",
            "amount_minor": INVOICE_MINOR, "due_date": due})
        if status != 201:
            raise SystemExit(f"set-up: POST /v1/invoices answered {status}: {api.failures[-1:]}")

    await drive(len(pairs), concurrency, invoice, deadline)


async def wait_subscribed(api: Api, within: float = 60.0) -> None:
    """orders and credit subscribe to notifier at start-up; the lifecycle needs orders'."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        status, body = await api.call("GET", "notifier", "/v1/webhook-endpoints", "admin",
                                      rid="benchpoll-subscribed")
        if status == 200 and len(body.get("items") or []) >= 2:
            await asyncio.sleep(1.0)  # the subscriber stores its secret once notifier answered
            return
        await asyncio.sleep(0.2)
    raise SystemExit("orders and credit did not subscribe to notifier within 60 s")


# --- The bare reference --------------------------------------------------------------------


@dataclass
class BareSet:
    """bench/bare.py as three processes (credit, orders, ledger) on migrated databases."""

    mode: str
    pool: int
    driver: str = "asyncpg"  # or "sqlalchemy": bench/bare.py's BARE_DRIVER
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="o2c-bare-")))
    processes: dict[str, Process] = field(default_factory=dict)

    ROLES = ("credit", "orders", "ledger")

    def db_name(self, role: str) -> str:
        return f"o2c_bench_{os.getpid()}_bare_{role}"

    def sa_url(self, role: str) -> str:
        if self.mode == "sqlite":
            return f"sqlite+aiosqlite:///{self.directory / f'{role}.db'}"
        return pg_urls(self.db_name(role))[1]

    def bare_url(self, role: str) -> str:
        if self.mode == "sqlite":
            return f"sqlite:///{self.directory / f'{role}.db'}"
        return pg_urls(self.db_name(role))[2]

    def url(self, role: str) -> str:
        return self.processes[role].url

    def pids(self) -> dict[str, int]:
        return {f"bare {r}": p.pid for r, p in self.processes.items()}

    async def create(self) -> None:
        from shared import migrations
        from shared.db import Database

        if self.mode == "postgres":
            await pg_create([self.db_name(r) for r in self.ROLES])
        for role in self.ROLES:
            db = Database(self.sa_url(role))
            try:
                await migrations.upgrade(db.engine, role)
            finally:
                await db.dispose()

    async def seed(self, customers: int, invoices_each: int) -> list[str]:
        """Customers with a credit limit (credit), the chart's two accounts and open invoices
        (ledger), the counters rows SQLite numbers documents with; returns the customer ids."""
        from sqlalchemy import text

        from shared.db import Database

        at = datetime.now(UTC)
        lite = self.mode == "sqlite"

        def v(value: Any) -> Any:
            if lite and isinstance(value, datetime):
                return value.isoformat(sep=" ")
            if lite and isinstance(value, date):
                return value.isoformat()
            return value

        ids = [str(uuid.uuid4()) for _ in range(customers)]
        due = date.today() + timedelta(days=30)
        plan: dict[str, list[tuple[str, list[dict[str, Any]]]]] = {
            "credit": [
                ("INSERT INTO customers (id, number, name, salesperson_id, contacts, bank_accounts, "
                 "version, created_at, updated_at) VALUES (:id, :number, :name, 'S-BENCH', '[]', "
                 "'[]', 1, :at, :at)",
                 [{"id": c, "number": f"CU-S{n:05d}", "name": f"Bare {n}", "at": v(at)}
                  for n, c in enumerate(ids)]),
                ("INSERT INTO credit_profiles (customer_id, limit_minor, currency, terms_days, "
                 "policy, status, version, created_at, updated_at) VALUES (:id, :limit, 'CNY', 30, "
                 "'credit', 'active', 1, :at, :at)",
                 [{"id": c, "limit": LIMIT_MINOR, "at": v(at)} for c in ids])],
            "orders": [],
            "ledger": [
                ("INSERT INTO accounts (code, name, kind, normal_side, requires_customer, system, "
                 "created_at) VALUES (:code, :name, 'asset', 'debit', :rc, true, :at)",
                 [{"code": "1000", "name": "Cash and bank", "rc": False, "at": v(at)},
                  {"code": "1100", "name": "Trade receivables", "rc": True, "at": v(at)}]),
                ("INSERT INTO invoices (id, number, order_id, customer_id, currency, amount_minor, "
                 "outstanding_minor, status, issued_at, due_date, version, created_at, updated_at, "
                 "debit_notes_minor, paid_minor, credited_minor, written_off_minor) VALUES (:id, "
                 ":number, :order_id, :customer, 'CNY', :amount, :amount, 'open', :at, :due, 1, :at, "
                 ":at, 0, 0, 0, 0)",
                 [{"id": str(uuid.uuid4()), "number": f"INV-S{n:06d}", "order_id": str(uuid.uuid4()),
                   "customer": ids[n % customers], "amount": INVOICE_MINOR, "at": v(at),
                   "due": v(due)} for n in range(customers * invoices_each)])],
        }
        if lite:
            for role, series in (("credit", ["customer"]), ("orders", ["order"]),
                                 ("ledger", ["payment", "journal_entry"])):
                plan[role].append(("INSERT INTO counters (name, value) VALUES (:name, 0) "
                                   "ON CONFLICT (name) DO NOTHING", [{"name": s} for s in series]))
        for role, statements in plan.items():
            db = Database(self.sa_url(role))
            try:
                async with db.engine.begin() as conn:
                    for sql, rows in statements:
                        if rows:
                            await conn.execute(text(sql), rows)
            finally:
                await db.dispose()
        return ids

    async def start(self) -> None:
        ports = {r: free_port() for r in self.ROLES}
        for role in self.ROLES:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("O2C_", "BARE_"))}
            env.update({"PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "BARE_ROLE": role,
                        "BARE_DB_URL": self.bare_url(role), "BARE_POOL_SIZE": str(self.pool),
                        "BARE_DRIVER": self.driver,
                        "BARE_PEER": f"http://127.0.0.1:{ports['credit']}" if role == "orders" else ""})
            argv = [sys.executable, "-m", "uvicorn", "bench.bare:app", "--host", "127.0.0.1",
                    "--port", str(ports[role]), "--log-level", "warning", "--no-access-log"]
            self.processes[role] = start_process(f"bare {role}", argv, env,
                                                 self.directory / f"bare-{role}.log", cwd=REPO,
                                                 port=ports[role])
        await wait_ready(list(self.processes.values()))

    async def stats(self, http: aiohttp.ClientSession, reset: bool = True) -> dict[str, Counter[str]]:
        out = {}
        for role, p in self.processes.items():
            async with http.get(f"{p.url}/__bare/stats", params={"reset": int(reset)}) as r:
                out[role] = Counter(await r.json())
        return out

    def stop(self) -> None:
        stop_processes(list(self.processes.values()))

    async def drop(self) -> None:
        if self.mode == "postgres":
            await pg_drop([self.db_name(r) for r in self.ROLES])
        shutil.rmtree(self.directory, ignore_errors=True)


# --- Counting pass -------------------------------------------------------------------------


@dataclass
class Counted:
    """Per request of one path: what each service did (from the SQL hooks and /metrics)."""

    n: int
    sync_stmts: dict[str, Counter[str]]  # service -> kind -> count (all n requests)
    async_stmts: dict[str, Counter[str]]
    sync_xacts: dict[str, tuple[int, int]]  # service -> (commits, rollbacks)
    async_xacts: dict[str, tuple[int, int]]
    sync_checkouts: dict[str, int]
    sync_pings: dict[str, int]
    http_sync: Counter[str]  # "service METHOD /route" -> count, calls between services
    http_async: Counter[str]
    http_metrics: int  # requests between services by /metrics (total less the client's)
    texts: dict[str, Counter[str]]  # service -> sync statement text -> count
    drained: bool = True

    def total_sync(self) -> float:
        return sum(n for c in self.sync_stmts.values() for k, n in c.items()
                   if k.split(" (")[0] not in CONTROL) / self.n


def _split(tally: dict[str, Any]) -> dict[str, Any]:
    """A service's tally by origin class: sync, async (other requests and tasks), probe."""
    out: dict[str, Any] = {"sync": Counter(), "async": Counter(), "xs": [0, 0], "xa": [0, 0],
                           "co": 0, "pings": 0, "http_sync": Counter(), "http_async": Counter()}
    for origin, kinds in tally["stmts"].items():
        if origin == "probe":
            continue
        out["sync" if origin == "sync" else "async"].update(kinds)
    for key, target in (("xacts", 0), ("rollbacks", 1)):
        for origin, n in tally[key].items():
            if origin == "probe":
                continue
            out["xs" if origin == "sync" else "xa"][target] += n
    out["co"] = tally["checkouts"].get("sync", 0)
    out["pings"] = tally.get("pings", {}).get("sync", 0)
    for key, n in tally["requests"].items():
        origin, route = key.split("|", 1)
        if origin == "sync":
            out["http_sync"][route] += n
        elif origin.startswith("in:"):
            out["http_async"][route] += n
    return out


async def _tallies(cluster: Cluster, http: aiohttp.ClientSession, reset: bool) -> dict[str, Any]:
    out = {}
    for s in cluster.processes:
        async with http.get(cluster.url(s) + "/__bench/sql",
                            params={"reset": "1"} if reset else None) as r:
            out[s] = await r.json()
    return out


def _inbound(metrics: Counter[tuple[str, ...]]) -> Counter[str]:
    """Requests by service from /metrics, the scrapes themselves left out."""
    per: Counter[str] = Counter()
    for (service, _method, route, _status), n in metrics.items():
        if route != "/metrics":
            per[service] += n
    return per


async def count_o2c(mode: str, tree: Path | None, n: int, flows: int, paths: list[str],
                    deadline_s: float, verbose: bool = False) -> tuple[dict[str, Counted], str, str | None]:
    """The counting pass; returns per-path counts, the pg cross-check line and the services'
    module path (to show which tree ran)."""
    cluster = Cluster(mode, "count", tree=tree, counting=True, extra_env=QUIET_POLLS)
    began = time.monotonic()

    def stamp(what: str) -> None:
        if verbose:
            print(f"  counting: {what} ({time.monotonic() - began:.0f} s)", flush=True)

    results: dict[str, Counted] = {}
    check = ""
    module = None
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                                     connector=client_connector(100)) as http:
        try:
            await cluster.start()
            stamp("started")
            api = Api(http, {s: cluster.url(s) for s in cluster.processes}, cluster.keys)
            await wait_subscribed(api)
            work = Work(run=f"c{os.getpid()}")
            deadline = time.monotonic() + deadline_s
            await setup_o2c(api, work, 1, (n + 2) // 2 + 2, 1, deadline)
            await cluster.drain(http)
            pg_before = await pg_xacts(cluster.db_names) if mode == "postgres" else {}
            hook_total = [0, 0, 0]  # commits, rollbacks, pool pre-pings over the whole pass
            first = await _tallies(cluster, http, reset=True)
            module = next(iter(first.values())).get("services_module")
            for path in paths:
                if path == "lifecycle":
                    async def one(i: int) -> None:
                        await lifecycle_flow(api, work, i, counting=True)
                    count = flows
                else:
                    one = request_for(path, api, work, lambda i, p=path: f"bench-{p}-{i}")
                    count = n
                for i in range(2 if path != "lifecycle" else 1):  # warm-up: first-use paths
                    await one(count + i)
                await cluster.drain(http)
                before = await _tallies(cluster, http, reset=True)
                for t in before.values():
                    hook_total[0] += sum(t["xacts"].values())
                    hook_total[1] += sum(t["rollbacks"].values())
                    hook_total[2] += sum(t.get("pings", {}).values())
                metrics_before, _ = await cluster.metrics(http)
                api.reset()
                for i in range(count):
                    await one(i)
                drained = await cluster.drain(http)
                metrics_after, _ = await cluster.metrics(http)
                tallies = await _tallies(cluster, http, reset=True)
                for t in tallies.values():
                    hook_total[0] += sum(t["xacts"].values())
                    hook_total[1] += sum(t["rollbacks"].values())
                    hook_total[2] += sum(t.get("pings", {}).values())
                split = {s: _split(t) for s, t in tallies.items()}
                inbound = _inbound(metrics_after) - _inbound(metrics_before)
                http_sync: Counter[str] = Counter()
                http_async: Counter[str] = Counter()
                for s, part in split.items():
                    for route, k in part["http_sync"].items():
                        http_sync[f"{s} {route}"] += k
                    for route, k in part["http_async"].items():
                        http_async[f"{s} {route}"] += k
                results[path] = Counted(
                    n=count,
                    sync_stmts={s: p["sync"] for s, p in split.items()},
                    async_stmts={s: p["async"] for s, p in split.items()},
                    sync_xacts={s: tuple(p["xs"]) for s, p in split.items()},
                    async_xacts={s: tuple(p["xa"]) for s, p in split.items()},
                    sync_checkouts={s: p["co"] for s, p in split.items()},
                    sync_pings={s: p["pings"] for s, p in split.items()},
                    http_sync=+http_sync, http_async=+http_async,
                    http_metrics=sum(inbound.values()) - sum(api.sent.values()) - api.polls,
                    texts={s: Counter(t["texts"].get("sync", {})) for s, t in tallies.items()},
                    drained=drained)
                stamp(path)
                if api.server_errors or api.failures:
                    print(f"  counting {path}: {dict(api.statuses)} {api.failures[:3]}")
            if mode == "postgres":
                cluster.stop()  # the services' backends exit, and report their counters
                await pg_wait_idle(cluster.db_names)
                pg_after = await pg_xacts(cluster.db_names)
                server = sum(pg_after[d][0] - pg_before[d][0] + pg_after[d][1] - pg_before[d][1]
                             for d in cluster.db_names)
                hooks = hook_total[0] + hook_total[1]
                pings = hook_total[2]
                check = (f"cross-check, whole counting pass: pg_stat_database xact_commit + "
                         f"xact_rollback = {server}; the hooks: {hooks} transactions that ran "
                         f"statements + {pings} pool pre-pings (BEGIN, an empty query, ROLLBACK: "
                         f"3 round trips each) = {hooks + pings}; the {server - hooks - pings} "
                         "left ran outside SQLAlchemy's cursor (connection set-up, asyncpg's "
                         "type introspection)")
        finally:
            cluster.stop()
            await cluster.drop()
            shutil.rmtree(cluster.directory, ignore_errors=True)
    return results, check, module


async def count_bare(bare: BareSet, http: aiohttp.ClientSession, api: Api, work: Work, n: int,
                     paths: list[str]) -> dict[str, dict[str, Counter[str]]]:
    out = {}
    await bare.stats(http)
    for path in paths:
        if path == "lifecycle":
            continue
        one = request_for(path, api, work, lambda i: None)
        for i in range(2):
            await one(n + i)
        await bare.stats(http)
        for i in range(n):
            await one(i)
        out[path] = await bare.stats(http)
    return out


# --- Measured pass -------------------------------------------------------------------------


@dataclass
class Measured:
    load: Load
    statuses: Counter[str]
    server_errors: int
    cpu: dict[str, float]  # process -> CPU seconds per request
    internal_5xx: int = 0  # 5xx any o2c service answered another (from /metrics)
    http_between: float = 0.0  # requests between services per request (from /metrics)
    tail: float = 0.0  # seconds from the last answer until the outbox and delivery queues were empty
    failures: list[str] = field(default_factory=list)
    note: str = ""


async def measure(path: str, api: Api, work: Work, pids: dict[str, int], n: int, warmup: int,
                  concurrency: int, deadline_s: float,
                  drain: Callable[[], Awaitable[bool]],
                  metrics: Callable[[], Awaitable[Counter[tuple[str, ...]]]] | None) -> Measured:
    if path == "lifecycle":
        async def one(i: int) -> None:
            await lifecycle_flow(api, work, i, counting=False)
    else:
        one = request_for(path, api, work, lambda i: None)
    await drive(warmup, concurrency, lambda i: one(n + i), time.monotonic() + deadline_s)
    await drain()
    api.reset()
    work.flows_closed, work.flow_failures, work.unapplied = 0, [], 0
    m0 = await metrics() if metrics else None
    cpu0 = {k: cpu_seconds(pid) for k, pid in pids.items()}
    load = await drive(n, concurrency, one, time.monotonic() + deadline_s)
    tail_started = time.perf_counter()
    drained = await drain()
    tail = time.perf_counter() - tail_started
    cpu1 = {k: cpu_seconds(pid) for k, pid in pids.items()}
    done = max(1, len(load.latencies))
    result = Measured(load=load, statuses=Counter(api.statuses), server_errors=api.server_errors,
                      cpu={k: (cpu1[k] - cpu0[k]) / done for k in pids},
                      failures=list(api.failures), tail=tail)
    if metrics and m0 is not None:
        m1 = await metrics()
        diff = m1 - m0
        result.internal_5xx = sum(v for (s, _m, r, st), v in diff.items()
                                  if st.startswith("5") and r != "/metrics")
        result.http_between = (sum(_inbound(m1).values()) - sum(_inbound(m0).values())
                               - sum(api.sent.values()) - api.polls) / done
    notes = []
    if load.skipped:
        notes.append(f"{load.skipped} not sent (phase deadline)")
    if not drained:
        notes.append(f"queues not drained {DRAIN_LIMIT:.0f} s after the last answer (CPU "
                     "figures miss the rest)")
    if path == "lifecycle" and work.flows_closed != n - load.skipped:
        notes.append(f"{work.flows_closed}/{n} flows closed; {work.flow_failures[:3]}")
    if path == "payments" and work.unapplied:
        notes.append(f"{work.unapplied} payments found no open invoice")
    result.note = "; ".join(notes)
    return result


async def run_database(mode: str, args: argparse.Namespace) -> dict[str, Any]:
    concurrency = args.pg_concurrency if mode == "postgres" else args.sqlite_concurrency
    customers = args.customers
    paths = [p for p in PATHS if p in args.paths]
    title = "PostgreSQL" if mode == "postgres" else "SQLite"
    report: dict[str, Any] = {"mode": mode, "title": title, "concurrency": concurrency,
                              "customers": customers, "paths": paths}
    print(f"\n== {title}: {concurrency} clients, {args.requests} requests per path after "
          f"{args.warmup} warm-up, lifecycle {args.flows} orders {args.flow_concurrency} at a time",
          flush=True)
    started = time.monotonic()
    if mode == "postgres":
        used, most = await pg_connections()
        report["connections"] = (f"PostgreSQL connections (max_connections {most}): "
                                 f"{used} in use when the run began")
    else:
        report["connections"] = ""

    def stamp(what: str) -> None:
        if args.verbose:
            print(f"  {what} ({time.monotonic() - started:.0f} s)", flush=True)

    if args.count_requests:
        counted, check, module = await count_o2c(mode, args.tree, args.count_requests,
                                                 args.count_flows, paths, args.phase_timeout,
                                                 args.verbose)
        report.update(counted=counted, check=check, module=module)
        print(f"  counting pass done in {time.monotonic() - started:.0f} s "
              f"(services from {module})", flush=True)

    measured: dict[str, dict[str, Measured]] = {"o2c": {}, "bare": {}, "core": {}}
    report["measured"] = measured
    report["log_problems"] = []
    invoices_each = math.ceil((args.requests + args.warmup) / customers / 2) + 1
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    connector = client_connector(max(concurrency, args.flow_concurrency) * 2)

    def plan(path: str) -> tuple[int, int, int]:
        """(requests, clients, warm-up) of a path: lifecycle counts orders, 16 at a time."""
        if path == "lifecycle":
            return args.flows, args.flow_concurrency, min(args.flow_concurrency, 4)
        return args.requests, concurrency, args.warmup

    async def pg_note(when: str) -> None:
        if mode == "postgres":
            used, _ = await pg_connections()
            report["connections"] += f"; {used} {when}"

    # o2c first, then the bare reference: one after the other, so that the two never hold the
    # server's connections at once, and o2c's idle workers do not run beside the bare phases.
    cluster = Cluster(mode, "o2c", tree=args.tree, db_drain=True)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
        try:
            await cluster.start()
            stamp("o2c started")
            api = Api(http, {s: cluster.url(s) for s in cluster.processes}, cluster.keys)
            await wait_subscribed(api)
            work = Work(run=f"m{os.getpid()}")
            await setup_o2c(api, work, customers, invoices_each, concurrency,
                            time.monotonic() + args.phase_timeout)
            await cluster.drain(http, within=DRAIN_LIMIT)
            stamp(f"o2c set-up: {customers} customers, {customers * invoices_each} invoices")

            async def o2c_metrics() -> Counter[tuple[str, ...]]:
                return (await cluster.metrics(http))[0]

            async def o2c_drain() -> bool:
                return await cluster.drain(http, within=DRAIN_LIMIT)

            for path in paths:
                n, lanes, warmup = plan(path)
                measured["o2c"][path] = m = await measure(
                    path, api, work, cluster.pids(), n, warmup, lanes, args.phase_timeout,
                    o2c_drain, o2c_metrics)
                print(f"  o2c  {LABELS[path]:<28} {_rate(m)}  ({time.monotonic() - started:.0f} s)",
                      flush=True)
            await pg_note("with o2c's pools open at its end")
            report["log_problems"] += cluster.log_problems()
        finally:
            await cluster.close()
            await cluster.drop()
            shutil.rmtree(cluster.directory, ignore_errors=True)

    if args.no_bare:
        report["seconds"] = time.monotonic() - started
        return report
    # The bare reference; with --core-floor (PostgreSQL) once more with the same SQL through
    # SQLAlchemy Core (bench/bare.py BARE_DRIVER=sqlalchemy): the floor of o2c's stack.
    drivers = ["asyncpg"] + (["sqlalchemy"] if args.core_floor and mode == "postgres" else [])
    for driver in drivers:
        side = "bare" if driver == "asyncpg" else "core"
        await _measure_bare(mode, args, report, driver, side, concurrency, customers,
                            invoices_each, plan, pg_note, stamp, started, timeout)
    report["seconds"] = time.monotonic() - started
    return report


async def _measure_bare(mode: str, args: argparse.Namespace, report: dict[str, Any], driver: str,
                        side: str, concurrency: int, customers: int, invoices_each: int,
                        plan: Any, pg_note: Any, stamp: Any, started: float,
                        client_timeout: aiohttp.ClientTimeout) -> None:
    """One bare phase (bench/bare.py with `driver`) into report["measured"][side]."""
    measured = report["measured"]
    paths = report["paths"]
    bare = BareSet(mode, pool=concurrency, driver=driver)
    connector = client_connector(max(concurrency, args.flow_concurrency) * 2)
    async with aiohttp.ClientSession(timeout=client_timeout, connector=connector) as http:
        try:
            await bare.create()
            bare_customers = await bare.seed(  # customer 0 also pays the counting pass's
                customers, invoices_each + math.ceil(args.count_requests / 2) + 2)
            await bare.start()
            stamp(f"{side} ({driver}) migrated, seeded, started")
            bare_api = Api(http, {"credit": bare.url("credit"), "orders": bare.url("orders"),
                                  "ledger": bare.url("ledger")}, {})
            if args.count_requests:
                count_work = Work(run=f"bc{os.getpid()}", customers=bare_customers[:1])
                report[f"{side}_counted"] = await count_bare(bare, http, bare_api, count_work,
                                                          args.count_requests, paths)
            bare_work = Work(run=f"b{os.getpid()}", customers=bare_customers)

            async def no_drain() -> bool:
                return True

            for path in paths:
                if path == "lifecycle":
                    continue
                n, lanes, warmup = plan(path)
                measured[side][path] = m = await measure(
                    path, bare_api, bare_work, bare.pids(), n, warmup, lanes, args.phase_timeout,
                    no_drain, None)
                print(f"  {side:<4} {LABELS[path]:<28} {_rate(m)}  ({time.monotonic() - started:.0f} s)",
                      flush=True)
            await pg_note(f"with the {side} pools open at their end")
            report["log_problems"] += log_problems(list(bare.processes.values()))
        finally:
            bare.stop()
            await bare.drop()


# --- Report --------------------------------------------------------------------------------


def _rate(m: Measured) -> str:
    return f"{m.load.rate:7.1f}/s"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}" if seconds == seconds else "      -"


def _num(x: float) -> str:
    """A per-request average: at most two decimals, no trailing zeros."""
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _kinds(counter: Counter[str], n: int) -> str:
    shown = [(k, v) for k, v in sorted(counter.items()) if k.split(" (")[0] not in CONTROL]
    return ", ".join(f"{k} {_num(v / n)}" for k, v in shown) or "-"


def print_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    title, paths = report["title"], report["paths"]
    measured = report["measured"]
    print(f"\n### {title}: {report['concurrency']} concurrent clients ({args.flow_concurrency} "
          f"lifecycle flows), {args.requests} requests per path after {args.warmup} warm-up, "
          f"spread over {report['customers']} customers; run took {report['seconds']:.0f} s")
    counted: dict[str, Counted] = report.get("counted") or {}
    bare_counted = report.get("bare_counted") or {}
    print(f"{'path':<28}| {'o2c req/s':>9} {'p50 ms':>7} {'p99 ms':>7} {'5xx':>4} |"
          f" {'bare req/s':>10} {'p50 ms':>7} {'p99 ms':>7} {'5xx':>4} | {'ratio':>5} |"
          f" stmts o2c/bare")
    for path in paths:
        o = measured["o2c"].get(path)
        if o is None:
            continue
        b = measured["bare"].get(path)
        row = (f"{LABELS[path]:<28}| {o.load.rate:9.1f} {_ms(o.load.pct(0.5))} "
               f"{_ms(o.load.pct(0.99))} {o.server_errors:4d} |")
        if b is not None:
            ratio = o.load.rate / b.load.rate if b.load.rate else float("nan")
            row += (f" {b.load.rate:10.1f} {_ms(b.load.pct(0.5))} {_ms(b.load.pct(0.99))} "
                    f"{b.server_errors:4d} | {ratio:5.2f} |")
        else:
            row += f" {'—':>10} {'':>7} {'':>7} {'':>4} | {'—':>5} |"
        c = counted.get(path)
        if c is not None:
            stmts = f" {c.total_sync():g}"
            bc = bare_counted.get(path)
            if bc:
                bare_total = sum(v for cnt in bc.values() for k, v in cnt.items()
                                 if k != "transactions") / args.count_requests
                stmts += f" / {bare_total:g}"
            row += stmts
        print(row)
    print("  (lifecycle: create → closed on invoice.paid; its p50/p99 are of a whole flow and its "
          "statements are per order; ratio = o2c req/s / bare req/s)")

    if measured.get("core"):
        print("\nThe floor of o2c's stack (--core-floor): the bare SQL once more, each statement "
              "a cached text() through SQLAlchemy Core's AsyncConnection over asyncpg, no ORM:")
        print(f"{'path':<28}| {'asyncpg/s':>9} {'core/s':>8} {'core/asyncpg':>12} |"
              f" {'CPU ms asyncpg':>14} {'core':>7} | {'o2c/core':>8}")
        for path in paths:
            b, c, o = (measured[k].get(path) for k in ("bare", "core", "o2c"))
            if b is None or c is None:
                continue
            floor = c.load.rate / b.load.rate if b.load.rate else float("nan")
            o2c = o.load.rate / c.load.rate if o is not None and c.load.rate else float("nan")
            print(f"{LABELS[path]:<28}| {b.load.rate:9.1f} {c.load.rate:8.1f} {floor:12.2f} |"
                  f" {_ms(sum(b.cpu.values())):>14} {_ms(sum(c.cpu.values()))} | {o2c:8.2f}")

    print("\nCPU ms per request (lifecycle: per order), taken once o2c's outbox and delivery "
          "queues were empty again (tail s: how long after the last answer that was):")
    names = ["orders", "credit", "ledger", "notifier"]
    print(f"{'path':<28}| {'orders':>7} {'credit':>7} {'ledger':>7} {'notif.':>7} {'o2c':>7} |"
          f" {'b.ord':>7} {'b.cred':>7} {'b.ledg':>7} {'bare':>7} | {'client o2c/bare':>15} |"
          f" tail s | HTTP between services/req, 5xx between")
    for path in paths:
        o = measured["o2c"].get(path)
        if o is None:
            continue
        b = measured["bare"].get(path)
        row = f"{LABELS[path]:<28}| " + " ".join(_ms(o.cpu.get(s, 0.0)) for s in names)
        row += f" {_ms(sum(o.cpu.values()))} |"
        if b is not None:
            row += " " + " ".join(_ms(b.cpu.get(f"bare {r}", 0.0))
                                  for r in ("orders", "credit", "ledger"))
            row += f" {_ms(sum(b.cpu.values()))} |"
            row += f" {o.load.client_cpu * 1000:6.2f}/{b.load.client_cpu * 1000:<6.2f}   |"
        else:
            row += f" {'':>31} | {o.load.client_cpu * 1000:6.2f}/-        |"
        row += f" {o.tail:6.1f} | {o.http_between:5.2f}, {o.internal_5xx}"
        print(row)
    notes = [(side, path, m) for side in ("o2c", "bare") for path, m in measured[side].items()
             if m.note or m.server_errors or m.failures]
    for side, path, m in notes:
        print(f"  ! {side} {LABELS[path]}: statuses {dict(m.statuses)} {m.note} "
              f"{'; '.join(m.failures[:3])}")
    for line in report.get("log_problems") or []:
        print(f"  ! log: {line}")
    if report.get("connections"):
        print(f"  {report['connections']}")

    if counted:
        print(f"\nPer request, one client ({args.count_requests} requests per path, "
              f"{args.count_flows} lifecycle flows), counted inside each o2c process by "
              "SQLAlchemy hooks (bench/sqlcount.py; pg_stat_statements is not loaded):")
        print("  sync = the request's own path in every service; async = after the answer "
              "(outbox relay, notifier ingest and deliveries, inbox handlers). Statements exclude "
              "BEGIN/COMMIT/ROLLBACK; xacts = commits + rollbacks of transactions that ran a "
              "statement; pool checkouts = sessions opened (pre-pinged when O2C_DB_POOL_PRE_PING)")
        for path in paths:
            c = counted.get(path)
            if c is None:
                continue
            print(f"  {LABELS[path]}" + ("" if c.drained else "  (queues did not drain!)"))
            for s in names:
                ss, sa = c.sync_stmts.get(s, Counter()), c.async_stmts.get(s, Counter())
                xs, xa = c.sync_xacts.get(s, (0, 0)), c.async_xacts.get(s, (0, 0))
                if not (ss or sa):
                    continue
                total_s = sum(v for k, v in ss.items() if k.split(" (")[0] not in CONTROL) / c.n
                total_a = sum(v for k, v in sa.items() if k.split(" (")[0] not in CONTROL) / c.n
                ping = f", {_num(c.sync_checkouts.get(s, 0) / c.n)} pool checkouts"
                if c.sync_pings.get(s):
                    ping += f" ({_num(c.sync_pings[s] / c.n)} pre-pings)"
                label = s
                if total_s or sum(xs):
                    print(f"    {label:<9} sync  {total_s:5.1f} stmts ({_kinds(ss, c.n)}), "
                          f"{_num((xs[0] + xs[1]) / c.n)} xacts ({_num(xs[0] / c.n)} commit, "
                          f"{_num(xs[1] / c.n)} rollback){ping}")
                    label = ""
                if sa:
                    print(f"    {label:<9} async {total_a:5.1f} stmts ({_kinds(sa, c.n)}), "
                          f"{_num((xa[0] + xa[1]) / c.n)} xacts")
            hs = ", ".join(f"{r} {_num(v / c.n)}" for r, v in sorted(c.http_sync.items())) or "none"
            ha = ", ".join(f"{r} {_num(v / c.n)}" for r, v in sorted(c.http_async.items())) or "none"
            print(f"    HTTP between services: sync: {hs}; async: {ha}  "
                  f"(/metrics: {_num(c.http_metrics / c.n)} per request)")
            bc = bare_counted.get(path)
            if bc:
                parts = []
                for role, cnt in bc.items():
                    if not cnt:
                        continue
                    stm = sum(v for k, v in cnt.items() if k != "transactions") / args.count_requests
                    kinds = ", ".join(f"{k} {_num(v / args.count_requests)}" for k, v in sorted(cnt.items())
                                      if k != "transactions")
                    parts.append(f"{role} {stm:g} stmts ({kinds}), "
                                 f"{_num(cnt.get('transactions', 0) / args.count_requests)} write xacts")
                print(f"    bare: {'; '.join(parts)}  (reads outside transactions)")
            if args.show_sql:
                for s, texts in c.texts.items():
                    for text, k in texts.items():
                        print(f"      {s} {_num(k / c.n)} x {text[:220]}")
        if report.get("check"):
            print(f"  {report['check']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--databases", default="postgres,sqlite",
                        help="comma-separated: postgres, sqlite")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per path")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per path")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="clients on both databases (overrides the two below)")
    parser.add_argument("--pg-concurrency", type=int, default=16)
    parser.add_argument("--sqlite-concurrency", type=int, default=64)
    parser.add_argument("--customers", type=int, default=16,
                        help="customers the orders, submits and payments spread over (each "
                             "customer's reservations and payments lock its own rows)")
    parser.add_argument("--flows", type=int, default=16, help="lifecycle orders measured")
    parser.add_argument("--flow-concurrency", type=int, default=16)
    parser.add_argument("--count-requests", type=int, default=5,
                        help="requests per path of the one-client counting pass (0: skip it)")
    parser.add_argument("--count-flows", type=int, default=2)
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--tree", type=Path, default=None,
                        help="run the o2c processes from this checkout (PYTHONPATH and cwd)")
    parser.add_argument("--no-bare", action="store_true", help="skip the bare reference")
    parser.add_argument("--core-floor", action="store_true",
                        help="PostgreSQL: run the bare reference a second time with its SQL "
                             "through SQLAlchemy Core (the floor of o2c's stack) and print both")
    parser.add_argument("--show-sql", action="store_true",
                        help="print the statements o2c ran per request of each path")
    parser.add_argument("--verbose", action="store_true", help="print the time of each step")
    parser.add_argument("--phase-timeout", type=float, default=20.0,
                        help="seconds after which a phase (its warm-up, then its measured part) "
                             "starts no more requests; lifecycle flows begun may still finish")
    args = parser.parse_args()
    if args.concurrency:
        args.pg_concurrency = args.sqlite_concurrency = args.concurrency
    args.paths = [p.strip() for p in args.paths.split(",") if p.strip()]
    unknown = set(args.paths) - set(PATHS)
    if unknown:
        parser.error(f"unknown paths {sorted(unknown)}; choose from {', '.join(PATHS)}")
    if args.tree is not None:
        args.tree = args.tree.resolve()
        if not (args.tree / "services" / "cli.py").exists():
            parser.error(f"{args.tree} is not an o2c checkout (no services/cli.py)")
    if "submit" in args.paths and "orders" not in args.paths:
        parser.error("submit needs the orders path (it submits the orders that path created)")
    tree = args.tree or REPO
    commit = tree_commit(tree)
    print(f"bench.write_paths: o2c from {tree} at {commit}, bare reference "
          f"bench/bare.py; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    reports = []
    for mode in [d.strip() for d in args.databases.split(",") if d.strip()]:
        if mode not in ("postgres", "sqlite"):
            parser.error(f"unknown database {mode!r}")
        reports.append(asyncio.run(run_database(mode, args)))
    for report in reports:
        print_report(report, args)


if __name__ == "__main__":
    main()
