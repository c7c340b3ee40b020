"""Every query of collection work: the overdue scan's set-based selection, promises, disputes, notes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import case, exists, func, literal_column, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.collection.models import (
    CollectionNote,
    OverdueCrossing,
    OverdueScan,
    PaymentPromise,
    PromiseStatus,
    ScanStatus,
)
from services.ledger.models import (
    AllocationKind,
    CreditNote,
    DisputeStatus,
    Invoice,
    InvoiceDispute,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentStatus,
)
from services.ledger.repository import open_dispute_exists
from shared.db import dialect_insert
from shared.pagination import Keyset, Page, keyset_page

# ---------------------------------------------------------------- scans


async def get_scan(session: AsyncSession, scan_id: str) -> OverdueScan | None:
    return await session.get(OverdueScan, scan_id)


async def list_scans(session: AsyncSession, *, limit: int, cursor: str | None,
                     as_of: date | None, status: str | None) -> Page[OverdueScan]:
    stmt = select(OverdueScan)
    if as_of is not None:
        stmt = stmt.where(OverdueScan.as_of == as_of)
    if status is not None:
        stmt = stmt.where(OverdueScan.status == status)
    return await keyset_page(session, stmt,
                             Keyset(OverdueScan.started_at, OverdueScan.id, newest_first=True),
                             limit=limit, cursor=cursor)


async def record_scan_progress(session: AsyncSession, scan_id: str, **increments: int) -> None:
    """Add this batch's counts to the scan's row (in the batch's own transaction)."""
    await session.execute(
        update(OverdueScan).where(OverdueScan.id == scan_id)
        .values({name: getattr(OverdueScan, name) + value for name, value in increments.items()})
        .execution_options(synchronize_session=False))


async def abandon_stale_scans(session: AsyncSession, *, started_before: datetime,
                              finished_at: datetime) -> int:
    """Mark scans still `running` since before `started_before` failed: their process stopped."""
    result = await session.execute(
        update(OverdueScan)
        .where(OverdueScan.status == ScanStatus.running, OverdueScan.started_at < started_before)
        .values(status=ScanStatus.failed, finished_at=finished_at,
                error="abandoned: the scan's process stopped before it finished")
        .execution_options(synchronize_session=False))
    return result.rowcount


async def finish_scan(session: AsyncSession, scan_id: str, *, status: str, finished_at: datetime,
                      error: str | None = None) -> None:
    await session.execute(
        update(OverdueScan).where(OverdueScan.id == scan_id)
        .values(status=status, finished_at=finished_at, error=error)
        .execution_options(synchronize_session=False))


# ---------------------------------------------------------------- overdue crossings


@dataclass(frozen=True)
class OverdueInvoice:
    """An invoice whose highest level crossed on the scan date has not been emitted yet."""

    invoice_id: str
    number: str
    order_id: str
    customer_id: str
    salesperson_id: str | None
    currency: str
    outstanding_minor: int
    due_date: date


# The predicate of `ix_invoices_collectable`, as SQL constants so that PostgreSQL can match
# the partial index whatever plan a prepared statement gets.
COLLECTABLE = (Invoice.outstanding_minor > literal_column("0"),
               Invoice.status != literal_column(f"'{InvoiceStatus.written_off.value}'"))


async def invoices_to_escalate(session: AsyncSession, *, cutoffs: Sequence[tuple[int, date]],
                               after: str | None, limit: int) -> list[OverdueInvoice]:
    """The next invoices (by id) with a crossing to emit on the scan date, in two queries.

    `cutoffs` pairs each level with the last due date that has crossed it on the scan date
    (as_of − level days). The selection reads only the partial index of collectable invoices
    (money outstanding, not written off) and the crossings' unique index: an invoice needs
    work when its highest level crossed has no crossing row and it has no open dispute
    (a scan emits all of an invoice's crossed levels together, so the highest one missing is
    the sign). Then the few selected rows are read in full.
    """
    by_level = sorted(cutoffs, reverse=True)
    top_level = case(*((Invoice.due_date <= cutoff, level) for level, cutoff in by_level[:-1]),
                     else_=by_level[-1][0])
    stmt = (
        select(Invoice.id)
        .where(*COLLECTABLE, Invoice.due_date <= by_level[-1][1],
               ~exists().where(OverdueCrossing.invoice_id == Invoice.id,
                               OverdueCrossing.level == top_level),
               ~open_dispute_exists(Invoice.id))
        .order_by(Invoice.id).limit(limit))
    if after is not None:
        stmt = stmt.where(Invoice.id > after)
    ids = list((await session.execute(stmt)).scalars())
    if not ids:
        return []
    rows = await session.execute(
        select(Invoice.id, Invoice.number, Invoice.order_id, Invoice.customer_id,
               Invoice.salesperson_id, Invoice.currency, Invoice.outstanding_minor, Invoice.due_date)
        .where(Invoice.id.in_(ids)).order_by(Invoice.id))
    return [OverdueInvoice(*row) for row in rows]


async def insert_crossings(session: AsyncSession, rows: list[dict[str, Any]]) -> set[tuple[str, int]]:
    """Insert crossings, skipping those another scan inserted first; returns the new (invoice, level).

    One cached statement executed for many rows (SQLAlchemy batches it into multi-row
    INSERTs with RETURNING on PostgreSQL and SQLite).
    """
    if not rows:
        return set()
    table = OverdueCrossing.__table__
    stmt = (dialect_insert(session)(table).on_conflict_do_nothing(index_elements=["invoice_id", "level"])
            .returning(table.c.invoice_id, table.c.level))
    return {(r[0], r[1]) for r in await session.execute(stmt, rows)}


async def emitted_levels(session: AsyncSession, invoice_ids: Iterable[str]) -> set[tuple[str, int]]:
    """(invoice, level) of the crossings already emitted for these invoices."""
    ids = list(invoice_ids)
    if not ids:
        return set()
    stmt = select(OverdueCrossing.invoice_id, OverdueCrossing.level).where(
        OverdueCrossing.invoice_id.in_(ids))
    return {(r[0], r[1]) for r in await session.execute(stmt)}


# ---------------------------------------------------------------- promises


async def add(session: AsyncSession, row: Any) -> None:
    session.add(row)
    await session.flush()


async def list_promises(session: AsyncSession, *, limit: int, cursor: str | None,
                        invoice_id: str | None = None, customer_id: str | None = None,
                        salesperson_id: str | None = None,
                        status: str | None = None) -> Page[PaymentPromise]:
    stmt = select(PaymentPromise)
    if invoice_id is not None:
        stmt = stmt.where(PaymentPromise.invoice_id == invoice_id)
    if customer_id is not None:
        stmt = stmt.where(PaymentPromise.customer_id == customer_id)
    if salesperson_id is not None:
        stmt = stmt.where(PaymentPromise.salesperson_id == salesperson_id)
    if status is not None:
        stmt = stmt.where(PaymentPromise.status == status)
    return await keyset_page(session, stmt,
                             Keyset(PaymentPromise.created_at, PaymentPromise.id, newest_first=True),
                             limit=limit, cursor=cursor)


async def open_promises(session: AsyncSession, *, created_before: datetime, after: str | None,
                        limit: int) -> list[PaymentPromise]:
    """Open promises recorded before `created_before`, by id, one batch at a time."""
    stmt = select(PaymentPromise).where(PaymentPromise.status == PromiseStatus.open,
                                        PaymentPromise.created_at < created_before)
    if after is not None:
        stmt = stmt.where(PaymentPromise.id > after)
    return list((await session.execute(stmt.order_by(PaymentPromise.id).limit(limit))).scalars())


@dataclass(frozen=True)
class PromiseProgress:
    paid_since_minor: int
    settled: bool


async def promise_progress(session: AsyncSession, promise_ids: Iterable[str], *,
                           before: datetime) -> dict[str, PromiseProgress]:
    """What was paid on or credited to each promise's invoice since the promise, up to `before`.

    Dated movements only: an allocation counts when it was made after the promise was
    recorded and its money is dated before `before` (a payment's `received_at`, or the
    allocation's own time for unapplied cash applied later), unless its payment was reversed
    before `before`; a credit note counts by its date. `settled`: the invoice reached 0 by
    payment or credit (status paid) before `before`.
    """
    ids = list(promise_ids)
    if not ids:
        return {}
    moved_at = case((PaymentAllocation.kind == AllocationKind.payment, Payment.received_at),
                    else_=PaymentAllocation.created_at)
    paid = (
        select(PaymentPromise.id, func.coalesce(func.sum(PaymentAllocation.amount_minor), 0))
        .join(PaymentAllocation, PaymentAllocation.invoice_id == PaymentPromise.invoice_id)
        .join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(PaymentPromise.id.in_(ids),
               PaymentAllocation.created_at >= PaymentPromise.created_at,
               moved_at < before,
               or_(Payment.status != PaymentStatus.reversed, Payment.reversed_at >= before))
        .group_by(PaymentPromise.id))
    credited = (
        select(PaymentPromise.id, func.coalesce(func.sum(CreditNote.amount_minor), 0))
        .join(CreditNote, CreditNote.invoice_id == PaymentPromise.invoice_id)
        .where(PaymentPromise.id.in_(ids), CreditNote.created_at >= PaymentPromise.created_at,
               CreditNote.created_at < before)
        .group_by(PaymentPromise.id))
    settled = (
        select(PaymentPromise.id)
        .join(Invoice, Invoice.id == PaymentPromise.invoice_id)
        .where(PaymentPromise.id.in_(ids), Invoice.status == InvoiceStatus.paid,
               Invoice.paid_at < before))
    totals = dict.fromkeys(ids, 0)
    for stmt in (paid, credited):
        for promise_id, amount in await session.execute(stmt):
            totals[promise_id] += int(amount)
    settled_ids = set((await session.execute(settled)).scalars())
    return {i: PromiseProgress(totals[i], i in settled_ids) for i in ids}


async def resolve_promise(session: AsyncSession, promise: PaymentPromise, *, status: str,
                          paid_since_minor: int, resolved_at: datetime, as_of: date) -> bool:
    """Compare-and-set an open promise to kept or broken; False when another scan decided it."""
    result = await session.execute(
        update(PaymentPromise)
        .where(PaymentPromise.id == promise.id, PaymentPromise.status == PromiseStatus.open)
        .values(status=status, paid_since_minor=paid_since_minor, resolved_at=resolved_at,
                resolved_as_of=as_of, version=PaymentPromise.version + 1)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


# ---------------------------------------------------------------- disputes


async def get_dispute(session: AsyncSession, dispute_id: str, *, for_update: bool = False
                      ) -> InvoiceDispute | None:
    stmt = select(InvoiceDispute).where(InvoiceDispute.id == dispute_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def open_dispute(session: AsyncSession, invoice_id: str) -> InvoiceDispute | None:
    stmt = select(InvoiceDispute).where(InvoiceDispute.invoice_id == invoice_id,
                                        InvoiceDispute.status == DisputeStatus.open)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_disputes(session: AsyncSession, *, invoice_id: str, limit: int,
                        cursor: str | None) -> Page[InvoiceDispute]:
    stmt = select(InvoiceDispute).where(InvoiceDispute.invoice_id == invoice_id)
    return await keyset_page(session, stmt,
                             Keyset(InvoiceDispute.opened_at, InvoiceDispute.id, newest_first=True),
                             limit=limit, cursor=cursor)


# ---------------------------------------------------------------- collection notes


async def list_notes(session: AsyncSession, *, limit: int, cursor: str | None,
                     invoice_id: str | None = None, customer_id: str | None = None,
                     salesperson_id: str | None = None, next_action_before: date | None = None,
                     contact_role: str | None = None) -> Page[CollectionNote]:
    stmt = select(CollectionNote)
    if invoice_id is not None:
        stmt = stmt.where(CollectionNote.invoice_id == invoice_id)
    if customer_id is not None:
        stmt = stmt.where(CollectionNote.customer_id == customer_id)
    if salesperson_id is not None:
        stmt = stmt.where(CollectionNote.salesperson_id == salesperson_id)
    if next_action_before is not None:
        stmt = stmt.where(CollectionNote.next_action_on < next_action_before)
    if contact_role is not None:
        stmt = stmt.where(CollectionNote.contact_role == contact_role)
    return await keyset_page(session, stmt,
                             Keyset(CollectionNote.created_at, CollectionNote.id, newest_first=True),
                             limit=limit, cursor=cursor)
