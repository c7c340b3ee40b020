"""Use cases of the ledger service: lock or compare-and-set, check, post, outbox event."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart, repository
from services.ledger.errors import (
    AlreadyReversed,
    EntryNotFound,
    InvalidPosting,
    InvoiceConflict,
    InvoiceNotFound,
    ReversalOfReversal,
)
from services.ledger.models import (
    Account,
    EntryKind,
    Invoice,
    InvoiceStatus,
    JournalEntry,
    NormalSide,
    counters,
)
from services.ledger.posting import Line, PostedEntry, credit, debit, post_entry
from services.ledger.schemas import InvoiceCreate, JournalEntryCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.db import Database
from shared.events import new_event
from shared.numbering import next_number
from shared.outbox import Outbox

log = logging.getLogger("o2c.ledger")


def start_of_day(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def end_of_day(day: date) -> datetime:
    """The first instant after `day` (UTC): entries posted before it count as of `day`."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC)


# ---------------------------------------------------------------- chart of accounts


async def seed_chart(db: Database, clock: Clock) -> list[str]:
    """Insert the system accounts and document counters that are missing; returns the codes added."""
    async with db.session() as session, session.begin():
        have = await repository.existing_account_codes(session)
        missing = [spec for spec in chart.SYSTEM_ACCOUNTS if spec.code not in have]
        now = clock.now()
        session.add_all(Account(code=spec.code, name=spec.name, kind=spec.kind,
                                normal_side=spec.normal_side,
                                requires_customer=spec.requires_customer, system=True,
                                created_at=now) for spec in missing)
        for name in chart.COUNTERS.keys() - await repository.existing_counters(session):
            await repository.add_counter(session, name)
    return [spec.code for spec in missing]


async def ensure_chart(db: Database, clock: Clock) -> None:
    """Start-up hook: seed the chart; another replica seeding at the same moment is fine.

    A database without the ledger's tables (not migrated yet) is logged, not fatal: `/ready`
    reports it, and the next start after `o2c migrate ledger` seeds the chart.
    """
    for attempt in range(3):
        try:
            added = await seed_chart(db, clock)
        except IntegrityError:
            if attempt == 2:
                raise
            continue
        except DBAPIError:
            log.error("ledger accounts not seeded: is the database migrated? "
                      "Run `o2c migrate ledger` and restart.", exc_info=True)
            return
        if added:
            log.info("seeded ledger accounts %s", ", ".join(added))
        return


# ---------------------------------------------------------------- journal


async def get_entry(session: AsyncSession, entry_id: str) -> PostedEntry:
    """The entry with its lines, or 404."""
    entry = await repository.get_entry(session, entry_id)
    if entry is None:
        raise EntryNotFound(entry_id)
    return PostedEntry(entry, (await repository.lines_of(session, [entry.id]))[entry.id])


async def with_lines(session: AsyncSession, entries: list[JournalEntry]) -> list[PostedEntry]:
    """The entries with their lines, in one query for all of them."""
    lines = await repository.lines_of(session, (e.id for e in entries))
    return [PostedEntry(e, lines[e.id]) for e in entries]


async def post_manual_entry(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                            principal: Principal, data: JournalEntryCreate) -> PostedEntry:
    """A finance user's own journal entry; may be back-dated, never future-dated."""
    if data.posted_at is not None and data.posted_at > clock.now():
        raise InvalidPosting([{"field": "posted_at", "message": "must not be in the future"}])
    return await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.manual, memo=data.memo,
        currency=data.currency, posted_at=data.posted_at, created_by=principal.name,
        lines=[Line(line.account_code, line.debit_minor, line.credit_minor, line.customer_id)
               for line in data.lines])


async def reverse_entry(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                        principal: Principal, entry_id: str, reason: str) -> PostedEntry:
    """Post the mirror image of an entry and link both; an entry is reversed at most once."""
    original = await repository.get_entry(session, entry_id, for_update=True)
    if original is None:
        raise EntryNotFound(entry_id)
    if original.reversed_by_entry_id is not None:
        raise AlreadyReversed(original.id, original.reversed_by_entry_id)
    if original.reverses_entry_id is not None:
        raise ReversalOfReversal(original.id)
    lines = (await repository.lines_of(session, [original.id]))[original.id]
    reversal = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.reversal,
        memo=f"Reversal of {original.number}: {reason}"[:500], currency=original.currency,
        created_by=principal.name, source_type=original.source_type,
        source_id=original.source_id, reverses_entry_id=original.id,
        lines=[Line(line.account_code, debit_minor=line.credit_minor,
                    credit_minor=line.debit_minor, customer_id=line.customer_id)
               for line in lines])
    if not await repository.mark_reversed(session, original.id, reversal.entry.id):
        raise AlreadyReversed(original.id, None)
    await session.refresh(original)
    return reversal


# ---------------------------------------------------------------- trial balance and checks


@dataclass
class TrialBalanceRow:
    code: str
    name: str
    kind: str
    normal_side: str
    currency: str
    debit_minor: int
    credit_minor: int
    balance_minor: int


@dataclass
class TrialBalance:
    as_of: date
    currency: str | None
    accounts: list[TrialBalanceRow]
    total_debit_minor: int
    total_credit_minor: int


async def trial_balance(session: AsyncSession, *, as_of: date, currency: str | None) -> TrialBalance:
    """Σ debit, Σ credit and the balance on its normal side, per account, up to the end of `as_of`."""
    rows = []
    for t in await repository.account_totals(session, before=end_of_day(as_of), currency=currency):
        balance = (t.debit_minor - t.credit_minor if t.normal_side == NormalSide.debit
                   else t.credit_minor - t.debit_minor)
        rows.append(TrialBalanceRow(t.code, t.name, t.kind, t.normal_side, t.currency,
                                    t.debit_minor, t.credit_minor, balance))
    return TrialBalance(as_of=as_of, currency=currency, accounts=rows,
                        total_debit_minor=sum(r.debit_minor for r in rows),
                        total_credit_minor=sum(r.credit_minor for r in rows))


@dataclass
class LedgerCheck:
    checked_at: datetime
    entries_checked: int
    lines_checked: int
    total_debit_minor: int
    total_credit_minor: int
    problems: list[dict[str, str | None]] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.problems


async def check_ledger(session: AsyncSession, clock: Clock) -> LedgerCheck:
    """Recompute the journal from its lines and report every broken invariant."""
    entries, lines, debits, credits = await repository.journal_counts(session)
    check = LedgerCheck(clock.now(), entries, lines, debits, credits)
    for entry_id, number, d, c in await repository.unbalanced_entries(session):
        check.problems.append({"code": "unbalanced_entry", "entry_id": entry_id,
                               "detail": f"{number}: debits {d} ≠ credits {c}"
                               if d != c else f"{number} has no amounts"})
    for entry_id, line_no, why in await repository.malformed_lines(session):
        check.problems.append({"code": "malformed_line", "entry_id": entry_id,
                               "detail": f"line {line_no}: {why}"})
    for entry_id, line_no, code in await repository.lines_missing_customer(session):
        check.problems.append({"code": "missing_customer", "entry_id": entry_id,
                               "detail": f"line {line_no} on account {code} has no customer"})
    for entry_id, number in await repository.broken_reversal_links(session):
        check.problems.append({"code": "broken_reversal_link", "entry_id": entry_id,
                               "detail": f"{number}: reversal links do not point at each other"})
    if debits != credits:
        check.problems.append({"code": "journal_unbalanced", "entry_id": None,
                               "detail": f"journal debits {debits} ≠ credits {credits}"})
    return check


# ---------------------------------------------------------------- invoices


async def get_visible_invoice(session: AsyncSession, principal: Principal,
                              invoice_id: str) -> Invoice:
    """The invoice, or 404 when it does not exist or belongs to another salesperson."""
    invoice = await repository.get_invoice(session, invoice_id)
    if invoice is None or not principal.can_see(invoice.salesperson_id):
        raise InvoiceNotFound(invoice_id)
    return invoice


def _differences(invoice: Invoice, data: InvoiceCreate) -> list[str]:
    wanted = {"customer_id": data.customer_id, "salesperson_id": data.salesperson_id,
              "currency": data.currency, "amount_minor": data.amount_minor,
              "due_date": data.due_date}
    return [name for name, value in wanted.items() if getattr(invoice, name) != value]


def _same_invoice(invoice: Invoice, data: InvoiceCreate) -> Invoice:
    diff = _differences(invoice, data)
    if diff:
        raise InvoiceConflict(data.order_id, invoice.id, diff)
    return invoice


async def issue_invoice(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                        principal: Principal, data: InvoiceCreate) -> tuple[Invoice, bool]:
    """Issue the order's invoice (Dr receivables / Cr revenue); returns (invoice, created).

    Idempotent per order: the same order and terms give back the existing invoice; other
    terms for an invoiced order are a conflict.
    """
    existing = await repository.get_invoice_by_order(session, data.order_id)
    if existing is not None:
        return _same_invoice(existing, data), False
    now = clock.now()
    issued_at = (data.issued_at or now).astimezone(UTC)
    if data.due_date < issued_at.date():
        raise InvalidPosting([{"field": "due_date", "message": "must not be before issued_at"}])
    try:
        async with session.begin_nested():
            invoice = Invoice(
                number=await next_number(session, counters, "invoice", "INV"),
                order_id=data.order_id, customer_id=data.customer_id,
                salesperson_id=data.salesperson_id, currency=data.currency,
                amount_minor=data.amount_minor, outstanding_minor=data.amount_minor,
                status=InvoiceStatus.open, issued_at=issued_at, due_date=data.due_date,
                created_at=now, updated_at=now)
            session.add(invoice)
            await session.flush()
    except IntegrityError:  # a concurrent request invoiced the order first
        existing = await repository.get_invoice_by_order(session, data.order_id)
        if existing is None:
            raise
        return _same_invoice(existing, data), False
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.invoice,
        memo=f"Invoice {invoice.number} for order {data.order_id}", currency=data.currency,
        posted_at=issued_at, created_by=principal.name, source_type="invoice",
        source_id=invoice.id,
        lines=[debit(chart.RECEIVABLES, data.amount_minor, data.customer_id),
               credit(chart.REVENUE, data.amount_minor)])
    invoice.journal_entry_id = posted.entry.id
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="invoice.issued", source="ledger", subject=invoice.id, data={
            "invoice_id": invoice.id, "number": invoice.number, "order_id": invoice.order_id,
            "customer_id": invoice.customer_id, "salesperson_id": invoice.salesperson_id,
            "currency": invoice.currency, "amount_minor": invoice.amount_minor,
            "outstanding_minor": invoice.outstanding_minor,
            "issued_at": invoice.issued_at.isoformat(),
            "due_date": invoice.due_date.isoformat()}))
    return invoice, True
