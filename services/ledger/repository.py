"""Every query of the ledger service."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.ledger.models import Account, Invoice, JournalEntry, JournalLine, counters
from shared.pagination import after_keyset

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


async def list_entries(session: AsyncSession, *, limit: int, after: tuple[datetime, str] | None,
                       account_code: str | None, customer_id: str | None,
                       posted_from: datetime | None, posted_before: datetime | None,
                       kind: str | None, source_type: str | None,
                       source_id: str | None) -> list[JournalEntry]:
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
    stmt = stmt.where(after_keyset(JournalEntry.posted_at, JournalEntry.id, after))
    stmt = stmt.order_by(JournalEntry.posted_at, JournalEntry.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


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


# ---------------------------------------------------------------- invoices


async def get_invoice(session: AsyncSession, invoice_id: str) -> Invoice | None:
    return await session.get(Invoice, invoice_id)


async def get_invoice_by_order(session: AsyncSession, order_id: str) -> Invoice | None:
    stmt = select(Invoice).where(Invoice.order_id == order_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_invoices(session: AsyncSession, *, limit: int, after: tuple[datetime, str] | None,
                        customer_id: str | None, order_id: str | None,
                        salesperson_id: str | None, status: str | None,
                        due_from: date | None, due_to: date | None,
                        overdue: bool | None, today: date) -> list[Invoice]:
    stmt = select(Invoice)
    if customer_id is not None:
        stmt = stmt.where(Invoice.customer_id == customer_id)
    if order_id is not None:
        stmt = stmt.where(Invoice.order_id == order_id)
    if salesperson_id is not None:
        stmt = stmt.where(Invoice.salesperson_id == salesperson_id)
    if status is not None:
        stmt = stmt.where(Invoice.status == status)
    if due_from is not None:
        stmt = stmt.where(Invoice.due_date >= due_from)
    if due_to is not None:
        stmt = stmt.where(Invoice.due_date <= due_to)
    if overdue is not None:
        is_overdue = and_(Invoice.due_date < today, Invoice.outstanding_minor > 0)
        stmt = stmt.where(is_overdue if overdue else ~is_overdue)
    stmt = stmt.where(after_keyset(Invoice.created_at, Invoice.id, after))
    stmt = stmt.order_by(Invoice.created_at, Invoice.id).limit(limit)
    return list((await session.execute(stmt)).scalars())
