"""Payments posted per second through the ledger's HTTP API, next to bare single-row INSERTs.

On PostgreSQL (`O2C_BENCH_POSTGRES_URL`, default the local server as user postgres) it
creates a throwaway database `o2c_bench_<pid>`, migrates the ledger into it, starts a real
`o2c serve ledger` on a free loopback port (workers off: the outbox rows are still written
in each transaction, nobody relays them), issues a customer's invoices through
`POST /v1/invoices`, then posts `--payments` payments with `--concurrency` clients through
`POST /v1/payments` (no allocations: oldest due first, so every payment locks the customer's
balance row and its oldest open invoices, as production does). In the same run it does the
same number of bare single-row asyncpg INSERTs of a payments-shaped row at the same
concurrency, and prints both rates and their ratio. The database is dropped at the end.

    .venv/bin/python -m bench.payments [--payments 2000] [--concurrency 16] [--customers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx

from bench.ledger_process import FINANCE_KEY, SERVICE_KEY, throwaway_ledger

PAYMENT_MINOR = 1_000
INVOICE_MINOR = 2 * PAYMENT_MINOR  # two payments close an invoice

BARE_TABLE = """
CREATE TABLE bench_payments (
    id varchar(36) PRIMARY KEY, number varchar(20) NOT NULL UNIQUE,
    customer_id varchar(36) NOT NULL, currency varchar(3) NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0), method varchar(20) NOT NULL,
    reference varchar(100), received_at timestamptz NOT NULL,
    unapplied_minor bigint NOT NULL, unapplied_remaining_minor bigint NOT NULL,
    status varchar(20) NOT NULL, created_by varchar(100) NOT NULL, version integer NOT NULL,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL)
"""
BARE_INSERT = """
INSERT INTO bench_payments (id, number, customer_id, currency, amount_minor, method, reference,
    received_at, unapplied_minor, unapplied_remaining_minor, status, created_by, version,
    created_at, updated_at)
VALUES ($1, $2, $3, 'CNY', $4, 'bank_transfer', $5, $6, 0, 0, 'posted', 'bench', 1, $6, $6)
"""


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU of a process so far (Linux /proc), None elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _run_bounded(count: int, concurrency: int, one) -> float:
    """Run `one(i)` for i in range(count) on `concurrency` workers; returns operations/s."""
    todo = iter(range(count))

    async def worker() -> None:
        for i in todo:
            await one(i)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count / (time.perf_counter() - started)


async def _through_api(base: str, payments: int, concurrency: int, customers: list[str],
                       server_pid: int) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        due = (date.today() + timedelta(days=30)).isoformat()
        warm_up = min(50, payments)
        per_customer = -(-(payments + warm_up) // len(customers))
        invoices = [(c, i) for c in customers for i in range(-(-per_customer // 2))]

        async def issue(i: int) -> None:
            customer, n = invoices[i]
            r = await client.post("/v1/invoices", headers={"Authorization": f"Bearer {SERVICE_KEY}"},
                                  json={"order_id": str(uuid.uuid4()), "customer_id": customer,
                                        "currency": "CNY", "amount_minor": INVOICE_MINOR,
                                        "due_date": due})
            assert r.status_code == 201, r.text

        issued = await _run_bounded(len(invoices), concurrency, issue)
        print(f"  set-up: {len(invoices)} invoices for {len(customers)} customer(s) "
              f"at {issued:.0f} invoices/s")

        async def pay(i: int) -> None:
            r = await client.post(
                "/v1/payments", headers={"Authorization": f"Bearer {FINANCE_KEY}",
                                         "Idempotency-Key": f"bench-{i}"},
                json={"customer_id": customers[i % len(customers)], "amount_minor": PAYMENT_MINOR,
                      "currency": "CNY", "method": "bank_transfer", "reference": f"BENCH-{i}"})
            assert r.status_code == 201, r.text
            assert r.json()["unapplied_minor"] == 0, "a payment found no open invoice"

        await _run_bounded(warm_up, concurrency, lambda i: pay(payments + i))
        cpu = _cpu_seconds(server_pid)
        rate = await _run_bounded(payments, concurrency, pay)
        if cpu is not None:
            used = (_cpu_seconds(server_pid) or cpu) - cpu
            print(f"  ledger process CPU: {used / payments * 1000:.1f} ms per payment, "
                  f"{used * rate / payments:.0%} of one core while measuring")
        check = (await client.get("/v1/ledger-check",
                                  headers={"Authorization": f"Bearer {FINANCE_KEY}"})).json()
        assert check["balanced"], check["problems"]
        return rate


async def _bare_inserts(dsn: str, count: int, concurrency: int) -> float:
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency)
    try:
        async with pool.acquire() as conn:
            await conn.execute(BARE_TABLE)
        now = datetime.now(UTC)

        async def insert(i: int) -> None:
            async with pool.acquire() as conn:
                await conn.execute(BARE_INSERT, str(uuid.uuid4()), f"B-{i:08d}", "bench-customer",
                                   PAYMENT_MINOR, f"BENCH-{i}", now)

        await _run_bounded(min(50, count), concurrency, lambda i: insert(count + i))  # warm-up
        return await _run_bounded(count, concurrency, insert)
    finally:
        await pool.close()


async def main(payments: int, concurrency: int, customers: int) -> None:
    async with throwaway_ledger("o2c_bench", env={"O2C_DB_POOL_SIZE": str(concurrency)}) as ledger:
        print(f"ledger on PostgreSQL ({ledger.name}), {payments} payments, concurrency {concurrency}")
        api = await _through_api(ledger.base, payments, concurrency,
                                 [f"bench-customer-{i}" for i in range(customers)], ledger.pid)
        bare = await _bare_inserts(ledger.dsn, payments, concurrency)
    print(f"  payments through POST /v1/payments : {api:8.0f} /s   (one journal entry, "
          "allocation, invoice update, outbox rows, idempotency record each)")
    print(f"  bare single-row INSERTs (asyncpg)  : {bare:8.0f} /s")
    print(f"  ratio API / bare                   : {api / bare:8.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--customers", type=int, default=1,
                        help="spread the payments over this many customers (each serializes "
                             "its own payments)")
    args = parser.parse_args()
    asyncio.run(main(args.payments, args.concurrency, args.customers))
