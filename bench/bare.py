"""The bare reference of bench/write_paths.py: FastAPI + asyncpg (or aiosqlite) endpoints that
issue, for each write path, the same SQL statements o2c issues for it, written by hand.

One process per role, started with uvicorn like the services (`python -m uvicorn
bench.bare:app --port N`), configured by environment:

- `BARE_ROLE`: `credit` (POST /v1/customers, GET /v1/customers/{id}, GET
  /v1/customers/{id}/credit, POST /v1/reservations), `orders` (POST /v1/orders, POST
  /v1/orders/{id}/submit; calls the credit process over HTTP with aiohttp) or `ledger`
  (POST /v1/payments);
- `BARE_DB_URL`: `postgresql://…` (asyncpg pool) or `sqlite:///path` (one writer connection
  taken in turns with `BEGIN IMMEDIATE`, and a few reader connections, as shared.db does);
- `BARE_PEER`: the credit process's base URL (orders only);
- `BARE_DRIVER`: `asyncpg` (the default: the driver's own pool and calls) or `sqlalchemy`
  (PostgreSQL only: the same SQL text, each statement a cached `text()` executed through a
  SQLAlchemy Core `AsyncConnection` over asyncpg, as o2c's stack is). The second measures the
  floor the mandated SQLAlchemy layer puts under any o2c path, with no ORM in it.

The tables are the services' own (a database migrated with shared.migrations). Each endpoint
mirrors what bench/sqlcount.py captured from o2c for the path, statement for statement and in
the same order: the idempotency-key lookup, the sequence (`nextval`, or the `counters` row on
SQLite), SELECT … FOR UPDATE where o2c locks (nothing on SQLite, where BEGIN IMMEDIATE is the
lock), the row INSERTs and UPDATEs, the outbox row(s), the idempotency-key row, and even the
reads o2c repeats; o2c's write transactions are kept as they are (submit commits its intent
before calling credit and finishes after, so no lock is held across the network). What a bare
endpoint leaves out is everything else: no ORM, no sessions, read-only statements run outside a
transaction (no BEGIN/ROLLBACK around them, no pool pre-ping), no auth, no state machine, no
retries. `GET /__bare/stats[?reset=1]` answers the statements it ran by kind and its
transactions, so the bench can print them next to o2c's.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp
from fastapi import FastAPI, Request, Response

ROLE = os.environ.get("BARE_ROLE", "credit")
DB_URL = os.environ.get("BARE_DB_URL", "")
PEER = os.environ.get("BARE_PEER", "")
POOL = int(os.environ.get("BARE_POOL_SIZE", "20"))
DRIVER = os.environ.get("BARE_DRIVER", "asyncpg")
SCOPE = "bench"

STATS: Counter[str] = Counter()


def kind_of(sql: str) -> str:
    text = sql.lstrip().upper()
    word = text.split(None, 1)[0]
    return "SELECT FOR UPDATE" if word == "SELECT" and "FOR UPDATE" in text else word


# --- Databases -----------------------------------------------------------------------------

_PARAM = re.compile(r"\$(\d+)")


class PgConn:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        STATS[kind_of(sql)] += 1
        return await self.conn.fetchrow(sql, *args)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        STATS[kind_of(sql)] += 1
        return await self.conn.fetch(sql, *args)

    async def execute(self, sql: str, *args: Any) -> None:
        STATS[kind_of(sql)] += 1
        await self.conn.execute(sql, *args)

    async def nextval(self, series: str) -> int:
        row = await self.fetchrow("SELECT nextval($1)", f"number_{series}_seq")
        return int(row[0])


class PgDB:
    sqlite = False

    def __init__(self, url: str) -> None:
        self.dsn = url

    async def start(self) -> None:
        import asyncpg

        # Idle connections close after 2 s: the bench shares the server's connections with
        # o2c's pools (and whatever else runs there) between its phases.
        self.pool = await asyncpg.create_pool(self.dsn, min_size=1, max_size=POOL,
                                              max_inactive_connection_lifetime=2.0)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[PgConn]:
        """A connection for statements outside any transaction (autocommit)."""
        async with self.pool.acquire() as conn:
            yield PgConn(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[PgConn]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield PgConn(conn)
        STATS["transactions"] += 1


def _lite(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


class LiteConn:
    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @staticmethod
    def _sql(sql: str) -> str:
        return _PARAM.sub(r"?\1", sql.replace(" FOR UPDATE", ""))

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        sql = self._sql(sql)
        STATS[kind_of(sql)] += 1
        async with self.conn.execute(sql, [_lite(a) for a in args]) as cur:
            return await cur.fetchone()

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        sql = self._sql(sql)
        STATS[kind_of(sql)] += 1
        async with self.conn.execute(sql, [_lite(a) for a in args]) as cur:
            return list(await cur.fetchall())

    async def execute(self, sql: str, *args: Any) -> None:
        sql = self._sql(sql)
        STATS[kind_of(sql)] += 1
        await self.conn.execute(sql, [_lite(a) for a in args])

    async def nextval(self, series: str) -> int:
        row = await self.fetchrow("UPDATE counters SET value = value + 1 WHERE name = $1 "
                                  "RETURNING value", series)
        return int(row[0])


class LiteDB:
    """One writer connection taken in turns (BEGIN IMMEDIATE … COMMIT), readers beside it."""

    sqlite = True

    def __init__(self, url: str) -> None:
        self.path = url.split("///", 1)[1]

    async def _connect(self) -> Any:
        import aiosqlite

        conn = await aiosqlite.connect(self.path, isolation_level=None, timeout=5)
        conn.row_factory = aiosqlite.Row
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=5000",
                       "synchronous=NORMAL"):
            await conn.execute(f"PRAGMA {pragma}")
        return conn

    async def start(self) -> None:
        self.writer = await self._connect()
        self.lock = asyncio.Lock()
        self.readers: asyncio.Queue[Any] = asyncio.Queue()
        self.all_readers = [await self._connect() for _ in range(min(POOL, 10))]
        for conn in self.all_readers:
            self.readers.put_nowait(conn)

    async def close(self) -> None:
        for conn in [self.writer, *self.all_readers]:
            await conn.close()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[LiteConn]:
        conn = await self.readers.get()
        try:
            yield LiteConn(conn)
        finally:
            self.readers.put_nowait(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[LiteConn]:
        async with self.lock:
            await self.writer.execute("BEGIN IMMEDIATE")
            try:
                yield LiteConn(self.writer)
            except BaseException:
                await self.writer.execute("ROLLBACK")
                raise
            await self.writer.execute("COMMIT")
        STATS["transactions"] += 1


class _Row:
    """A SQLAlchemy Row read by position or by name, as an asyncpg Record is."""

    __slots__ = ("row",)

    def __init__(self, row: Any) -> None:
        self.row = row

    def __getitem__(self, key: int | str) -> Any:
        return self.row[key] if isinstance(key, int) else self.row._mapping[key]


class SaConn:
    """The bare SQL through SQLAlchemy Core: `$n` becomes `:pn` of a `text()` made once per
    statement (so its compiled form is cached), executed on an AsyncConnection."""

    _texts: dict[str, Any] = {}

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    @classmethod
    def _text(cls, sql: str) -> Any:
        stmt = cls._texts.get(sql)
        if stmt is None:
            from sqlalchemy import text

            stmt = cls._texts[sql] = text(_PARAM.sub(r":p\1", sql))
        return stmt

    async def _run(self, sql: str, args: tuple[Any, ...]) -> Any:
        STATS[kind_of(sql)] += 1
        return await self.conn.execute(self._text(sql), {f"p{i}": a for i, a in enumerate(args, 1)})

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        row = (await self._run(sql, args)).first()
        return None if row is None else _Row(row)

    async def fetch(self, sql: str, *args: Any) -> list[Any]:
        return [_Row(row) for row in (await self._run(sql, args)).all()]

    async def execute(self, sql: str, *args: Any) -> None:
        await self._run(sql, args)

    async def nextval(self, series: str) -> int:
        row = await self.fetchrow("SELECT nextval($1)", f"number_{series}_seq")
        return int(row[0])


class SaDB:
    """PostgreSQL through SQLAlchemy's async engine: a pool as o2c's (kept connections, no
    overflow, no pre-ping); reads on the same pool in autocommit, writes in `begin()`."""

    sqlite = False

    def __init__(self, url: str) -> None:
        self.url = url.replace("postgresql://", "postgresql+asyncpg://", 1)

    async def start(self) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(self.url, pool_size=POOL, max_overflow=0,
                                          pool_recycle=1800)
        self.autocommit = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    async def close(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[SaConn]:
        async with self.autocommit.connect() as conn:
            yield SaConn(conn)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SaConn]:
        async with self.engine.begin() as conn:
            yield SaConn(conn)
        STATS["transactions"] += 1


def make_db(url: str) -> PgDB | LiteDB | SaDB:
    if url.startswith("sqlite"):
        return LiteDB(url)
    return SaDB(url) if DRIVER == "sqlalchemy" else PgDB(url)


# --- Shared statements -------------------------------------------------------------------

IDEM_LOOKUP = ('SELECT scope, "key", fingerprint, state, response_status, response_headers, '
               'response_body, created_at, expires_at FROM idempotency_keys '
               'WHERE scope = $1 AND "key" = $2')
IDEM_INSERT = ('INSERT INTO idempotency_keys (scope, "key", fingerprint, state, response_status, '
               'response_headers, response_body, created_at, expires_at) '
               "VALUES ($1, $2, $3, 'completed', $4, $5, $6, $7, $8)")
OUTBOX_INSERT = ("INSERT INTO outbox (event_id, type, subject, payload, created_at, available_at, "
                 "attempts) VALUES ($1, $2, $3, $4, $5, $5, 0) RETURNING seq")


def now() -> datetime:
    return datetime.now(UTC)


def fingerprint(request: Request, body: bytes) -> str:
    return hashlib.sha256(request.method.encode() + b"\0" + request.url.path.encode() + b"\0"
                          + body).hexdigest()


async def replayed(request: Request) -> Response | None:
    """The idempotency-key lookup (one SELECT, outside any transaction)."""
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    async with DB.read() as conn:
        row = await conn.fetchrow(IDEM_LOOKUP, SCOPE, key)
    if row is None:
        return None
    return Response(row["response_body"], status_code=row["response_status"],
                    media_type="application/json", headers={"Idempotent-Replayed": "true"})


async def store_key(conn: Any, request: Request, body: bytes, status: int,
                    answer: bytes, at: datetime) -> None:
    key = request.headers.get("idempotency-key")
    if key is not None:
        await conn.execute(IDEM_INSERT, SCOPE, key, fingerprint(request, body), status,
                           '[["content-type", "application/json"]]', answer, at,
                           at + timedelta(hours=24))


async def outbox(conn: Any, type_: str, subject: str, data: dict[str, Any], at: datetime) -> None:
    event_id = str(uuid.uuid4())
    payload = json.dumps({"id": event_id, "type": type_, "occurred_at": at.isoformat(),
                          "source": ROLE, "subject": subject, "data": data})
    await conn.fetchrow(OUTBOX_INSERT, event_id, type_, subject, payload, at)


def answer(body: bytes, status: int = 200) -> Response:
    return Response(body, status_code=status, media_type="application/json")


def problem(status: int, detail: str) -> Response:
    return Response(json.dumps({"status": status, "detail": detail}), status_code=status,
                    media_type="application/problem+json")


# --- credit --------------------------------------------------------------------------------

CUSTOMER = ("SELECT id, number, name, registration_no, salesperson_id, address, contacts, "
            "bank_accounts, version, created_at, updated_at FROM customers WHERE id = $1")
PROFILE = ("SELECT customer_id, limit_minor, currency, terms_days, grade, policy, status, "
           "evaluation_id, version, created_at, updated_at FROM credit_profiles "
           "WHERE customer_id = $1")
SNAPSHOT = ("SELECT customer_id, currency, open_receivables_minor, overdue_minor, max_days_overdue, "
            "as_of, refreshed_at, last_event_id, last_event_type FROM receivables_snapshots "
            "WHERE customer_id = $1 AND currency = $2")
GUARANTEES = ("SELECT coalesce(sum(amount_minor), 0) AS total, count(*) AS n FROM guarantees "
              "WHERE customer_id = $1 AND status = 'active' AND expires_on >= $2 AND currency = $3")
# Σ active reservations and Σ converted ones not yet in the snapshot, in one query (as o2c)
RESERVATION_USE = ("SELECT coalesce(sum(CASE WHEN status = 'active' THEN amount_minor ELSE 0 END), 0), "
                   "coalesce(sum(CASE WHEN status = 'converted' AND currency = $2 AND "
                   "receivable_seen_at IS NULL THEN amount_minor ELSE 0 END), 0) FROM reservations "
                   "WHERE customer_id = $1 AND status IN ('active', 'converted')")
HOLDS = ("SELECT id, customer_id, kind, reason, status, source_ref, placed_by, placed_at, "
         "released_by, released_at FROM credit_holds WHERE customer_id = $1 AND status = 'active' "
         "ORDER BY placed_at, id")


def _customer_json(row: Any) -> dict[str, Any]:
    return {"id": row["id"], "number": row["number"], "name": row["name"],
            "salesperson_id": row["salesperson_id"], "version": row["version"]}


async def create_customer(request: Request) -> Response:
    if (early := await replayed(request)) is not None:
        return early
    raw = await request.body()
    data = json.loads(raw)
    at, cid = now(), str(uuid.uuid4())
    async with DB.write() as conn:
        number = f"CU-{await conn.nextval('customer'):06d}"
        contacts = json.dumps(data.get("contacts") or [])
        await conn.execute(
            "INSERT INTO customers (id, number, name, registration_no, salesperson_id, address, "
            "contacts, bank_accounts, version, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9)",
            cid, number, data["name"], data.get("registration_no"), data.get("salesperson_id"),
            data.get("address"), contacts, "[]", at)
        body = {"id": cid, "number": number, "name": data["name"],
                "salesperson_id": data.get("salesperson_id"), "contacts": data.get("contacts") or [],
                "bank_accounts": [], "version": 1, "created_at": at.isoformat()}
        await outbox(conn, "customer.created", cid, body, at)
        out = json.dumps(body).encode()
        await store_key(conn, request, raw, 201, out, at)
    return answer(out, 201)


async def get_customer(customer_id: str) -> Response:
    async with DB.read() as conn:
        row = await conn.fetchrow(CUSTOMER, customer_id)
    if row is None:
        return problem(404, "no such customer")
    return answer(json.dumps(_customer_json(row)).encode())


async def get_credit(customer_id: str) -> Response:
    today = date.today()
    async with DB.read() as conn:
        customer = await conn.fetchrow(CUSTOMER, customer_id)
        if customer is None:
            return problem(404, "no such customer")
        profile = await conn.fetchrow(PROFILE, customer_id)
        currency = profile["currency"] if profile is not None else "CNY"
        guarantees = await conn.fetchrow(GUARANTEES, customer_id, today, currency)
        snapshot = await conn.fetchrow(SNAPSHOT, customer_id, currency)
        reserved_open = await conn.fetchrow(RESERVATION_USE, customer_id, currency)
        holds = await conn.fetch(HOLDS, customer_id)
    limit = profile["limit_minor"] if profile is not None else 0
    receivables = snapshot["open_receivables_minor"] if snapshot is not None else 0
    body = {"limit_minor": limit, "currency": currency,
            "status": "on_hold" if holds else "active",
            "exposure": {"open_receivables_minor": receivables,
                         "reserved_minor": int(reserved_open[0]),
                         "in_transit_minor": int(reserved_open[1]),
                         "guarantees_minor": int(guarantees[0]),
                         "available_minor": limit - receivables - int(reserved_open[0])}}
    return answer(json.dumps(body).encode())


async def reserve(request: Request) -> Response:
    if (early := await replayed(request)) is not None:
        return early
    raw = await request.body()
    data = json.loads(raw)
    at, today = now(), date.today()
    customer_id, currency = data["customer_id"], data.get("currency", "CNY")
    async with DB.write() as conn:
        if await conn.fetchrow(CUSTOMER, customer_id) is None:
            return problem(422, "no such customer")
        profile = await conn.fetchrow(PROFILE + " FOR UPDATE", customer_id)
        if profile is None:  # o2c inserts the default profile only when none is there
            await conn.execute(
                "INSERT INTO credit_profiles (customer_id, limit_minor, currency, terms_days, grade, "
                "policy, status, version, created_at, updated_at) "
                "VALUES ($1, 0, $2, 30, NULL, 'credit', 'active', 1, $3, $3) "
                "ON CONFLICT (customer_id) DO NOTHING", customer_id, currency, at)
            profile = await conn.fetchrow(PROFILE + " FOR UPDATE", customer_id)
        await conn.fetchrow(
            "SELECT id, customer_id, order_id, amount_minor, currency, decision, status, reasons, "
            "decided_at, decided_by, invoice_id, released_at, converted_at, receivable_seen_at, "
            "version, created_at, updated_at FROM reservations "
            "WHERE order_id = $1 AND status IN ('active', 'converted')", data["order_id"])
        holds = await conn.fetch(HOLDS, customer_id)
        await conn.fetchrow(GUARANTEES, customer_id, today, currency)
        snapshot = await conn.fetchrow(SNAPSHOT, customer_id, currency)
        reserved = await conn.fetchrow(RESERVATION_USE, customer_id, currency)
        receivables = snapshot["open_receivables_minor"] if snapshot is not None else 0
        available = profile["limit_minor"] - receivables - int(reserved[1]) - int(reserved[0])
        decision = "rejected" if holds or data["amount_minor"] > available else "reserved"
        rid = str(uuid.uuid4())
        await conn.execute("SAVEPOINT bare_1")
        await conn.execute(
            "INSERT INTO reservations (id, customer_id, order_id, amount_minor, currency, decision, "
            "status, reasons, decided_at, decided_by, invoice_id, released_at, converted_at, "
            "receivable_seen_at, version, created_at, updated_at) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, '[]', $8, 'service', NULL, NULL, NULL, NULL, 1, $8, $8)",
            rid, customer_id, data["order_id"], data["amount_minor"], currency, decision,
            "active" if decision == "reserved" else "released", at)
        await conn.execute("RELEASE SAVEPOINT bare_1")
        body = {"id": rid, "decision": decision, "reasons": [], "amount_minor": data["amount_minor"]}
        await outbox(conn, "credit.reservation_decided", customer_id, body, at)
        out = json.dumps(body).encode()
        await store_key(conn, request, raw, 201, out, at)
    return answer(out, 201)


# --- orders --------------------------------------------------------------------------------

ORDER_COLUMNS = ("id, number, customer_id, salesperson_id, external_ref, currency, payment_method, "
                 "payment_terms_days, delivery_date, delivery_place, total_minor, state, revision, "
                 "version, credit, review_due_at, review_overdue_notified_at, contract_number, "
                 "contract_signed_at, invoice_id, pending_step, step_due_at, created_by, created_at, "
                 "updated_at")
ORDER = f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1"
LINES = ("SELECT order_id, id, position, sku, name, specification, quantity, unit_price_minor, "
         "quality_standard, delivered_quantity, returned_quantity, total_minor FROM order_lines "
         "WHERE order_id = $1 ORDER BY position")
REVIEWS_JOIN = ("SELECT o.id, r.id, r.order_id, r.revision, r.department, r.decision, r.comment, "
                "r.\"by\", r.at FROM orders AS o JOIN order_reviews AS r ON o.id = r.order_id "
                "AND o.revision = r.revision WHERE o.id = $1 ORDER BY r.department")
REVIEWS = ("SELECT id, order_id, revision, department, decision, comment, \"by\", at FROM order_reviews "
           "WHERE order_id = $1 AND revision = $2 ORDER BY department")

HTTP: aiohttp.ClientSession | None = None


async def create_order(request: Request) -> Response:
    if (early := await replayed(request)) is not None:
        return early
    raw = await request.body()
    data = json.loads(raw)
    assert HTTP is not None
    async with HTTP.get(f"{PEER}/v1/customers/{data['customer_id']}") as r:
        if r.status != 200:
            return problem(422 if r.status == 404 else 503, "credit does not know the customer")
        customer = await r.json()
    at, oid = now(), str(uuid.uuid4())
    lines = []
    for position, line in enumerate(data["lines"], start=1):
        quantity = Decimal(str(line["quantity"]))
        lines.append({"id": str(uuid.uuid4()), "position": position, "sku": line.get("sku"),
                      "name": line["name"], "quantity": quantity,
                      "unit_price_minor": int(line["unit_price_minor"]),
                      "total_minor": int((quantity * line["unit_price_minor"]).to_integral_value())})
    total = sum(line["total_minor"] for line in lines)
    salesperson = data.get("salesperson_id") or customer.get("salesperson_id")
    async with DB.write() as conn:
        number = f"SO-{await conn.nextval('order'):06d}"
        await conn.execute(
            f"INSERT INTO orders ({ORDER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, "
            "$11, 'draft', 1, 1, $12, NULL, NULL, NULL, NULL, NULL, NULL, NULL, $13, $14, $14)",
            oid, number, data["customer_id"], salesperson, data.get("external_ref"),
            data["currency"], data.get("payment_method"), data.get("payment_terms_days"),
            date.fromisoformat(data["delivery_date"]), data.get("delivery_place"), total,
            json.dumps({"status": "pending"}), "sales", at)
        for line in lines:  # one line per order in the bench, as o2c: one INSERT
            await conn.execute(
                "INSERT INTO order_lines (id, order_id, position, sku, name, specification, "
                "quantity, unit_price_minor, quality_standard, delivered_quantity, "
                "returned_quantity, total_minor) "
                "VALUES ($1, $2, $3, $4, $5, NULL, $6, $7, NULL, 0, 0, $8)",
                line["id"], oid, line["position"], line["sku"], line["name"], line["quantity"],
                line["unit_price_minor"], line["total_minor"])
        body = {"id": oid, "number": number, "customer_id": data["customer_id"], "state": "draft",
                "revision": 1, "version": 1, "total_minor": total, "currency": data["currency"],
                "lines": [{**line, "quantity": str(line["quantity"])} for line in lines]}
        await outbox(conn, "order.created", oid, body, at)
        out = json.dumps(body).encode()
        await store_key(conn, request, raw, 201, out, at)
    return answer(out, 201)


async def _lock(conn: Any, order_id: str) -> Any:
    """o2c re-locks an order it has read with one SELECT of the row (its lines and reviews are
    read again only when the version moved, which the bench's orders never do meanwhile)."""
    return await conn.fetchrow(ORDER + " FOR UPDATE", order_id)


async def submit_order(order_id: str, request: Request) -> Response:
    if (early := await replayed(request)) is not None:
        return early
    raw = await request.body()
    assert HTTP is not None
    async with DB.read() as conn:  # what o2c reads first (get_visible)
        order = await conn.fetchrow(ORDER, order_id)
        if order is None:
            return problem(404, "no such order")
        lines = await conn.fetch(LINES, order_id)
        await conn.fetch(REVIEWS_JOIN, order_id)
    if order["state"] != "draft":
        return problem(409, f"order is {order['state']}")
    async with HTTP.get(f"{PEER}/v1/customers/{order['customer_id']}/credit") as r:
        if r.status != 200:
            return problem(503, "credit did not answer")
        await r.read()
    at = now()
    key = f"reserve:{order_id}:r{order['revision']}"
    async with DB.write() as conn:  # the intent, committed before credit is called
        order = await _lock(conn, order_id)
        await conn.execute("UPDATE orders SET pending_step = $1, step_due_at = $2 WHERE id = $3",
                           json.dumps({"name": "submit", "key": key}), at + timedelta(seconds=10),
                           order_id)
    async with HTTP.post(f"{PEER}/v1/reservations", headers={"Idempotency-Key": key}, json={
            "customer_id": order["customer_id"], "order_id": order_id,
            "amount_minor": order["total_minor"], "currency": order["currency"]}) as r:
        if r.status >= 300:
            return problem(503, "credit did not answer")
        reservation = await r.json()
    at = now()
    async with DB.write() as conn:  # the transition, with the key's row
        order = await _lock(conn, order_id)
        credit = {"status": reservation["decision"], "reservation_id": reservation["id"]}
        await conn.execute(
            "UPDATE orders SET state = 'in_review', version = $1, credit = $2, review_due_at = $3, "
            "pending_step = NULL, step_due_at = NULL, updated_at = $4 WHERE id = $5",
            order["version"] + 1, json.dumps(credit), at + timedelta(days=3), at, order_id)
        await conn.fetchrow(
            "INSERT INTO order_history (order_id, revision, from_state, to_state, \"trigger\", actor, at, "
            "reason, request_id, change_request_id, change_request_from, change_request_to) "
            "VALUES ($1, $2, 'draft', 'in_review', 'submit', 'sales', $3, NULL, $4, NULL, NULL, NULL) "
            "RETURNING seq", order_id, order["revision"], at, request.headers.get("x-request-id"))
        body = {"id": order_id, "number": order["number"], "state": "in_review",
                "version": order["version"] + 1, "credit": credit, "total_minor": order["total_minor"],
                "lines": [{"id": line["id"], "quantity": str(line["quantity"])} for line in lines]}
        await outbox(conn, "order.submitted", order_id, body, at)
        await conn.fetch(REVIEWS, order_id, order["revision"])  # the response's reviews
        out = json.dumps(body).encode()
        await store_key(conn, request, raw, 200, out, at)
    return answer(out)


# --- ledger --------------------------------------------------------------------------------

INVOICE_COLUMNS = ("id, number, order_id, customer_id, salesperson_id, currency, amount_minor, "
                   "outstanding_minor, debit_notes_minor, paid_minor, credited_minor, "
                   "written_off_minor, status, issued_at, due_date, paid_at, journal_entry_id, "
                   "version, created_at, updated_at")
CASH, RECEIVABLES = "1000", "1100"


async def post_payment(request: Request) -> Response:
    if (early := await replayed(request)) is not None:
        return early
    raw = await request.body()
    data = json.loads(raw)
    at = now()
    customer_id, currency, amount = data["customer_id"], data["currency"], int(data["amount_minor"])
    async with DB.write() as conn:
        await conn.execute(
            "INSERT INTO customer_balances (customer_id, currency, unapplied_minor, version, "
            "updated_at) VALUES ($1, $2, 0, 1, $3) ON CONFLICT (customer_id, currency) DO NOTHING",
            customer_id, currency, at)
        await conn.fetchrow(
            "SELECT customer_id, currency, unapplied_minor, version, updated_at FROM "
            "customer_balances WHERE customer_id = $1 AND currency = $2 FOR UPDATE",
            customer_id, currency)
        invoices = await conn.fetch(
            f"SELECT {INVOICE_COLUMNS} FROM invoices WHERE customer_id = $1 AND currency = $2 "
            "AND status IN ('open', 'partially_paid') AND outstanding_minor > 0 "
            "ORDER BY due_date, issued_at, id LIMIT 100 OFFSET 0 FOR UPDATE", customer_id, currency)
        payment_number = f"PAY-{await conn.nextval('payment'):06d}"
        await conn.fetch("SELECT code, name, kind, normal_side, currency, requires_customer, system, "
                         "created_at FROM accounts WHERE code IN ($1, $2)", CASH, RECEIVABLES)
        entry_id, payment_id = str(uuid.uuid4()), str(uuid.uuid4())
        entry_number = f"JE-{await conn.nextval('journal_entry'):06d}"
        await conn.execute(
            "INSERT INTO journal_entries (id, number, kind, memo, currency, posted_at, source_type, "
            "source_id, reverses_entry_id, reversed_by_entry_id, created_by, created_at) "
            "VALUES ($1, $2, 'payment', $3, $4, $5, 'payment', $6, NULL, NULL, 'finance', $5)",
            entry_id, entry_number, f"Payment {payment_number}", currency, at, payment_id)
        lines = [(entry_id, 1, CASH, None, amount, 0), (entry_id, 2, RECEIVABLES, customer_id, 0, amount)]
        if DB.sqlite:  # o2c: one INSERT per line on SQLite, one two-row INSERT on PostgreSQL
            for line in lines:
                await conn.fetchrow("INSERT INTO journal_lines (entry_id, line_no, account_code, "
                                    "customer_id, debit_minor, credit_minor) "
                                    "VALUES ($1, $2, $3, $4, $5, $6) RETURNING id", *line)
        else:
            await conn.fetch("INSERT INTO journal_lines (entry_id, line_no, account_code, customer_id, "
                             "debit_minor, credit_minor) VALUES ($1, $2, $3, $4, $5, $6), "
                             "($7, $8, $9, $10, $11, $12) RETURNING id", *lines[0], *lines[1])
        body: dict[str, Any] = {"id": payment_id, "number": payment_number, "customer_id": customer_id,
                                "amount_minor": amount, "currency": currency}
        await outbox(conn, "journal_entry.posted", entry_id, {"entry_id": entry_id, "lines": 2}, at)
        invoice = invoices[0] if invoices else None
        applied = min(amount, invoice["outstanding_minor"]) if invoice is not None else 0
        await conn.execute(
            "INSERT INTO payments (id, number, customer_id, currency, amount_minor, method, "
            "reference, received_at, unapplied_minor, unapplied_remaining_minor, status, "
            "journal_entry_id, reversal_entry_id, reversed_at, reversal_reason, created_by, version, "
            "created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, 'posted', $10, "
            "NULL, NULL, NULL, 'finance', 1, $8, $8)",
            payment_id, payment_number, customer_id, currency, amount, data.get("method"),
            data.get("reference"), at, amount - applied, entry_id)
        if invoice is not None:
            outstanding = invoice["outstanding_minor"] - applied
            await conn.execute(
                "UPDATE invoices SET outstanding_minor = $1, paid_minor = $2, status = $3, "
                "version = $4, updated_at = $5 WHERE id = $6",
                outstanding, invoice["paid_minor"] + applied,
                "paid" if outstanding == 0 else "partially_paid", invoice["version"] + 1, at,
                invoice["id"])
            await conn.fetchrow(
                "INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor, kind, "
                "journal_entry_id, created_at) VALUES ($1, $2, $3, 'payment', $4, $5) RETURNING id",
                payment_id, invoice["id"], applied, entry_id, at)
        body["unapplied_minor"] = amount - applied
        await outbox(conn, "payment.received", payment_id, body, at)
        if invoice is not None and outstanding == 0:
            await outbox(conn, "invoice.paid", invoice["id"], {"invoice_id": invoice["id"]}, at)
        out = json.dumps(body).encode()
        await store_key(conn, request, raw, 201, out, at)
    return answer(out, 201)


# --- The app -------------------------------------------------------------------------------

DB = make_db(DB_URL)


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    global HTTP
    await DB.start()
    if PEER:
        HTTP = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    try:
        yield
    finally:
        if HTTP is not None:
            await HTTP.close()
        await DB.close()


app = FastAPI(lifespan=lifespan)


@app.get("/ready")
async def ready() -> dict[str, str]:
    return {"status": "ready", "role": ROLE}


@app.get("/__bare/stats")
async def stats(reset: int = 0) -> dict[str, int]:
    current = dict(STATS)
    if reset:
        STATS.clear()
    return current


if ROLE == "credit":
    app.post("/v1/customers")(create_customer)
    app.get("/v1/customers/{customer_id}")(get_customer)
    app.get("/v1/customers/{customer_id}/credit")(get_credit)
    app.post("/v1/reservations")(reserve)
elif ROLE == "orders":
    app.post("/v1/orders")(create_order)
    app.post("/v1/orders/{order_id}/submit")(submit_order)
elif ROLE == "ledger":
    app.post("/v1/payments")(post_payment)
