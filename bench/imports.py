"""An import of open invoices from CSV through a real ledger, next to the same rows written bare.

On PostgreSQL (`O2C_BENCH_POSTGRES_URL`, default the local server as user postgres) it creates
a throwaway database, migrates the ledger into it and starts `o2c serve ledger` on a loopback
port (workers off). Then, each timed from the client:

1. `POST /v1/invoice-imports` of a `--rows`-line CSV (customers spread over `--customers`);
2. the same file again (every row already imported: nothing written);
3. a file of `--rows` new rows of which three are bad (422 listing exactly those three, and
   nothing written: the invoice and journal counts are checked before and after);
4. `/v1/ledger-check`: balanced, and 1100 equals the invoices' outstanding.

In the same run a bare reference writes the same rows the import writes (invoices, journal
entries, journal lines, outbox events) with asyncpg `executemany` in one transaction into
copies of the ledger's tables (`LIKE … INCLUDING ALL`: same columns, indexes and checks), and
the ratio is printed. The database is dropped at the end.

    .venv/bin/python -m bench.imports [--rows 10000] [--customers 500]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import httpx

from bench.ledger_process import FINANCE_KEY, throwaway_ledger
from bench.payments import _cpu_seconds

HEADER = "number,customer_id,salesperson_id,currency,amount_minor,outstanding_minor,issue_date,due_date"
TODAY = datetime.now(UTC).date()


def csv_rows(prefix: str, rows: int, customers: int, bad: frozenset[int] = frozenset()) -> str:
    lines = [HEADER]
    for i in range(rows):
        issued = TODAY - timedelta(days=10 + i % 200)
        due = issued + timedelta(days=30)
        amount = 10_000 + i
        if i in bad:  # a due date before the issue date
            due = issued - timedelta(days=1)
        lines.append(f"{prefix}-{i:06d},cust-{i % customers:05d},S-{i % 7},CNY,{amount},"
                     f"{amount - (i % 3) * 100},{issued},{due}")
    return "\n".join(lines) + "\n"


async def counts(dsn: str) -> tuple[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return (await conn.fetchval("SELECT count(*) FROM invoices"),
                await conn.fetchval("SELECT count(*) FROM journal_entries"))
    finally:
        await conn.close()


async def bare(dsn: str, rows: int, customers: int) -> float:
    """The import's rows written with asyncpg executemany, one transaction, into LIKE copies."""
    conn = await asyncpg.connect(dsn)
    try:
        for table in ("invoices", "journal_entries", "journal_lines", "outbox"):
            await conn.execute(f"CREATE TABLE bare_{table} (LIKE {table} INCLUDING ALL)")
        now = datetime.now(UTC)
        started = time.perf_counter()
        async with conn.transaction():
            entries, lines, invoices, events = [], [], [], []
            for i in range(rows):
                issued = datetime.combine(TODAY - timedelta(days=10 + i % 200), datetime.min.time(), UTC)
                amount = 10_000 + i
                open_ = amount - (i % 3) * 100
                eid, iid, customer = str(uuid.uuid4()), str(uuid.uuid4()), f"cust-{i % customers:05d}"
                entries.append((eid, f"JE-{i:07d}", "invoice", f"Opening balance: invoice B-{i}",
                                "CNY", issued, "invoice", iid, "bench", now))
                lines += [(eid, 1, "1100", customer, open_, 0), (eid, 2, "3000", None, 0, open_)]
                invoices.append((iid, f"B-{i:06d}", customer, f"S-{i % 7}", "CNY", amount, open_,
                                 amount - open_, "open", issued, (issued + timedelta(days=30)).date(),
                                 eid, now))
                for kind in ("journal_entry.posted", "invoice.imported"):
                    events.append((str(uuid.uuid4()), kind, iid, json.dumps(
                        {"invoice_id": iid, "customer_id": customer, "amount_minor": amount}), now))
            await conn.executemany(
                "INSERT INTO bare_journal_entries (id, number, kind, memo, currency, posted_at, "
                "source_type, source_id, created_by, created_at) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10)", entries)
            await conn.executemany(
                "INSERT INTO bare_journal_lines (id, entry_id, line_no, account_code, customer_id, "
                "debit_minor, credit_minor) VALUES (nextval('journal_lines_id_seq'),$1,$2,$3,$4,$5,$6)",
                lines)
            await conn.executemany(
                "INSERT INTO bare_invoices (id, number, customer_id, salesperson_id, currency, "
                "amount_minor, outstanding_minor, paid_minor, status, issued_at, due_date, "
                "journal_entry_id, version, created_at, updated_at, debit_notes_minor, "
                "credited_minor, written_off_minor) "
                "VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,1,$13,$13,0,0,0)", invoices)
            await conn.executemany(
                "INSERT INTO bare_outbox (event_id, type, subject, payload, created_at, "
                "available_at, attempts) VALUES ($1,$2,$3,$4,$5,$5,0)", events)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def post(http: httpx.AsyncClient, body: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    r = await http.post("/v1/invoice-imports", content=body, headers={"Content-Type": "text/csv"})
    return time.perf_counter() - started, r


async def main(rows: int, customers: int) -> None:
    async with throwaway_ledger("o2c_bench_imports") as ledger:
        first = csv_rows("OLD", rows, customers)
        bad_file = csv_rows("NEW", rows, customers, bad=frozenset({17, rows // 2, rows - 1}))
        print(f"ledger on PostgreSQL ({ledger.name}); {rows} rows ({len(first) / 1e6:.2f} MB CSV), "
              f"{customers} customers")
        async with httpx.AsyncClient(base_url=ledger.base, timeout=600,
                                     headers={"Authorization": f"Bearer {FINANCE_KEY}"}) as http:
            cpu0 = _cpu_seconds(ledger.pid) or 0.0
            imported, r = await post(http, first)
            cpu = (_cpu_seconds(ledger.pid) or 0.0) - cpu0
            assert r.status_code == 201 and r.json()["created"] == rows, r.text[:500]
            print(f"  import of {rows} new rows       : {imported:6.2f} s  ({rows / imported:7.0f} "
                  f"rows/s, ledger CPU {cpu:.2f} s)")
            took, r = await post(http, first)
            assert r.status_code == 201 and r.json()["unchanged"] == rows, r.text[:500]
            print(f"  the same file again             : {took:6.2f} s  (all {rows} unchanged)")
            before = await counts(ledger.dsn)
            took, r = await post(http, bad_file)
            bad_lines = sorted({e["line"] for e in r.json().get("errors", [])})
            assert r.status_code == 422 and bad_lines == [19, rows // 2 + 2, rows + 1], r.text[:500]
            assert await counts(ledger.dsn) == before
            print(f"  a file with 3 bad rows          : {took:6.2f} s  (422, lines {bad_lines}, "
                  f"nothing written: {before[0]} invoices, {before[1]} entries before and after)")
            check = (await http.get("/v1/ledger-check")).json()
            assert check["balanced"], check["problems"]
            print("  ledger-check                    : balanced; "
                  + "; ".join(f"{c['account_code']} {c['currency']} {c['balance_minor']} = "
                              f"documents {c['documents_minor']}" for c in check["controls"]))
        reference = await bare(ledger.dsn, rows, customers)
        print(f"  bare asyncpg executemany        : {reference:6.2f} s  (the same invoices, "
              f"entries, lines and events, one transaction)")
        print(f"  ratio import / bare             : {imported / reference:6.2f}  (the import also "
              "parses and validates every row, checks the numbers already in the ledger, and "
              "answers over HTTP)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--customers", type=int, default=500)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.customers))
