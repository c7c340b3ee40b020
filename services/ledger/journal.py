"""The journal: manual entries and their reversals, the trial balance and the ledger's own check."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart, repository
from services.ledger.dates import end_of_day
from services.ledger.errors import (
    AlreadyReversed,
    DocumentEntry,
    EntryNotFound,
    ReversalOfReversal,
)
from services.ledger.models import EntryKind, JournalEntry, NormalSide
from services.ledger.posting import Line, PostedEntry, post_entry
from services.ledger.schemas import JournalEntryCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.outbox import Outbox

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
    """A finance user's own journal entry; may be back-dated, never future-dated, and never on a
    control account (1100, 2100): their documents alone post there."""
    errors = [{"field": f"lines[{i}].account_code", "message": CONTROL_DOCUMENTS[line.account_code]}
              for i, line in enumerate(data.lines) if line.account_code in chart.CONTROL_ACCOUNTS]
    if data.posted_at is not None and data.posted_at > clock.now():
        errors.append({"field": "posted_at", "message": "must not be in the future"})
    return await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.manual, memo=data.memo, refused=errors,
        currency=data.currency, posted_at=data.posted_at, created_by=principal.name,
        lines=[Line(line.account_code, line.debit_minor, line.credit_minor, line.customer_id)
               for line in data.lines])


CONTROL_DOCUMENTS = {
    chart.RECEIVABLES: "1100 is a control account: only documents post to it, so that the aging "
                       "always equals it. Use an invoice, a credit note (POST /v1/credit-notes), "
                       "a debit note, a payment or a write-off; opening balances are imported "
                       "(POST /v1/invoice-imports)",
    chart.UNAPPLIED_CASH: "2100 is a control account: only documents post to it, so that the "
                          "customers' unapplied cash always equals it. Use a payment "
                          "(POST /v1/payments), an allocation of unapplied cash or a refund "
                          "(POST /v1/refunds)",
}

DOCUMENT_CORRECTIONS = {
    EntryKind.invoice: "issue a credit note (POST /v1/credit-notes) to reduce it",
    EntryKind.payment: "reverse the payment (POST /v1/payments/{id}/reverse)",
    EntryKind.credit_note: "issue a debit note to undo a credit note",
    EntryKind.debit_note: "issue a credit note to undo a debit note",
    EntryKind.refund: "reverse the refund (POST /v1/refunds/{id}/reverse)",
}


async def reverse_entry(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                        principal: Principal, entry_id: str, reason: str) -> PostedEntry:
    """Post the mirror image of an entry and link both; an entry is reversed at most once."""
    original = await repository.get_entry(session, entry_id, for_update=True)
    if original is None:
        raise EntryNotFound(entry_id)
    if original.kind not in (EntryKind.manual, EntryKind.reversal):
        raise DocumentEntry(original.number, original.source_type, DOCUMENT_CORRECTIONS.get(
            original.kind, "correct it through its document"))
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
    # per control account and currency: its balance and what its documents say it should be
    controls: list[dict[str, str | int]] = field(default_factory=list)

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
    check.problems += await _control_problems(session, check)
    return check


# (what the account's balance is compared with, the problem's code, how the check names both)
CONTROLS = ((chart.RECEIVABLES, "receivables", "outstanding", "receivables_mismatch",
             "1100 receivables", "the open invoices' outstanding (the aging's total)"),
            (chart.UNAPPLIED_CASH, "unapplied_cash", "unapplied", "unapplied_mismatch",
             "2100 unapplied cash", "the customers' unapplied cash"))


async def _control_problems(session: AsyncSession, check: LedgerCheck) -> list[dict[str, str | None]]:
    """The control accounts equal their documents, per currency: 1100 the invoices'
    outstanding (the aging's total), 2100 the customers' unapplied cash."""
    totals = await repository.control_totals(session, receivables=chart.RECEIVABLES,
                                             unapplied_cash=chart.UNAPPLIED_CASH)
    problems: list[dict[str, str | None]] = []
    for code, account, documents, problem, account_name, documents_name in CONTROLS:
        currencies = sorted({c for (what, c) in totals if what in (account, documents)})
        for currency in currencies:
            booked, expected = totals.get((account, currency), 0), totals.get((documents, currency), 0)
            check.controls.append({"account_code": code, "currency": currency,
                                   "balance_minor": booked, "documents_minor": expected})
            if booked != expected:
                problems.append({"code": problem, "entry_id": None, "detail":
                                 f"{account_name} in {currency} is {booked}, but "
                                 f"{documents_name} is {expected}"})
    return problems
