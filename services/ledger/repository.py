"""Every query of the ledger service."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    and_,
    case,
    cast,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.ledger.models import (
    Account,
    CreditNote,
    CustomerBalance,
    DebitNote,
    DisputeStatus,
    Invoice,
    InvoiceDispute,
    InvoiceStatus,
    InvoiceStatusFilter,
    JournalEntry,
    JournalLine,
    Payment,
    PaymentAllocation,
    PaymentStatus,
    counters,
)
from shared.db import dialect_insert
from shared.pagination import Keyset, Page, keyset_page

# ---------------------------------------------------------------- accounts


async def get_account(session: AsyncSession, code: str) -> Account | None:
    return await session.get(Account, code)


async def accounts_by_code(session: AsyncSession, codes: Iterable[str]) -> dict[str, Account]:
    wanted = set(codes)
    if not wanted:
        return {}
    rows = await session.execute(select(Account).where(Account.code.in_(wanted)))
    return {a.code: a for a in rows.scalars()}


async def list_accounts(session: AsyncSession, *, limit: int, after: str | None,
                        kind: str | None) -> list[Account]:
    stmt = select(Account)
    if kind is not None:
        stmt = stmt.where(Account.kind == kind)
    if after is not None:
        stmt = stmt.where(Account.code > after)
    return list((await session.execute(stmt.order_by(Account.code).limit(limit))).scalars())


async def existing_account_codes(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(Account.code))).scalars())


async def existing_counters(session: AsyncSession) -> set[str]:
    return set((await session.execute(select(counters.c.name))).scalars())


async def add_counter(session: AsyncSession, name: str) -> None:
    await session.execute(counters.insert().values(name=name, value=0))


# ---------------------------------------------------------------- journal


async def get_entry(session: AsyncSession, entry_id: str, *, for_update: bool = False
                    ) -> JournalEntry | None:
    """The entry; `for_update` locks its row (PostgreSQL) until the transaction ends."""
    stmt = select(JournalEntry).where(JournalEntry.id == entry_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def lines_of(session: AsyncSession, entry_ids: Iterable[str]) -> dict[str, list[JournalLine]]:
    ids = list(entry_ids)
    result: dict[str, list[JournalLine]] = {i: [] for i in ids}
    if not ids:
        return result
    rows = await session.execute(select(JournalLine).where(JournalLine.entry_id.in_(ids))
                                 .order_by(JournalLine.entry_id, JournalLine.line_no))
    for line in rows.scalars():
        result[line.entry_id].append(line)
    return result


async def list_entries(session: AsyncSession, *, limit: int, cursor: str | None,
                       account_code: str | None, customer_id: str | None,
                       posted_from: datetime | None, posted_before: datetime | None,
                       kind: str | None, source_type: str | None,
                       source_id: str | None) -> Page[JournalEntry]:
    stmt = select(JournalEntry)
    if account_code is not None or customer_id is not None:
        line_filter = [JournalLine.entry_id == JournalEntry.id]
        if account_code is not None:
            line_filter.append(JournalLine.account_code == account_code)
        if customer_id is not None:
            line_filter.append(JournalLine.customer_id == customer_id)
        stmt = stmt.where(exists().where(*line_filter))
    if posted_from is not None:
        stmt = stmt.where(JournalEntry.posted_at >= posted_from)
    if posted_before is not None:
        stmt = stmt.where(JournalEntry.posted_at < posted_before)
    if kind is not None:
        stmt = stmt.where(JournalEntry.kind == kind)
    if source_type is not None:
        stmt = stmt.where(JournalEntry.source_type == source_type)
    if source_id is not None:
        stmt = stmt.where(JournalEntry.source_id == source_id)
    return await keyset_page(session, stmt, Keyset(JournalEntry.posted_at, JournalEntry.id),
                             limit=limit, cursor=cursor)


async def mark_reversed(session: AsyncSession, entry_id: str, reversal_id: str) -> bool:
    """Compare-and-set: link the reversal unless another one got there first."""
    result = await session.execute(
        update(JournalEntry)
        .where(JournalEntry.id == entry_id, JournalEntry.reversed_by_entry_id.is_(None))
        .values(reversed_by_entry_id=reversal_id)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


@dataclass(frozen=True)
class AccountTotal:
    code: str
    name: str
    kind: str
    normal_side: str
    currency: str
    debit_minor: int
    credit_minor: int


async def account_totals(session: AsyncSession, *, before: datetime | None,
                         currency: str | None) -> list[AccountTotal]:
    """Σ debit and Σ credit per account and currency of lines posted before `before`."""
    debit = func.coalesce(func.sum(JournalLine.debit_minor), 0)
    credit = func.coalesce(func.sum(JournalLine.credit_minor), 0)
    stmt = (
        select(Account.code, Account.name, Account.kind, Account.normal_side,
               JournalEntry.currency, debit, credit)
        .select_from(JournalLine)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .join(Account, Account.code == JournalLine.account_code)
        .group_by(Account.code, Account.name, Account.kind, Account.normal_side,
                  JournalEntry.currency)
        .order_by(Account.code, JournalEntry.currency)
    )
    if before is not None:
        stmt = stmt.where(JournalEntry.posted_at < before)
    if currency is not None:
        stmt = stmt.where(JournalEntry.currency == currency)
    rows = await session.execute(stmt)
    return [AccountTotal(r[0], r[1], r[2], r[3], r[4], int(r[5]), int(r[6])) for r in rows]


# ---------------------------------------------------------------- ledger check


async def unbalanced_entries(session: AsyncSession) -> list[tuple[str, str, int, int]]:
    """(entry id, number, Σ debit, Σ credit) of every entry whose lines do not balance."""
    debit = func.coalesce(func.sum(JournalLine.debit_minor), 0)
    credit = func.coalesce(func.sum(JournalLine.credit_minor), 0)
    stmt = (
        select(JournalEntry.id, JournalEntry.number, debit, credit)
        .select_from(JournalEntry)
        .outerjoin(JournalLine, JournalLine.entry_id == JournalEntry.id)
        .group_by(JournalEntry.id, JournalEntry.number)
        .having(or_(debit != credit, debit == 0))
        .order_by(JournalEntry.number)
    )
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in await session.execute(stmt)]


async def malformed_lines(session: AsyncSession) -> list[tuple[str, int, str]]:
    """(entry id, line no, why) of lines with a negative side, both sides or neither."""
    d, c = JournalLine.debit_minor, JournalLine.credit_minor
    stmt = select(JournalLine.entry_id, JournalLine.line_no, d, c).where(
        or_(d < 0, c < 0, and_(d > 0, c > 0), and_(d == 0, c == 0)))
    return [(r[0], r[1], f"debit {r[2]}, credit {r[3]}") for r in await session.execute(stmt)]


async def lines_missing_customer(session: AsyncSession) -> list[tuple[str, int, str]]:
    stmt = (select(JournalLine.entry_id, JournalLine.line_no, JournalLine.account_code)
            .join(Account, Account.code == JournalLine.account_code)
            .where(Account.requires_customer.is_(True), JournalLine.customer_id.is_(None)))
    return [(r[0], r[1], r[2]) for r in await session.execute(stmt)]


async def broken_reversal_links(session: AsyncSession) -> list[tuple[str, str]]:
    """(entry id, number) of entries whose reversal link does not point back at them."""
    other = aliased(JournalEntry)
    forward = (select(JournalEntry.id, JournalEntry.number)
               .join(other, other.id == JournalEntry.reversed_by_entry_id, isouter=True)
               .where(JournalEntry.reversed_by_entry_id.is_not(None),
                      or_(other.id.is_(None), other.reverses_entry_id.is_(None),
                          other.reverses_entry_id != JournalEntry.id)))
    backward = (select(JournalEntry.id, JournalEntry.number)
                .join(other, other.id == JournalEntry.reverses_entry_id, isouter=True)
                .where(JournalEntry.reverses_entry_id.is_not(None),
                       or_(other.id.is_(None), other.reversed_by_entry_id.is_(None),
                           other.reversed_by_entry_id != JournalEntry.id)))
    rows = list(await session.execute(forward)) + list(await session.execute(backward))
    return sorted({(r[0], r[1]) for r in rows}, key=lambda r: r[1])


async def journal_counts(session: AsyncSession) -> tuple[int, int, int, int]:
    """(entries, lines, Σ debit, Σ credit) over the whole journal."""
    entries = (await session.execute(select(func.count()).select_from(JournalEntry))).scalar_one()
    row = (await session.execute(select(
        func.count(), func.coalesce(func.sum(JournalLine.debit_minor), 0),
        func.coalesce(func.sum(JournalLine.credit_minor), 0)).select_from(JournalLine))).one()
    return int(entries), int(row[0]), int(row[1]), int(row[2])


async def control_totals(session: AsyncSession, *, receivables: str, unapplied_cash: str
                         ) -> dict[tuple[str, str], int]:
    """{(what, currency): total} in one statement, so one snapshot even under writes:
    `receivables` Σ debit − credit on that account, `outstanding` Σ the invoices' outstanding,
    `unapplied_cash` Σ credit − debit on that account, `unapplied` Σ the customers' unapplied
    cash."""
    def on_account(what: str, code: str, sign: int) -> Any:
        return (select(literal(what), JournalEntry.currency,
                       func.sum(sign * (JournalLine.debit_minor - JournalLine.credit_minor)))
                .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
                .where(JournalLine.account_code == code).group_by(JournalEntry.currency))
    stmt = union_all(
        on_account("receivables", receivables, 1),
        select(literal("outstanding"), Invoice.currency, func.sum(Invoice.outstanding_minor))
        .where(Invoice.outstanding_minor > 0).group_by(Invoice.currency),
        on_account("unapplied_cash", unapplied_cash, -1),
        select(literal("unapplied"), CustomerBalance.currency,
               func.sum(CustomerBalance.unapplied_minor)).group_by(CustomerBalance.currency))
    return {(what, currency): int(total) for what, currency, total in await session.execute(stmt)}


async def insert_rows(session: AsyncSession, model: type[Any], rows: list[dict[str, Any]]) -> None:
    """One multi-row INSERT of `rows` into the model's table (bulk postings, imports)."""
    if rows:
        await session.execute(insert(model.__table__), rows)


# ---------------------------------------------------------------- invoices


async def get_invoice(session: AsyncSession, invoice_id: str, *, for_update: bool = False
                      ) -> Invoice | None:
    """The invoice; `for_update` locks its row (PostgreSQL) and re-reads it."""
    if not for_update:
        return await session.get(Invoice, invoice_id)
    stmt = (select(Invoice).where(Invoice.id == invoice_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def lock_invoices(session: AsyncSession, invoice_ids: Iterable[str]) -> dict[str, Invoice]:
    """Lock and re-read the invoices, in id order so that two lockers never deadlock."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return {}
    stmt = (select(Invoice).where(Invoice.id.in_(ids)).order_by(Invoice.id).with_for_update()
            .execution_options(populate_existing=True))
    return {i.id: i for i in (await session.execute(stmt)).scalars()}


async def open_invoices_oldest_first(session: AsyncSession, *, customer_id: str, currency: str,
                                     limit: int, offset: int = 0) -> list[Invoice]:
    """The customer's open and partially paid invoices in `currency`, oldest due first, locked.

    The caller holds the customer's balance lock, so no other allocation for the customer can
    run between this read and its commit; the row locks are for the notes that touch one
    invoice.
    """
    stmt = (select(Invoice)
            .where(Invoice.customer_id == customer_id, Invoice.currency == currency,
                   Invoice.status.in_((InvoiceStatus.open, InvoiceStatus.partially_paid)),
                   Invoice.outstanding_minor > 0)
            .order_by(Invoice.due_date, Invoice.issued_at, Invoice.id).limit(limit).offset(offset)
            .with_for_update().execution_options(populate_existing=True))
    return list((await session.execute(stmt)).scalars())


async def invoice_currencies(session: AsyncSession, customer_id: str) -> set[str]:
    stmt = select(Invoice.currency).where(Invoice.customer_id == customer_id).distinct()
    return set((await session.execute(stmt)).scalars())


async def customer_has_salesperson(session: AsyncSession, customer_id: str,
                                   salesperson_id: str) -> bool:
    """Whether any invoice of the customer is the salesperson's (the sales row-level rule)."""
    stmt = select(exists().where(Invoice.customer_id == customer_id,
                                 Invoice.salesperson_id == salesperson_id))
    return bool((await session.execute(stmt)).scalar())


async def invoices_by_number(session: AsyncSession, numbers: Iterable[str]) -> dict[str, Invoice]:
    """The invoices with these numbers (an import's rows already in the ledger)."""
    wanted = sorted(set(numbers))
    found: dict[str, Invoice] = {}
    for start in range(0, len(wanted), 1000):  # bounded IN lists
        stmt = select(Invoice).where(Invoice.number.in_(wanted[start:start + 1000]))
        found |= {i.number: i for i in (await session.execute(stmt)).scalars()}
    return found


async def get_invoice_by_order(session: AsyncSession, order_id: str) -> Invoice | None:
    stmt = select(Invoice).where(Invoice.order_id == order_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_invoices(session: AsyncSession, *, limit: int, cursor: str | None,
                        customer_id: str | None, order_id: str | None,
                        salesperson_id: str | None, status: str | None,
                        due_from: date | None, due_to: date | None,
                        overdue: bool | None, today: date) -> Page[Invoice]:
    stmt = select(Invoice)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    if order_id is not None:
        stmt = stmt.where(Invoice.order_id == order_id)
    if salesperson_id is not None:
        stmt = stmt.where(Invoice.salesperson_id == salesperson_id)
    if status == InvoiceStatusFilter.disputed:
        stmt = stmt.where(open_dispute_exists(Invoice.id))
    elif status == InvoiceStatusFilter.overdue:
        stmt = stmt.where(Invoice.due_date < today, Invoice.outstanding_minor > 0)
    elif status is not None:
        stmt = stmt.where(Invoice.status == status)
    if due_from is not None:
        stmt = stmt.where(Invoice.due_date >= due_from)
    if due_to is not None:
        stmt = stmt.where(Invoice.due_date <= due_to)
    if overdue is not None:
        is_overdue = and_(Invoice.due_date < today, Invoice.outstanding_minor > 0)
        stmt = stmt.where(is_overdue if overdue else ~is_overdue)
    return await keyset_page(session, stmt, Keyset(Invoice.created_at, Invoice.id),
                             limit=limit, cursor=cursor)


# ---------------------------------------------------------------- customer balances


async def lock_customer_balance(session: AsyncSession, *, customer_id: str, currency: str,
                                now: datetime) -> CustomerBalance:
    """The customer's balance row in `currency`, created on first use, locked until commit.

    Every movement of a customer's money takes this lock first, so allocations, notes and
    reversals of one customer run one after the other (on SQLite, BEGIN IMMEDIATE already
    serializes every writer).
    """
    insert = dialect_insert(session)
    await session.execute(
        insert(CustomerBalance.__table__)
        .values(customer_id=customer_id, currency=currency, unapplied_minor=0, version=1,
                updated_at=now)
        .on_conflict_do_nothing(index_elements=["customer_id", "currency"]))
    stmt = (select(CustomerBalance)
            .where(CustomerBalance.customer_id == customer_id,
                   CustomerBalance.currency == currency)
            .with_for_update().execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one()


@dataclass(frozen=True)
class InvoiceTotals:
    """The aggregates of a customer's invoices in one currency that credit's exposure reads."""

    open_minor: int
    open_count: int
    overdue_minor: int
    oldest_overdue_due: date | None
    paid_on_time: int
    paid_late: int
    days_late_sum: int


def _days_late(session: AsyncSession) -> Any:
    """Whole days from an invoice's due date to the UTC day it was paid (negative: early)."""
    if session.get_bind().dialect.name == "sqlite":  # stored as naive UTC text
        return cast(func.julianday(func.date(Invoice.paid_at)) - func.julianday(Invoice.due_date),
                    Integer)
    return cast(func.timezone("UTC", Invoice.paid_at), Date) - Invoice.due_date


async def invoice_totals(session: AsyncSession, customer_id: str, currency: str,
                         today: date) -> InvoiceTotals:
    """One aggregate query over the customer's invoices in `currency` (none loaded as objects:
    a customer's history grows with every order, the answer does not)."""
    owing = Invoice.outstanding_minor > 0
    overdue = and_(owing, Invoice.due_date < today)
    paid = and_(Invoice.status == InvoiceStatus.paid, Invoice.paid_minor > 0,
                Invoice.paid_at.is_not(None))
    days = _days_late(session)

    def total(condition: Any, value: Any = 1) -> Any:
        return func.coalesce(func.sum(case((condition, value), else_=0)), 0)

    row = (await session.execute(select(
        total(owing, Invoice.outstanding_minor), total(owing),
        total(overdue, Invoice.outstanding_minor),
        func.min(case((overdue, Invoice.due_date))),
        total(and_(paid, days <= 0)), total(and_(paid, days > 0)),
        total(and_(paid, days > 0), days),
    ).where(Invoice.customer_id == customer_id, Invoice.currency == currency))).one()
    oldest = row[3]
    if isinstance(oldest, str):  # SQLite hands MIN() of a date back as its text
        oldest = date.fromisoformat(oldest)
    return InvoiceTotals(int(row[0]), int(row[1]), int(row[2]), oldest, int(row[4]), int(row[5]),
                         int(row[6]))


async def customer_balances(session: AsyncSession, customer_id: str) -> list[CustomerBalance]:
    stmt = (select(CustomerBalance).where(CustomerBalance.customer_id == customer_id)
            .order_by(CustomerBalance.currency))
    return list((await session.execute(stmt)).scalars())


# ---------------------------------------------------------------- payments


async def get_payment(session: AsyncSession, payment_id: str, *, for_update: bool = False
                      ) -> Payment | None:
    if not for_update:
        return await session.get(Payment, payment_id)
    stmt = (select(Payment).where(Payment.id == payment_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def payments_with_unapplied(session: AsyncSession, *, customer_id: str,
                                  currency: str) -> list[Payment]:
    """Posted payments of the customer with unapplied cash left, oldest received first, locked."""
    stmt = (select(Payment)
            .where(Payment.customer_id == customer_id, Payment.currency == currency,
                   Payment.status == PaymentStatus.posted, Payment.unapplied_remaining_minor > 0)
            .order_by(Payment.received_at, Payment.created_at, Payment.id)
            .with_for_update().execution_options(populate_existing=True))
    return list((await session.execute(stmt)).scalars())


async def paid_by_payment(session: AsyncSession, invoice_id: str) -> list[tuple[Payment, int]]:
    """The posted payments that paid the invoice and what each paid there, net of money given
    back, newest received first; each payment locked."""
    # grouped in a subquery: PostgreSQL refuses FOR UPDATE together with GROUP BY
    net = (select(PaymentAllocation.payment_id,
                  func.sum(PaymentAllocation.amount_minor).label("net"))
           .where(PaymentAllocation.invoice_id == invoice_id)
           .group_by(PaymentAllocation.payment_id).subquery())
    stmt = (select(Payment, net.c.net).join(net, net.c.payment_id == Payment.id)
            .where(Payment.status == PaymentStatus.posted, net.c.net > 0)
            .order_by(Payment.received_at.desc(), Payment.created_at.desc(), Payment.id.desc())
            .with_for_update(of=Payment).execution_options(populate_existing=True))
    return [(payment, int(amount)) for payment, amount in await session.execute(stmt)]


async def allocations_of(session: AsyncSession, payment_ids: Iterable[str]
                         ) -> dict[str, list[PaymentAllocation]]:
    ids = list(payment_ids)
    result: dict[str, list[PaymentAllocation]] = {i: [] for i in ids}
    if not ids:
        return result
    rows = await session.execute(select(PaymentAllocation)
                                 .where(PaymentAllocation.payment_id.in_(ids))
                                 .order_by(PaymentAllocation.payment_id, PaymentAllocation.id))
    for allocation in rows.scalars():
        result[allocation.payment_id].append(allocation)
    return result


async def list_payments(session: AsyncSession, *, limit: int, cursor: str | None,
                        customer_id: str | None, currency: str | None, status: str | None,
                        method: str | None, received_from: datetime | None,
                        received_before: datetime | None) -> Page[Payment]:
    stmt = select(Payment)
    if customer_id is not None:
        stmt = stmt.where(Payment.customer_id == customer_id)
    if currency is not None:
        stmt = stmt.where(Payment.currency == currency)
    if status is not None:
        stmt = stmt.where(Payment.status == status)
    if method is not None:
        stmt = stmt.where(Payment.method == method)
    if received_from is not None:
        stmt = stmt.where(Payment.received_at >= received_from)
    if received_before is not None:
        stmt = stmt.where(Payment.received_at < received_before)
    return await keyset_page(session, stmt, Keyset(Payment.created_at, Payment.id),
                             limit=limit, cursor=cursor)


async def customer_has_payments(session: AsyncSession, customer_id: str) -> bool:
    stmt = select(exists().where(Payment.customer_id == customer_id))
    return bool((await session.execute(stmt)).scalar())


# ---------------------------------------------------------------- credit and debit notes


async def get_credit_note(session: AsyncSession, note_id: str) -> CreditNote | None:
    return await session.get(CreditNote, note_id)


async def get_debit_note(session: AsyncSession, note_id: str) -> DebitNote | None:
    return await session.get(DebitNote, note_id)


async def list_notes(session: AsyncSession, model: type[CreditNote] | type[DebitNote], *,
                     limit: int, cursor: str | None, invoice_id: str | None,
                     customer_id: str | None) -> Page[CreditNote] | Page[DebitNote]:
    stmt = select(model)
    if invoice_id is not None:
        stmt = stmt.where(model.invoice_id == invoice_id)
    if customer_id is not None:
        stmt = stmt.where(model.customer_id == customer_id)
    return await keyset_page(session, stmt, Keyset(model.created_at, model.id),
                             limit=limit, cursor=cursor)


async def document_numbers(session: AsyncSession, model: type, ids: Iterable[str]) -> dict[str, str]:
    """Human numbers of invoices, payments or notes by id."""
    wanted = set(ids)
    if not wanted:
        return {}
    rows = await session.execute(select(model.id, model.number).where(model.id.in_(wanted)))
    return {r[0]: r[1] for r in rows}


# ---------------------------------------------------------------- customer sub-ledger


async def subledger_currencies(session: AsyncSession, customer_id: str, account_code: str) -> set[str]:
    stmt = (select(JournalEntry.currency).distinct()
            .join(JournalLine, JournalLine.entry_id == JournalEntry.id)
            .where(JournalLine.account_code == account_code,
                   JournalLine.customer_id == customer_id))
    return set((await session.execute(stmt)).scalars())


async def subledger_balance(session: AsyncSession, *, customer_id: str, account_code: str,
                            currency: str, before: datetime | None = None) -> int:
    """Σ debit − Σ credit of the customer's lines on the account, posted before `before`."""
    stmt = (select(func.coalesce(func.sum(JournalLine.debit_minor - JournalLine.credit_minor), 0))
            .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
            .where(JournalLine.account_code == account_code,
                   JournalLine.customer_id == customer_id, JournalEntry.currency == currency))
    if before is not None:
        stmt = stmt.where(JournalEntry.posted_at < before)
    return int((await session.execute(stmt)).scalar_one())


@dataclass(frozen=True)
class SubledgerLine:
    entry_id: str
    entry_number: str
    kind: str
    memo: str
    posted_at: datetime
    source_type: str | None
    source_id: str | None
    debit_minor: int
    credit_minor: int


async def subledger_lines(session: AsyncSession, *, customer_id: str, account_code: str,
                          currency: str, posted_from: datetime,
                          posted_before: datetime) -> list[SubledgerLine]:
    """The customer's lines on the account in a period, in posting order."""
    stmt = (select(JournalEntry.id, JournalEntry.number, JournalEntry.kind, JournalEntry.memo,
                   JournalEntry.posted_at, JournalEntry.source_type, JournalEntry.source_id,
                   JournalLine.debit_minor, JournalLine.credit_minor)
            .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
            .where(JournalLine.account_code == account_code,
                   JournalLine.customer_id == customer_id, JournalEntry.currency == currency,
                   JournalEntry.posted_at >= posted_from, JournalEntry.posted_at < posted_before)
            .order_by(JournalEntry.posted_at, JournalEntry.number, JournalLine.line_no))
    return [SubledgerLine(*row) for row in await session.execute(stmt)]


# ---------------------------------------------------------------- disputes (as the core reads them)
# Collection work opens and resolves disputes; its other dispute queries are in
# `collection/repository.py`.


def open_dispute_exists(invoice_id_column: Any) -> Any:
    """SQL: the invoice in `invoice_id_column` has an open dispute."""
    return exists().where(InvoiceDispute.invoice_id == invoice_id_column,
                          InvoiceDispute.status == DisputeStatus.open)


async def disputed_invoice_ids(session: AsyncSession, invoice_ids: Iterable[str]) -> set[str]:
    """Which of the invoices have an open dispute."""
    ids = list(set(invoice_ids))
    if not ids:
        return set()
    stmt = select(InvoiceDispute.invoice_id).where(InvoiceDispute.invoice_id.in_(ids),
                                                   InvoiceDispute.status == DisputeStatus.open)
    return set((await session.execute(stmt)).scalars())


async def disputes_open_at(session: AsyncSession, invoice_ids: Iterable[str],
                           at: datetime) -> dict[str, InvoiceDispute]:
    """The dispute open on each invoice at instant `at` (opened before it, not resolved by then)."""
    ids = list(set(invoice_ids))
    if not ids:
        return {}
    stmt = (select(InvoiceDispute)
            .where(InvoiceDispute.invoice_id.in_(ids), InvoiceDispute.opened_at < at,
                   or_(InvoiceDispute.resolved_at.is_(None), InvoiceDispute.resolved_at >= at))
            .order_by(InvoiceDispute.opened_at))
    return {d.invoice_id: d for d in (await session.execute(stmt)).scalars()}
