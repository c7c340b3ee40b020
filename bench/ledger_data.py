"""Fill a ledger database (migrated to head) with a realistic receivables book, set-based and fast.

`fill()` writes, with a handful of `INSERT … SELECT … generate_series` statements on PostgreSQL:

- `invoices` invoices (1,000,000 by default) of `customers` customers (5,000), each customer
  served by one of `salespeople` salespeople (40); 90 % of customers in CNY, 7 % USD, 3 % EUR;
  amounts 100.00–10,000.00; issued uniformly over the last 400 days, due 30, 60 or 90 days
  later.
- Invoices already due are paid (93 %), partially paid (3 %) or open (4 %): about 6 % of all
  invoices are overdue, spread from 1 to ~370 days. Invoices not yet due are paid (20 %),
  partially paid (20 %) or open (60 %).
- One payment per paid or partially paid invoice, with its journal entry (posted at the
  payment's `received_at`) and its allocation row, as `POST /v1/payments` would leave them.
  The journal entries carry no lines: the reports and the overdue scan do not read them.
- With `crossings_as_of`, the `overdue_crossings` an overdue scan would have recorded up to that
  day, so a scan as of the next day is a normal daily run (only that day's crossings are new).

Every row is derived from the generator's sequence number and `random()` after `setseed`, so a
run with the same arguments and the same `now` produces the same book.

    .venv/bin/python -m bench.ledger_data --dsn postgresql://postgres@127.0.0.1/o2c_x [--invoices N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, date, datetime, timedelta

import asyncpg

GENERATE = """
CREATE UNLOGGED TABLE bench_gen AS
WITH base AS (
    SELECT g, g % $2 AS c, random() AS r_amount, random() AS r_issue, random() AS r_terms,
           random() AS r_state, random() AS r_part, random() AS r_pay
    FROM generate_series(1, $1) AS g
), shaped AS (
    SELECT g, c, r_state, r_part, r_pay,
           'cust-' || lpad(c::text, 6, '0') AS customer_id,
           'S-' || lpad((c % $3)::text, 3, '0') AS salesperson_id,
           CASE WHEN c % 100 < 90 THEN 'CNY' WHEN c % 100 < 97 THEN 'USD' ELSE 'EUR' END AS currency,
           (10000 + floor(r_amount * 990000))::bigint AS amount,
           $4::timestamptz - make_interval(secs => r_issue * 400 * 86400) AS issued_at,
           (ARRAY[30, 60, 90])[1 + floor(r_terms * 3)::int] AS terms
    FROM base
), dated AS (
    SELECT *, (issued_at AT TIME ZONE 'UTC')::date + terms AS due_date FROM shaped
), decided AS (
    SELECT *, CASE WHEN due_date >= $5::date THEN
                   CASE WHEN r_state < 0.20 THEN 'paid' WHEN r_state < 0.40 THEN 'partially_paid'
                        ELSE 'open' END
              ELSE CASE WHEN r_state < 0.93 THEN 'paid' WHEN r_state < 0.96 THEN 'partially_paid'
                        ELSE 'open' END
              END AS status
    FROM dated
)
SELECT g, customer_id, salesperson_id, currency, amount, issued_at, due_date, status,
       CASE status WHEN 'paid' THEN amount
                   WHEN 'partially_paid' THEN greatest(1, floor(amount * (0.1 + 0.8 * r_part)))::bigint
                   ELSE 0 END AS paid,
       least($4::timestamptz, issued_at + make_interval(secs => r_pay * terms * 1.3 * 86400))
           AS received_at,
       md5('inv' || g)::uuid::text AS invoice_id,
       md5('pay' || g)::uuid::text AS payment_id,
       md5('je' || g)::uuid::text AS entry_id
FROM decided
"""

ENTRIES = """
INSERT INTO journal_entries (id, number, kind, memo, currency, posted_at, source_type, source_id,
                             created_by, created_at)
SELECT entry_id, 'JE-B' || lpad(g::text, 9, '0'), 'payment', 'bench payment', currency,
       received_at, 'payment', payment_id, 'bench', received_at
FROM bench_gen WHERE paid > 0
"""

PAYMENTS = """
INSERT INTO payments (id, number, customer_id, currency, amount_minor, method, reference,
                      received_at, unapplied_minor, unapplied_remaining_minor, status,
                      journal_entry_id, created_by, version, created_at, updated_at)
SELECT payment_id, 'PAY-B' || lpad(g::text, 9, '0'), customer_id, currency, paid, 'bank_transfer',
       'BENCH-' || g, received_at, 0, 0, 'posted', entry_id, 'bench', 1, received_at, received_at
FROM bench_gen WHERE paid > 0
"""

INVOICES = """
INSERT INTO invoices (id, number, order_id, customer_id, salesperson_id, currency, amount_minor,
                      outstanding_minor, debit_notes_minor, paid_minor, credited_minor,
                      written_off_minor, status, issued_at, due_date, paid_at, version,
                      created_at, updated_at)
SELECT invoice_id, 'INV-B' || lpad(g::text, 9, '0'), md5('ord' || g)::uuid::text, customer_id,
       salesperson_id, currency, amount, amount - paid, 0, paid, 0, 0, status, issued_at,
       due_date, CASE WHEN status = 'paid' THEN received_at END, 1, issued_at,
       CASE WHEN paid > 0 THEN received_at ELSE issued_at END
FROM bench_gen
"""

ALLOCATIONS = """
INSERT INTO payment_allocations (payment_id, invoice_id, amount_minor, kind, journal_entry_id,
                                 created_at)
SELECT payment_id, invoice_id, paid, 'payment', entry_id, received_at
FROM bench_gen WHERE paid > 0
"""

CROSSINGS = """
INSERT INTO overdue_crossings (invoice_id, level, days_overdue, as_of, scan_id, event_id,
                               created_at)
SELECT invoice_id, level, $1::date - due_date, $1::date, 'bench-history',
       md5('evt' || g || '-' || level)::uuid::text, $2::timestamptz
FROM bench_gen CROSS JOIN unnest($3::int[]) AS level
WHERE paid < amount AND due_date <= $1::date - level
"""

TABLES = ("journal_entries", "payments", "invoices", "payment_allocations", "overdue_crossings")

# Secondary indexes (not those behind primary keys and unique constraints) are dropped for the
# load and built again afterwards: one sort per index instead of a million random insertions.
SECONDARY_INDEXES = """
SELECT i.indexname, i.indexdef FROM pg_indexes i
WHERE i.schemaname = current_schema() AND i.tablename = ANY($1::text[])
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
"""


async def fill(dsn: str, *, invoices: int = 1_000_000, customers: int = 5_000,
               salespeople: int = 40, now: datetime | None = None,
               crossings_as_of: date | None = None,
               thresholds: tuple[int, ...] = (1, 15, 30, 60, 90), seed: float = 0.42,
               quiet: bool = False) -> dict[str, int]:
    """Write the book into the (migrated, empty) ledger database at `dsn`; returns row counts."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    conn = await asyncpg.connect(dsn)
    counts: dict[str, int] = {}
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET work_mem = '256MB'")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        # Bulk load: the rows are consistent by construction, so skip the per-row foreign-key
        # triggers (superuser only; without it the load is just slower).
        try:
            await conn.execute("SET session_replication_role = replica")
        except asyncpg.InsufficientPrivilegeError:
            pass

        async def step(what: str, sql: str, *args: object) -> int:
            started = time.perf_counter()
            status = await conn.execute(sql, *args)
            rows = int(status.rsplit(" ", 1)[-1]) if status.split()[0] in ("INSERT", "SELECT") else 0
            if not quiet:
                print(f"    {what:<22} {rows:>9} rows  {time.perf_counter() - started:6.1f} s",
                      flush=True)
            return rows

        indexes = await conn.fetch(SECONDARY_INDEXES, list(TABLES))
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')
        await conn.execute("SELECT setseed($1)", seed)
        await step("generated", GENERATE, invoices, customers, salespeople, now, now.date())
        counts["journal_entries"] = await step("journal entries", ENTRIES)
        counts["payments"] = await step("payments", PAYMENTS)
        counts["invoices"] = await step("invoices", INVOICES)
        counts["payment_allocations"] = await step("payment allocations", ALLOCATIONS)
        if crossings_as_of is not None:
            counts["overdue_crossings"] = await step("overdue crossings", CROSSINGS, crossings_as_of,
                                                     now, list(thresholds))
        await conn.execute("DROP TABLE bench_gen")
        started = time.perf_counter()
        for index in indexes:
            await conn.execute(index["indexdef"])
        if not quiet:
            print(f"    {'secondary indexes':<22} {len(indexes):>9} built  "
                  f"{time.perf_counter() - started:6.1f} s", flush=True)
        started = time.perf_counter()
        for table in TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        if not quiet:
            print(f"    {'vacuum analyze':<22} {'':>9}       {time.perf_counter() - started:6.1f} s",
                  flush=True)
    finally:
        await conn.close()
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", required=True, help="asyncpg DSN of a migrated, empty ledger db")
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--salespeople", type=int, default=40)
    parser.add_argument("--crossings", action="store_true",
                        help="record the overdue crossings up to yesterday")
    args = parser.parse_args()
    asyncio.run(fill(args.dsn, invoices=args.invoices, customers=args.customers,
                     salespeople=args.salespeople,
                     crossings_as_of=date.today() - timedelta(days=1) if args.crossings else None))
