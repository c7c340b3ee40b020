"""Receivables by customer: an order's balance, who sees a customer, its statement and exposure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart, repository
from services.ledger.dates import end_of_day, start_of_day
from services.ledger.errors import CurrencyRequired, CustomerNotFound, DocumentRefused, OrderNotInvoiced
from services.ledger.models import SOURCE_DOCUMENTS, EntryKind, Invoice
from shared.auth import Principal


async def order_balance(session: AsyncSession, principal: Principal, order_id: str) -> Invoice:
    """The order's invoice, whose money columns are the order's balance; 404 when none."""
    invoice = await repository.get_invoice_by_order(session, order_id)
    if invoice is None or not principal.can_see(invoice.salesperson_id):
        raise OrderNotInvoiced(order_id)
    return invoice


async def ensure_customer_visible(session: AsyncSession, principal: Principal,
                                  customer_id: str) -> str:
    """A sales principal sees a customer only through its own invoices (else 404)."""
    own = principal.restricted_to_salesperson
    if own is not None and not await repository.customer_has_salesperson(session, customer_id, own):
        raise CustomerNotFound(customer_id)
    return customer_id


def _one_currency(customer_id: str, asked: str | None, have: set[str]) -> str:
    if asked is not None:
        return asked
    if not have:
        raise CustomerNotFound(customer_id)
    if len(have) > 1:
        raise CurrencyRequired(customer_id, sorted(have))
    return next(iter(have))


STATEMENT_TYPES = {EntryKind.invoice: "invoice", EntryKind.payment: "payment",
                   EntryKind.credit_note: "credit_note", EntryKind.debit_note: "debit_note",
                   EntryKind.reversal: "reversal", EntryKind.allocation: "allocation",
                   EntryKind.write_off: "write_off"}


@dataclass
class StatementLine:
    date: date
    document_type: str
    document_id: str
    number: str
    journal_entry_number: str
    description: str
    debit_minor: int
    credit_minor: int
    balance_minor: int
    dispute: dict[str, object] | None = None  # an invoice's dispute open at the end of `to`


@dataclass
class Statement:
    customer_id: str
    currency: str
    from_: date
    to: date
    opening_balance_minor: int
    lines: list[StatementLine]
    closing_balance_minor: int
    unapplied_minor: int


async def statement(session: AsyncSession, *, customer_id: str, currency: str | None,
                    from_: date, to: date) -> Statement:
    """The customer's receivable account (1100) over a period: opening, every line, closing."""
    if from_ > to:
        raise DocumentRefused("statement", [{"field": "query.from",
                                             "message": "must not be after `to`"}])
    currency = _one_currency(customer_id, currency, await repository.subledger_currencies(
        session, customer_id, chart.RECEIVABLES))
    opening = await repository.subledger_balance(
        session, customer_id=customer_id, account_code=chart.RECEIVABLES, currency=currency,
        before=start_of_day(from_))
    rows = await repository.subledger_lines(
        session, customer_id=customer_id, account_code=chart.RECEIVABLES, currency=currency,
        posted_from=start_of_day(from_), posted_before=end_of_day(to))
    numbers: dict[str, str] = {}
    for source_type, model in SOURCE_DOCUMENTS.items():
        numbers |= await repository.document_numbers(
            session, model, (r.source_id for r in rows if r.source_type == source_type and r.source_id))
    disputes = await repository.disputes_open_at(
        session, (r.source_id for r in rows if r.kind == EntryKind.invoice and r.source_id),
        end_of_day(to))
    lines, running = [], opening
    for r in rows:
        running += r.debit_minor - r.credit_minor
        dispute = disputes.get(r.source_id or "") if r.kind == EntryKind.invoice else None
        lines.append(StatementLine(
            date=r.posted_at.date(), document_type=STATEMENT_TYPES.get(r.kind, "manual"),
            document_id=r.source_id or r.entry_id,
            number=numbers.get(r.source_id or "", r.entry_number),
            journal_entry_number=r.entry_number, description=r.memo,
            debit_minor=r.debit_minor, credit_minor=r.credit_minor, balance_minor=running,
            dispute=None if dispute is None else {
                "id": dispute.id, "reason": dispute.reason, "contact_role": dispute.contact_role,
                "opened_at": dispute.opened_at}))
    unapplied = -await repository.subledger_balance(
        session, customer_id=customer_id, account_code=chart.UNAPPLIED_CASH, currency=currency,
        before=end_of_day(to))
    return Statement(customer_id, currency, from_, to, opening, lines, running, unapplied)


@dataclass
class Exposure:
    customer_id: str
    currency: str
    as_of: date
    open_receivables_minor: int
    overdue_minor: int
    max_days_overdue: int
    invoices_open: int
    invoices_paid_on_time: int
    invoices_paid_late: int
    avg_days_late: float | None
    unapplied_minor: int


async def exposure(session: AsyncSession, *, customer_id: str, currency: str | None,
                   today: date) -> Exposure:
    """What the customer owes and how it has paid, as of `today`, for credit's decisions."""
    balances = {b.currency: b for b in await repository.customer_balances(session, customer_id)}
    currency = _one_currency(customer_id, currency,
                             await repository.invoice_currencies(session, customer_id) | set(balances))
    totals = await repository.invoice_totals(session, customer_id, currency, today)
    balance = balances.get(currency)
    return Exposure(
        customer_id=customer_id, currency=currency, as_of=today,
        open_receivables_minor=totals.open_minor, overdue_minor=totals.overdue_minor,
        max_days_overdue=(today - totals.oldest_overdue_due).days
        if totals.oldest_overdue_due is not None else 0,
        invoices_open=totals.open_count, invoices_paid_on_time=totals.paid_on_time,
        invoices_paid_late=totals.paid_late,
        avg_days_late=round(totals.days_late_sum / totals.paid_late, 1) if totals.paid_late else None,
        unapplied_minor=balance.unapplied_minor if balance else 0)
