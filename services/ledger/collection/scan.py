"""The overdue scan: `invoice.overdue` once per (invoice, level) crossed, and promises decided.

A scan as of a date works in batches, each its own transaction:

- crossings: one set-based query over two indexes returns the next invoices (by id) whose
  highest level crossed on the scan date is not emitted yet — money outstanding, not written
  off, no open dispute — and the batch inserts their `overdue_crossings` rows (unique per
  invoice and level) for every level reached and the new ones' outbox rows together. A
  scan that stops half-way keeps what its batches committed; running it again emits the
  rest and nothing twice, and so does a second replica racing it.
- promises: open promises whose invoice got the promised money since (dated payments and
  credit notes up to the scan date), or was settled, are `kept`; those still short after
  their promised date are `broken` (`promise.broken`).

Catching up after days down is one scan as of today: every level crossed meanwhile is emitted
with `days_overdue` as of the scan date. A level added to the settings later is emitted only
for invoices that have not reached a higher level yet.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import repository as ledger_repository
from services.ledger.collection import repository
from services.ledger.collection.errors import ScanDateInFuture, ScanInterrupted
from services.ledger.collection.models import OverdueScan, PromiseStatus, ScanStatus
from services.ledger.collection.repository import OverdueInvoice
from services.ledger.dates import end_of_day
from services.ledger.models import Invoice
from shared.app import Periodic
from shared.clock import Clock
from shared.db import Database
from shared.events import Event, new_event
from shared.observability import work_request_id
from shared.outbox import Outbox

log = logging.getLogger("o2c.ledger.overdue")

# A scan still `running` this long after it started lost its process (a crash, a deploy):
# the next scan marks it failed. Its committed batches stay; the next scan emits the rest.
STALE_AFTER = timedelta(hours=6)


def _overdue_event(clock: Clock, invoice: OverdueInvoice, level: int, as_of: date) -> Event:
    return new_event(clock, type="invoice.overdue", source="ledger", subject=invoice.invoice_id, data={
        "invoice_id": invoice.invoice_id, "invoice_number": invoice.number,
        "order_id": invoice.order_id, "customer_id": invoice.customer_id,
        "salesperson_id": invoice.salesperson_id, "days_overdue": (as_of - invoice.due_date).days,
        "level": level, "outstanding_minor": invoice.outstanding_minor,
        "currency": invoice.currency, "due_date": invoice.due_date.isoformat()})


async def emit_batch(session: AsyncSession, *, outbox: Outbox, clock: Clock, scan: OverdueScan,
                     thresholds: list[int], invoices: list[OverdueInvoice]) -> int:
    """Insert the crossings of every level each invoice has reached and the events of the new ones.

    Levels already emitted are left out; one that a replica racing this scan inserts first
    hits the unique key and is skipped. Returns how many crossings were new.
    """
    now = clock.now()
    emitted = await repository.emitted_levels(session, (i.invoice_id for i in invoices))
    events = {}
    for invoice in invoices:
        days = (scan.as_of - invoice.due_date).days
        for level in thresholds:
            if days >= level and (invoice.invoice_id, level) not in emitted:
                events[(invoice.invoice_id, level)] = _overdue_event(clock, invoice, level, scan.as_of)
    inserted = await repository.insert_crossings(session, [{
        "invoice_id": invoice_id, "level": level, "days_overdue": event.data["days_overdue"],
        "as_of": scan.as_of, "scan_id": scan.id, "event_id": str(event.id), "created_at": now}
        for (invoice_id, level), event in events.items()])
    await outbox.enqueue_many(session, [e for key, e in events.items() if key in inserted])
    return len(inserted)


async def _crossings_pass(db: Database, outbox: Outbox, clock: Clock, scan: OverdueScan,
                          thresholds: list[int], batch_size: int, progress: dict[str, int]) -> None:
    cutoffs = [(level, scan.as_of - timedelta(days=level)) for level in thresholds]
    after: str | None = None
    while True:
        async with db.session() as session, session.begin():
            invoices = await repository.invoices_to_escalate(session, cutoffs=cutoffs, after=after,
                                                             limit=batch_size)
            if not invoices:
                return
            emitted = await emit_batch(session, outbox=outbox, clock=clock, scan=scan,
                                       thresholds=thresholds, invoices=invoices)
            await repository.record_scan_progress(session, scan.id, batches=1,
                                                  invoices_examined=len(invoices),
                                                  crossings_emitted=emitted)
        progress["batches"] += 1
        after = invoices[-1].invoice_id


async def decide_promises(session: AsyncSession, *, outbox: Outbox, clock: Clock, as_of: date,
                          after: str | None, limit: int) -> tuple[int, int, str | None]:
    """Decide one batch of open promises as of `as_of`; returns (kept, broken, last id or None)."""
    before = end_of_day(as_of)
    promises = await repository.open_promises(session, created_before=before, after=after,
                                              limit=limit)
    if not promises:
        return 0, 0, None
    progress = await repository.promise_progress(session, [p.id for p in promises], before=before)
    numbers = await ledger_repository.document_numbers(
        session, Invoice, (p.invoice_id for p in promises))
    now, kept, broken, events = clock.now(), 0, 0, []
    for p in promises:
        got = progress[p.id]
        if got.settled or got.paid_since_minor >= p.amount_minor:
            kept += await repository.resolve_promise(
                session, p, status=PromiseStatus.kept, paid_since_minor=got.paid_since_minor,
                resolved_at=now, as_of=as_of)
        elif as_of > p.promised_date:
            if await repository.resolve_promise(
                    session, p, status=PromiseStatus.broken, paid_since_minor=got.paid_since_minor,
                    resolved_at=now, as_of=as_of):
                broken += 1
                events.append(new_event(
                    clock, type="promise.broken", source="ledger", subject=p.id, data={
                        "promise_id": p.id, "invoice_id": p.invoice_id,
                        "invoice_number": numbers.get(p.invoice_id), "customer_id": p.customer_id,
                        "salesperson_id": p.salesperson_id,
                        "promised_date": p.promised_date.isoformat(),
                        "amount_minor": p.amount_minor, "paid_since_minor": got.paid_since_minor,
                        "currency": p.currency}))
    await outbox.enqueue_many(session, events)
    return kept, broken, promises[-1].id


async def _promises_pass(db: Database, outbox: Outbox, clock: Clock, scan: OverdueScan,
                         batch_size: int, progress: dict[str, int]) -> None:
    after: str | None = None
    while True:
        async with db.session() as session, session.begin():
            kept, broken, after = await decide_promises(session, outbox=outbox, clock=clock,
                                                        as_of=scan.as_of, after=after,
                                                        limit=batch_size)
            if after is None:
                return
            await repository.record_scan_progress(session, scan.id, batches=1, promises_kept=kept,
                                                  promises_broken=broken)
        progress["batches"] += 1
        if outbox.relay is not None and broken:
            outbox.relay.wake()


async def run_scan(*, db: Database, outbox: Outbox, clock: Clock, as_of: date,
                   thresholds: list[int], batch_size: int, started_by: str,
                   trigger: str) -> OverdueScan:
    """Scan as of `as_of` (today or earlier), batch by batch; returns the finished scan's row.

    A failure in a batch marks the scan `failed` and raises `ScanInterrupted`; the batches
    already committed stay, and the next scan for the date emits the rest.
    """
    today = clock.today()
    if as_of > today:
        raise ScanDateInFuture(as_of, today)
    async with db.session() as session, session.begin():
        await repository.abandon_stale_scans(session, started_before=clock.now() - STALE_AFTER,
                                             finished_at=clock.now())
        scan = OverdueScan(as_of=as_of, status=ScanStatus.running, trigger=trigger,
                           started_by=started_by, started_at=clock.now())
        await repository.add(session, scan)
    progress = {"batches": 0}
    try:
        await _crossings_pass(db, outbox, clock, scan, sorted(thresholds), batch_size, progress)
        await _promises_pass(db, outbox, clock, scan, batch_size, progress)
    except Exception as exc:
        log.exception("overdue scan %s as of %s failed after %d batch(es)", scan.id, as_of,
                      progress["batches"])
        async with db.session() as session, session.begin():
            await repository.finish_scan(session, scan.id, status=ScanStatus.failed,
                                         finished_at=clock.now(),
                                         error=f"{type(exc).__name__}: {exc}"[:500])
        raise ScanInterrupted(scan.id, progress["batches"]) from exc
    async with db.session() as session, session.begin():
        await repository.finish_scan(session, scan.id, status=ScanStatus.completed,
                                     finished_at=clock.now())
        done = await repository.get_scan(session, scan.id)  # a fresh session: read after the update
        assert done is not None
    log.info("overdue scan as of %s: %d crossing(s) emitted, %d promise(s) kept, %d broken",
             as_of, done.crossings_emitted, done.promises_kept, done.promises_broken)
    return done


# ---------------------------------------------------------------- the periodic worker


async def scan_once(app: FastAPI, as_of: date | None = None, *, started_by: str = "scheduler",
                    trigger: str = "schedule") -> OverdueScan:
    """One scan with the app's settings, as of today unless told otherwise."""
    state: Any = app.state
    with work_request_id():
        return await run_scan(
            db=state.db, outbox=state.outbox, clock=state.clock,
            as_of=as_of or state.clock.today(), thresholds=state.settings.overdue_thresholds_days,
            batch_size=state.settings.overdue_scan_batch_size, started_by=started_by,
            trigger=trigger)


# The overdue scan as of today, daily by default; POST /v1/overdue-scans runs one now.
OVERDUE_SCAN = Periodic("overdue-scan", scan_once, every="overdue_scan_interval_seconds")
