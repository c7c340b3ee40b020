"""Every query of the receivables reports: set-based SQL, aggregated in the database.

The reports are reproducible for past dates because they never read today's money columns
alone. `outstanding_as_of(cut)` gives each invoice issued before `cut` its outstanding at
`cut`:

    outstanding at cut = outstanding now
                         + Σ what took money off the invoice at or after cut
                           (payment allocations, credit notes, posted write-offs; an
                            allocation given back by a credit note counts negative)
                         − Σ what added money to it at or after cut
                           (debit notes, reversals of payments that had paid it)

Each movement is dated as the journal dates it (an allocation by its journal entry's
`posted_at`: the payment's `received_at`, or when unapplied cash was applied; notes and
write-offs by the date they count from, which may be earlier than when they were booked). The "at or
after cut" part is an index range scan on those dates, empty when the cut is now, so today's
report costs one pass over the invoices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    and_,
    case,
    cast,
    func,
    literal,
    null,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.selectable import Subquery

from services.ledger.models import (
    CreditNote,
    DebitNote,
    Invoice,
    InvoiceDispute,
    InvoiceStatus,
    JournalEntry,
    Payment,
    PaymentAllocation,
    PaymentStatus,
)
from services.ledger.writeoffs.models import WriteOff, WriteOffStatus

inv = Invoice.__table__
alloc = PaymentAllocation.__table__
entries = JournalEntry.__table__
payments = Payment.__table__
credit_notes = CreditNote.__table__
debit_notes = DebitNote.__table__
write_offs = WriteOff.__table__
disputes = InvoiceDispute.__table__


def _moved_after(cut: datetime) -> Subquery:
    """(invoice_id, delta): what to add to today's outstanding to get it back to `cut`."""
    parts = union_all(
        select(alloc.c.invoice_id, alloc.c.amount_minor.label("delta"))
        .join(entries, entries.c.id == alloc.c.journal_entry_id)
        .where(entries.c.posted_at >= cut),
        select(alloc.c.invoice_id, (-alloc.c.amount_minor).label("delta"))
        .join(payments, payments.c.id == alloc.c.payment_id)
        .where(payments.c.status == PaymentStatus.reversed, payments.c.reversed_at >= cut),
        select(credit_notes.c.invoice_id, credit_notes.c.amount_minor.label("delta"))
        .where(credit_notes.c.effective_at >= cut),
        select(debit_notes.c.invoice_id, (-debit_notes.c.amount_minor).label("delta"))
        .where(debit_notes.c.effective_at >= cut),
        select(write_offs.c.invoice_id, write_offs.c.amount_minor.label("delta"))
        .where(write_offs.c.status == WriteOffStatus.posted, write_offs.c.posted_at >= cut),
    ).subquery("moved")
    return (select(parts.c.invoice_id, cast(func.sum(parts.c.delta), BigInteger).label("delta"))
            .group_by(parts.c.invoice_id).subquery("moved_after"))


def _disputed_at(cut: datetime) -> Subquery:
    """(invoice_id, flag = 1) of the invoices under a dispute that was open at `cut`."""
    return (select(disputes.c.invoice_id, literal(1).label("flag")).distinct()
            .where(disputes.c.opened_at < cut,
                   or_(disputes.c.resolved_at.is_(None), disputes.c.resolved_at >= cut))
            .subquery("disputed"))


def outstanding_as_of(cut: datetime, *, salesperson_id: str | None = None,
                      currency: str | None = None, with_disputes: bool = False) -> Subquery:
    """Invoices issued before `cut` with money outstanding at `cut`, and that amount (`owed`).

    An invoice qualifies when it owes money now or moved since `cut`: both tests sit on the
    scan of `invoices` (the second a hashed lookup in the movements), and every join is a
    hash join against a small set, so PostgreSQL scans and pre-aggregates in parallel.
    """
    filters = [inv.c.issued_at < cut]
    if salesperson_id is not None:
        filters.append(inv.c.salesperson_id == salesperson_id)
    if currency is not None:
        filters.append(inv.c.currency == currency)

    moved = _moved_after(cut)
    owed = (inv.c.outstanding_minor + func.coalesce(moved.c.delta, 0)).label("owed")
    # "owing now, or moved since": the first test is the bare pass's scan filter, the second
    # a hashed lookup in the (usually empty) movements, so the scan stays one parallel pass.
    moved_ids = select(_moved_after(cut).c.invoice_id)
    both = (select(inv.c.id, inv.c.customer_id, inv.c.salesperson_id, inv.c.currency,
                   inv.c.due_date, owed)
            .select_from(inv.outerjoin(moved, moved.c.invoice_id == inv.c.id))
            .where(or_(inv.c.outstanding_minor > 0, inv.c.id.in_(moved_ids)), *filters, owed > 0)
            .subquery("owed_any"))
    if not with_disputes:
        return both
    disputed = _disputed_at(cut)
    return (select(*both.c, func.coalesce(disputed.c.flag, 0).label("disputed"))
            .select_from(both.outerjoin(disputed, disputed.c.invoice_id == both.c.id))
            .subquery("owed"))


async def no_jit(session: AsyncSession) -> None:
    """PostgreSQL's JIT costs seconds to compile a report that runs in a fraction of that."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(text("SET LOCAL jit = off"))


# ---------------------------------------------------------------- aging


@dataclass(frozen=True)
class AgingRow:
    key: str | None
    currency: str
    buckets: list[int]
    total_minor: int
    disputed_minor: int


async def aging(session: AsyncSession, *, cut: datetime, bucket_starts: list[date],
                group_by: str, salesperson_id: str | None,
                currency: str | None) -> list[AgingRow]:
    """Σ owed per group and currency in buckets: `bucket_starts` are the due dates from which
    each bucket (current first) begins; older than the last start is the last bucket."""
    owed = outstanding_as_of(cut, salesperson_id=salesperson_id, currency=currency,
                             with_disputes=True)
    key = owed.c.customer_id if group_by == "customer" else owed.c.salesperson_id
    due = owed.c.due_date
    conds = [due >= bucket_starts[0],
             *(and_(due >= start, due < later) for start, later in zip(
                 bucket_starts[1:], bucket_starts, strict=False)),
             due < bucket_starts[-1]]
    # Σ of bigint is numeric in PostgreSQL: cast back, so rows arrive as ints, not Decimals.
    sums = [cast(func.sum(case((cond, owed.c.owed), else_=0)), BigInteger) for cond in conds]
    stmt = (select(key, owed.c.currency, *sums, cast(func.sum(owed.c.owed), BigInteger),
                   cast(func.sum(owed.c.owed * owed.c.disputed), BigInteger))
            .group_by(key, owed.c.currency).order_by(key, owed.c.currency))
    await no_jit(session)
    n = len(conds)
    rows = (await session.execute(stmt)).all()  # one fetch, not a round of fetchone per row
    return [AgingRow(r[0], r[1], list(r[2:2 + n]), r[2 + n], r[3 + n]) for r in rows]


# ---------------------------------------------------------------- DSO, CEI


@dataclass(frozen=True)
class Receivables:
    currency: str
    owed_minor: int
    current_minor: int  # not overdue at the cut's date


async def receivables(session: AsyncSession, *, cut: datetime, as_of: date,
                      salesperson_id: str | None, group_by_salesperson: bool = False
                      ) -> dict[tuple[str | None, str], Receivables]:
    """Σ owed and Σ owed not yet overdue at `cut`, per currency (and salesperson)."""
    owed = outstanding_as_of(cut, salesperson_id=salesperson_id)
    groups = [owed.c.salesperson_id] if group_by_salesperson else []
    stmt = (select(owed.c.salesperson_id if group_by_salesperson else null(), owed.c.currency,
                   func.sum(owed.c.owed),
                   func.sum(case((owed.c.due_date >= as_of, owed.c.owed), else_=0)))
            .group_by(*groups, owed.c.currency))
    await no_jit(session)
    return {(r[0], r[1]): Receivables(r[1], int(r[2]), int(r[3]))
            for r in await session.execute(stmt)}


async def credit_sales(session: AsyncSession, *, start: datetime, end: datetime,
                       salesperson_id: str | None, group_by_salesperson: bool = False
                       ) -> dict[tuple[str | None, str], int]:
    """Σ invoiced (as issued) in [start, end), per currency (and salesperson)."""
    key = inv.c.salesperson_id if group_by_salesperson else null()
    stmt = select(key, inv.c.currency, func.sum(inv.c.amount_minor)).where(
        inv.c.issued_at >= start, inv.c.issued_at < end)
    if salesperson_id is not None:
        stmt = stmt.where(inv.c.salesperson_id == salesperson_id)
    stmt = stmt.group_by(*([inv.c.salesperson_id] if group_by_salesperson else []), inv.c.currency)
    return {(r[0], r[1]): int(r[2]) for r in await session.execute(stmt)}


# ---------------------------------------------------------------- salesperson performance


def _days_between(later: Any, earlier: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        return func.julianday(later) - func.julianday(earlier)
    return func.extract("epoch", later - earlier) / 86400.0


async def collected(session: AsyncSession, *, start: datetime, end: datetime,
                    salesperson_id: str | None) -> dict[tuple[str | None, str], int]:
    """Σ payments applied to each salesperson's invoices in [start, end), net of reversals then."""
    applied = (select(inv.c.salesperson_id.label("sp"), inv.c.currency.label("cur"),
                      alloc.c.amount_minor.label("amount"))
               .select_from(alloc.join(entries, entries.c.id == alloc.c.journal_entry_id)
                            .join(inv, inv.c.id == alloc.c.invoice_id))
               .where(entries.c.posted_at >= start, entries.c.posted_at < end))
    undone = (select(inv.c.salesperson_id, inv.c.currency, -alloc.c.amount_minor)
              .select_from(alloc.join(payments, payments.c.id == alloc.c.payment_id)
                           .join(inv, inv.c.id == alloc.c.invoice_id))
              .where(payments.c.status == PaymentStatus.reversed,
                     payments.c.reversed_at >= start, payments.c.reversed_at < end))
    if salesperson_id is not None:
        applied = applied.where(inv.c.salesperson_id == salesperson_id)
        undone = undone.where(inv.c.salesperson_id == salesperson_id)
    both = union_all(applied, undone).subquery()
    stmt = select(both.c.sp, both.c.cur, func.sum(both.c.amount)).group_by(both.c.sp, both.c.cur)
    return {(r[0], r[1]): int(r[2]) for r in await session.execute(stmt)}


async def written_off(session: AsyncSession, *, start: datetime, end: datetime,
                      salesperson_id: str | None) -> dict[tuple[str | None, str], int]:
    stmt = (select(write_offs.c.salesperson_id, write_offs.c.currency,
                   func.sum(write_offs.c.amount_minor))
            .where(write_offs.c.status == WriteOffStatus.posted, write_offs.c.posted_at >= start,
                   write_offs.c.posted_at < end)
            .group_by(write_offs.c.salesperson_id, write_offs.c.currency))
    if salesperson_id is not None:
        stmt = stmt.where(write_offs.c.salesperson_id == salesperson_id)
    return {(r[0], r[1]): int(r[2]) for r in await session.execute(stmt)}


async def days_to_pay(session: AsyncSession, *, start: datetime, end: datetime,
                      salesperson_id: str | None) -> dict[tuple[str | None, str], float]:
    """Average days from issue to paid in full, over invoices paid by payments in [start, end)."""
    dialect = session.get_bind().dialect.name
    stmt = (select(inv.c.salesperson_id, inv.c.currency,
                   func.avg(_days_between(inv.c.paid_at, inv.c.issued_at, dialect)))
            .where(inv.c.status == InvoiceStatus.paid, inv.c.paid_minor > 0,
                   inv.c.paid_at >= start, inv.c.paid_at < end)
            .group_by(inv.c.salesperson_id, inv.c.currency))
    if salesperson_id is not None:
        stmt = stmt.where(inv.c.salesperson_id == salesperson_id)
    return {(r[0], r[1]): float(r[2]) for r in await session.execute(stmt)}

