"""Double entry: the one function every posting goes through.

`post_entry` is used by manual entries, reversals, invoices and (later) payments, credit and
debit notes and write-offs. It refuses anything that would break the journal's invariants —
Σ debit = Σ credit > 0, every line exactly one non-negative side, one currency per entry, known
accounts, a customer on sub-ledger accounts — and writes the entry, its lines and a
`journal_entry.posted` event in the caller's transaction. Entries are never changed
afterwards; a correction is a reversal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import repository
from services.ledger.chart import SYSTEM_ACCOUNTS
from services.ledger.errors import ChartNotSeeded, InvalidPosting
from services.ledger.models import (
    Account,
    Invoice,
    InvoiceStatus,
    JournalEntry,
    JournalLine,
    counters,
    new_id,
)
from shared.clock import Clock
from shared.events import Event, new_event
from shared.money import CURRENCIES, MAX_MINOR
from shared.numbering import next_number, next_numbers
from shared.outbox import Outbox

MAX_LINES = 500
SYSTEM_CODES = frozenset(spec.code for spec in SYSTEM_ACCOUNTS)


@dataclass(frozen=True)
class Line:
    """One line to post: a debit or a credit, in minor units, on one account."""

    account_code: str
    debit_minor: int = 0
    credit_minor: int = 0
    customer_id: str | None = None


def debit(account_code: str, amount_minor: int, customer_id: str | None = None) -> Line:
    return Line(account_code, debit_minor=amount_minor, customer_id=customer_id)


def credit(account_code: str, amount_minor: int, customer_id: str | None = None) -> Line:
    return Line(account_code, credit_minor=amount_minor, customer_id=customer_id)


@dataclass
class PostedEntry:
    """A journal entry with its lines, as stored."""

    entry: JournalEntry
    lines: list[JournalLine]

    @property
    def total_minor(self) -> int:
        return sum(line.debit_minor for line in self.lines)


def check_lines(lines: Sequence[Line], currency: str) -> list[dict[str, str]]:
    """Every reason the lines cannot be posted as one entry (empty when they can)."""
    errors: list[dict[str, str]] = []
    if currency not in CURRENCIES:
        errors.append({"field": "currency", "message": f"unknown ISO 4217 currency {currency!r}"})
    if len(lines) < 2:
        errors.append({"field": "lines", "message": "an entry needs at least two lines"})
    if len(lines) > MAX_LINES:
        errors.append({"field": "lines", "message": f"an entry has at most {MAX_LINES} lines"})
    for i, line in enumerate(lines):
        field = f"lines[{i}]"
        if line.debit_minor < 0 or line.credit_minor < 0:
            errors.append({"field": field, "message": "amounts must not be negative"})
        elif line.debit_minor > 0 and line.credit_minor > 0:
            errors.append({"field": field,
                           "message": "a line is either a debit or a credit, not both"})
        elif line.debit_minor == 0 and line.credit_minor == 0:
            errors.append({"field": field, "message": "a line needs a non-zero debit or credit"})
        elif max(line.debit_minor, line.credit_minor) > MAX_MINOR:
            errors.append({"field": field, "message": f"amounts are at most {MAX_MINOR}"})
    debits = sum(line.debit_minor for line in lines)
    credits = sum(line.credit_minor for line in lines)
    if debits != credits:
        errors.append({"field": "lines", "message": f"debits {debits} ≠ credits {credits}"})
    return errors


async def check_accounts(session: AsyncSession, lines: Sequence[Line],
                         currency: str) -> list[dict[str, str]]:
    """Every line's account exists, takes the entry's currency and gets a customer if it needs one."""
    accounts = await repository.accounts_by_code(session, (line.account_code for line in lines))
    return account_errors(accounts, lines, currency)


def account_errors(accounts: Mapping[str, Account], lines: Sequence[Line],
                   currency: str) -> list[dict[str, str]]:
    """`check_accounts` on accounts already loaded (bulk postings load them once)."""
    errors: list[dict[str, str]] = []
    for i, line in enumerate(lines):
        account = accounts.get(line.account_code)
        if account is None:
            if line.account_code in SYSTEM_CODES:  # ours to seed, not the caller's mistake
                raise ChartNotSeeded(line.account_code)
            errors.append({"field": f"lines[{i}].account_code",
                           "message": f"unknown account {line.account_code}"})
            continue
        if account.currency is not None and account.currency != currency:
            errors.append({"field": f"lines[{i}].account_code",
                           "message": f"account {account.code} is kept in {account.currency}, "
                                      f"not {currency}"})
        if account.requires_customer and not line.customer_id:
            errors.append({"field": f"lines[{i}].customer_id",
                           "message": f"account {account.code} ({account.name}) needs a customer_id"})
    return errors


async def post_entry(session: AsyncSession, *, outbox: Outbox, clock: Clock, lines: Sequence[Line],
                     currency: str, memo: str, kind: str, created_by: str,
                     posted_at: datetime | None = None, source_type: str | None = None,
                     source_id: str | None = None, reverses_entry_id: str | None = None,
                     refused: Sequence[dict[str, str]] = ()) -> PostedEntry:
    """Validate and write one balanced journal entry and its `journal_entry.posted` event.

    `refused`: what the caller's own rules found wrong, reported with these checks' findings."""
    errors = [*refused, *check_lines(lines, currency)]
    errors += await check_accounts(session, lines, currency)
    if errors:
        raise InvalidPosting(errors)
    now = clock.now()
    entry = JournalEntry(
        number=await next_number(session, counters, "journal_entry", "JE"),
        kind=kind, memo=memo, currency=currency, posted_at=(posted_at or now).astimezone(UTC),
        source_type=source_type, source_id=source_id, reverses_entry_id=reverses_entry_id,
        created_by=created_by, created_at=now)
    session.add(entry)
    await session.flush()
    stored = [JournalLine(entry_id=entry.id, line_no=i + 1, account_code=line.account_code,
                          customer_id=line.customer_id, debit_minor=line.debit_minor,
                          credit_minor=line.credit_minor)
              for i, line in enumerate(lines)]
    session.add_all(stored)
    await session.flush()
    posted = PostedEntry(entry, stored)
    await outbox.enqueue(session, _posted_event(clock, entry, posted.total_minor))
    return posted


def _posted_event(clock: Clock, entry: JournalEntry, total_minor: int) -> Event:
    return new_event(
        clock, type="journal_entry.posted", source="ledger", subject=entry.id, data={
            "entry_id": entry.id, "number": entry.number, "kind": entry.kind,
            "currency": entry.currency, "total_minor": total_minor,
            "posted_at": entry.posted_at.isoformat(), "source_type": entry.source_type,
            "source_id": entry.source_id, "reverses_entry_id": entry.reverses_entry_id})


@dataclass(frozen=True)
class NewEntry:
    """One entry of a bulk posting (`post_entries`)."""

    lines: Sequence[Line]
    currency: str
    memo: str
    kind: str
    posted_at: datetime
    source_type: str | None = None
    source_id: str | None = None


async def post_entries(session: AsyncSession, *, outbox: Outbox, clock: Clock,
                       entries: Sequence[NewEntry], created_by: str) -> list[JournalEntry]:
    """`post_entry` for many entries at once (imports): the same checks, the accounts read
    once, and entries, lines and events each written as one multi-row INSERT.

    Returns the entries (not attached to the session), in the order given. The first entry
    that cannot be posted raises `InvalidPosting` naming it, and nothing is written."""
    accounts = await repository.accounts_by_code(
        session, {line.account_code for e in entries for line in e.lines})
    for n, e in enumerate(entries):
        errors = check_lines(e.lines, e.currency) + account_errors(accounts, e.lines, e.currency)
        if errors:
            raise InvalidPosting([{**err, "field": f"entries[{n}].{err['field']}"}
                                  for err in errors])
    now = clock.now()
    numbers = await next_numbers(session, counters, "journal_entry", "JE", len(entries))
    stored = [JournalEntry(id=new_id(), number=number, kind=e.kind, memo=e.memo,
                           currency=e.currency, posted_at=e.posted_at.astimezone(UTC),
                           source_type=e.source_type, source_id=e.source_id,
                           created_by=created_by, created_at=now)
              for e, number in zip(entries, numbers, strict=True)]
    await repository.insert_rows(session, JournalEntry, [
        {column: getattr(entry, column) for column in ENTRY_COLUMNS} for entry in stored])
    await repository.insert_rows(session, JournalLine, [
        {"entry_id": entry.id, "line_no": i + 1, "account_code": line.account_code,
         "customer_id": line.customer_id, "debit_minor": line.debit_minor,
         "credit_minor": line.credit_minor}
        for entry, e in zip(stored, entries, strict=True) for i, line in enumerate(e.lines)])
    await outbox.enqueue_many(session, [
        _posted_event(clock, entry, sum(line.debit_minor for line in e.lines))
        for entry, e in zip(stored, entries, strict=True)])
    return stored


ENTRY_COLUMNS = ("id", "number", "kind", "memo", "currency", "posted_at", "source_type",
                 "source_id", "reverses_entry_id", "reversed_by_entry_id", "created_by",
                 "created_at")


# ---------------------------------------------------------------- what a posting does to an invoice


def settle_status(invoice: Invoice, *, closed_at: datetime, by_write_off: bool = False) -> bool:
    """Set the status from the money; True when this change brought outstanding to 0 and paid it.

    The only writer of `invoice.status` once issued, called after every change of its money.
    Paid at 0 (`paid_at` the later of `closed_at` and the issue time), open while nothing
    has been taken off the total, partially paid in between.
    A write-off (`by_write_off`) that brings it to 0 marks it written off, `paid_at` unset: no
    money arrived. A written-off invoice keeps that status whatever its money does after.
    """
    was_paid = invoice.status == InvoiceStatus.paid
    if invoice.outstanding_minor == 0:
        if by_write_off:
            invoice.status = InvoiceStatus.written_off
        elif invoice.status != InvoiceStatus.written_off:
            invoice.status = InvoiceStatus.paid
            # Cash that came before the invoice pays it when it is issued, never earlier.
            invoice.paid_at = invoice.paid_at or max(closed_at, invoice.issued_at)
        return not was_paid and invoice.status == InvoiceStatus.paid
    invoice.paid_at = None
    if invoice.status in (InvoiceStatus.open, InvoiceStatus.partially_paid, InvoiceStatus.paid):
        invoice.status = (InvoiceStatus.open if invoice.outstanding_minor == invoice.total_minor
                          else InvoiceStatus.partially_paid)
    return False
