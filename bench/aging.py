"""The aging report and the overdue scan over 1,000,000 invoices, next to bare SQL passes.

On PostgreSQL (`O2C_BENCH_POSTGRES_URL`, default the local server as user postgres) it creates
a throwaway database `o2c_bench_aging_<pid>`, migrates the ledger into it, fills it with
`bench.ledger_data` (a realistic book: thousands of customers, tens of salespeople, due dates
over a year, most invoices paid with allocation rows, ~6 % overdue, the overdue crossings
already recorded up to yesterday), and starts a real `o2c serve ledger` (uvicorn, workers
off). In the same run it then measures:

- `GET /v1/reports/aging?group_by=customer` and `…=salesperson` (as of today: the JSON as a
  client receives it) against a bare asyncpg pass over the same invoice rows — the minimal
  `GROUP BY` with `CASE` buckets on today's `outstanding_minor` — median of `--runs` each,
  and checks both give the same totals; and, for scale, the customer report as of 30 days
  ago (today's outstanding plus every movement dated since);
- `POST /v1/overdue-scans` as of today (a daily run: finds, records and emits that day's
  crossings) against a bare pass that only selects those crossings (same predicates), and
  checks both find the same number.

It prints both timings and their ratio for each, then drops the database.

    .venv/bin/python -m bench.aging [--invoices 1000000] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx

from bench.ledger_data import fill
from bench.ledger_process import FINANCE_KEY, throwaway_ledger
from services.ledger.config import LedgerSettings
from services.ledger.reporting.service import bucket_names


def bare_aging_sql(key: str, bounds: list[int]) -> str:
    """The minimal aging pass: today's outstanding in CASE buckets, grouped in the database."""
    buckets = ["SUM(CASE WHEN due_date >= $1 THEN outstanding_minor ELSE 0 END)"]
    for i in range(len(bounds)):
        buckets.append(f"SUM(CASE WHEN due_date < ${i + 1} AND due_date >= ${i + 2} "
                       "THEN outstanding_minor ELSE 0 END)")
    buckets.append(f"SUM(CASE WHEN due_date < ${len(bounds) + 1} THEN outstanding_minor ELSE 0 END)")
    return (f"SELECT {key}, currency, {', '.join(buckets)}, SUM(outstanding_minor) "
            f"FROM invoices WHERE outstanding_minor > 0 GROUP BY {key}, currency")


BARE_CROSSINGS = """
SELECT i.id, l.level
FROM invoices i
JOIN (SELECT unnest($1::int[]) AS level, unnest($2::date[]) AS cutoff) l ON i.due_date <= l.cutoff
WHERE i.outstanding_minor > 0 AND i.status <> 'written_off'
  AND NOT EXISTS (SELECT 1 FROM overdue_crossings c WHERE c.invoice_id = i.id AND c.level = l.level)
  AND NOT EXISTS (SELECT 1 FROM invoice_disputes d WHERE d.invoice_id = i.id AND d.status = 'open')
"""


async def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = await fn()
    return time.perf_counter() - started, result


async def _aging(client: httpx.AsyncClient, pool: asyncpg.Pool, group_by: str, runs: int,
                 today: date, bounds: list[int]) -> None:
    starts = [today, *(today - timedelta(days=b) for b in bounds)]
    sql = bare_aging_sql(f"{group_by}_id", bounds)

    async def api() -> dict:
        r = await client.get("/v1/reports/aging", params={"group_by": group_by})
        assert r.status_code == 200, r.text
        return r.json()

    async def bare() -> list:
        async with pool.acquire() as conn:
            return await conn.fetch(sql, *starts)

    await api()
    await bare()  # warm-up: caches and plans for both
    api_times, bare_times = [], []
    report, rows = None, None
    for _ in range(runs):
        t, report = await _timed(api)
        api_times.append(t)
        t, rows = await _timed(bare)
        bare_times.append(t)
    assert isinstance(report, dict) and isinstance(rows, list)
    totals: dict[str, int] = defaultdict(int)
    for row in rows:
        totals[row["currency"]] += row[len(row) - 1]
    assert {t["currency"]: t["total_minor"] for t in report["totals"]} == dict(totals), \
        "the report and the bare pass disagree"
    api_ms, bare_ms = statistics.median(api_times) * 1000, statistics.median(bare_times) * 1000
    names = bucket_names(bounds)
    print(f"  aging by {group_by:<11}: {len(report['rows']):>5} rows, buckets {', '.join(names)}")
    print(f"    GET /v1/reports/aging (JSON, over HTTP) : {api_ms:8.1f} ms  (median of {runs})")
    print(f"    bare GROUP BY with CASE buckets        : {bare_ms:8.1f} ms")
    print(f"    ratio report / bare                    : {api_ms / bare_ms:8.2f}")
    if group_by == "customer":  # a past date: today's outstanding plus the month's movements
        past = (today - timedelta(days=30)).isoformat()
        past_times = []
        for _ in range(runs):
            t, _ = await _timed(lambda: client.get("/v1/reports/aging", params={"as_of": past}))
            past_times.append(t)
        print(f"    the same report as of {past}      : "
              f"{statistics.median(past_times) * 1000:8.1f} ms  (movements after it added back)")


async def _overdue_scan(client: httpx.AsyncClient, pool: asyncpg.Pool, today: date,
                        thresholds: list[int], runs: int) -> None:
    cutoffs = [today - timedelta(days=level) for level in thresholds]

    async def bare() -> list:
        async with pool.acquire() as conn:
            return await conn.fetch(BARE_CROSSINGS, thresholds, cutoffs)

    await bare()  # warm-up (reads only)
    bare_times, rows = [], []
    for _ in range(runs):
        t, rows = await _timed(bare)
        bare_times.append(t)

    async def scan(run: int) -> dict:
        r = await client.post("/v1/overdue-scans", json={"as_of": today.isoformat()},
                              headers={"Idempotency-Key": f"bench-scan-{today}-{run}"})
        assert r.status_code == 201, r.text
        return r.json()

    async def undo_today() -> None:
        """Forget today's crossings and their events, so the next run is the same daily run."""
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM outbox WHERE event_id IN (SELECT event_id FROM "
                               "overdue_crossings WHERE as_of = $1)", today)
            await conn.execute("DELETE FROM overdue_crossings WHERE as_of = $1", today)

    # Warm-up of the scan's own code path and query plans, as the aging report had: a scan as
    # of yesterday finds every crossing already recorded and emits nothing.
    r = await client.post("/v1/overdue-scans", json={"as_of": (today - timedelta(days=1)).isoformat()})
    assert r.status_code == 201 and r.json()["crossings_emitted"] == 0, r.text
    scan_times = []
    for run in range(runs):
        if run:
            await undo_today()
        t, done = await _timed(lambda run=run: scan(run))
        scan_times.append(t)
        assert isinstance(done, dict) and isinstance(rows, list)
        assert done["crossings_emitted"] == len(rows), (done, len(rows))
    scan_s, bare_s = statistics.median(scan_times), statistics.median(bare_times)
    print(f"  overdue scan as of {today} (a daily run): {len(rows)} crossings over "
          f"{done['invoices_examined']} invoices examined, {done['batches']} batch(es)")
    print(f"    POST /v1/overdue-scans (record + emit)  : {scan_s * 1000:8.1f} ms  (median of {runs})")
    print(f"    bare SELECT of the crossings           : {bare_s * 1000:8.1f} ms")
    print(f"    ratio scan / bare                      : {scan_s / bare_s:8.2f}")


async def main(invoices: int, runs: int, customers: int, salespeople: int) -> None:
    started = time.perf_counter()
    now = datetime.now(UTC)
    today = now.date()
    settings = LedgerSettings()

    async def load(name: str, dsn: str) -> None:
        print(f"ledger on PostgreSQL ({name}): filling {invoices} invoices "
              f"({customers} customers, {salespeople} salespeople)", flush=True)
        await fill(dsn, invoices=invoices, customers=customers, salespeople=salespeople, now=now,
                   crossings_as_of=today - timedelta(days=1),
                   thresholds=tuple(settings.overdue_thresholds_days))

    async with throwaway_ledger("o2c_bench_aging", fill=load) as ledger:
        pool = await asyncpg.create_pool(ledger.dsn, min_size=1, max_size=2)
        try:
            async with httpx.AsyncClient(base_url=ledger.base, timeout=900,
                                         headers={"Authorization": f"Bearer {FINANCE_KEY}"}) as client:
                for group_by in ("customer", "salesperson"):
                    await _aging(client, pool, group_by, runs, today, settings.aging_bucket_days)
                await _overdue_scan(client, pool, today, settings.overdue_thresholds_days, runs)
        finally:
            await pool.close()
    print(f"  whole run: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each report (median)")
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--salespeople", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main(args.invoices, args.runs, args.customers, args.salespeople))
