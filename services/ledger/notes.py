"""Credit and debit notes on an invoice: a return or allowance off it, interest or a fee on it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart, repository
from services.ledger.errors import CreditNoteNotFound, DebitNoteNotFound, DocumentRefused
from services.ledger.models import (
    AllocationKind,
    CreditNote,
    DebitNote,
    EntryKind,
    Invoice,
    InvoiceStatus,
    PaymentAllocation,
    counters,
)
from services.ledger.posting import credit, debit, post_entry, settle_status
from services.ledger.rows import touch
from services.ledger.schemas import CreditNoteCreate, DebitNoteCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.events import new_event
from shared.numbering import next_number
from shared.outbox import Outbox


async def _lock_invoice_in_body(session: AsyncSession, principal: Principal, invoice_id: str,
                                what: str, now: datetime) -> Invoice:
    """The invoice a note names, locked after its customer's balance row; 422 when unknown."""
    invoice = await repository.get_invoice(session, invoice_id)
    if invoice is None or not principal.can_see(invoice.salesperson_id):
        raise DocumentRefused(what, [{"field": "invoice_id",
                                      "message": f"unknown invoice {invoice_id}"}])
    await repository.lock_customer_balance(session, customer_id=invoice.customer_id,
                                           currency=invoice.currency, now=now)
    locked = await repository.get_invoice(session, invoice_id, for_update=True)
    assert locked is not None
    return locked


def effective(invoice: Invoice, at: datetime | None, now: datetime, what: str) -> datetime:
    """The date a note counts from: now by default, never future, never before the invoice."""
    when = (at or now).astimezone(UTC)
    if when > now:
        raise DocumentRefused(what, [{"field": "effective_at", "message": "must not be in the future"}])
    if when < invoice.issued_at:
        raise DocumentRefused(what, [{
            "field": "effective_at", "message": f"must not be before {invoice.number} was issued "
                                                f"({invoice.issued_at.isoformat()})"}])
    return when


async def issue_credit_note(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                            principal: Principal, data: CreditNoteCreate) -> CreditNote:
    """Credit an invoice (a return, an allowance): Dr sales returns / Cr receivables.

    Never more than is still outstanding on the invoice, unless `paid_to_unapplied`: then up
    to what was paid as well, and that part is taken back off the payments that paid it
    (newest first, as `returned` allocations) into the customer's unapplied cash: Cr 2100
    instead of 1100. A note that brings it to 0 marks it paid (`paid_at` set) but emits only
    `credit_note.issued`, not `invoice.paid`: that event means money arrived; the note's event
    carries the invoice's new outstanding and status.
    """
    now = clock.now()
    invoice = await _lock_invoice_in_body(session, principal, data.invoice_id, "credit note", now)
    effective_at = effective(invoice, data.effective_at, now, "credit note")
    returned = max(0, data.amount_minor - invoice.outstanding_minor)
    if returned and not (data.paid_to_unapplied and returned <= invoice.paid_minor):
        most = invoice.outstanding_minor + (invoice.paid_minor if data.paid_to_unapplied else 0)
        raise DocumentRefused("credit note", [{
            "field": "amount_minor",
            "message": f"{data.amount_minor} is more than the {most} "
                       + ("outstanding and paid" if data.paid_to_unapplied
                          else "still outstanding") + f" on {invoice.number}"
                       + ("" if data.paid_to_unapplied or not invoice.paid_minor else
                          " (set paid_to_unapplied to credit what was paid as well)")}])
    note_id = str(uuid.uuid4())
    number = await next_number(session, counters, "credit_note", "CN")
    lines = [debit(chart.SALES_RETURNS, data.amount_minor)]
    if data.amount_minor > returned:
        lines.append(credit(chart.RECEIVABLES, data.amount_minor - returned, invoice.customer_id))
    if returned:
        lines.append(credit(chart.UNAPPLIED_CASH, returned, invoice.customer_id))
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.credit_note,
        memo=f"Credit note {number} on {invoice.number}: {data.reason}"[:500],
        currency=invoice.currency, posted_at=effective_at, created_by=principal.name,
        source_type="credit_note", source_id=note_id, lines=lines)
    note = CreditNote(id=note_id, number=number, invoice_id=invoice.id,
                      customer_id=invoice.customer_id, currency=invoice.currency,
                      amount_minor=data.amount_minor, returned_to_unapplied_minor=returned,
                      reason=data.reason, journal_entry_id=posted.entry.id,
                      effective_at=effective_at, created_by=principal.name, created_at=now)
    session.add(note)
    if returned:
        await _return_to_unapplied(session, invoice, returned, posted.entry.id, now)
    invoice.outstanding_minor -= data.amount_minor - returned
    invoice.credited_minor += data.amount_minor
    invoice.paid_minor -= returned
    touch(invoice, now)
    settle_status(invoice, closed_at=now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="credit_note.issued", source="ledger", subject=note.id, data={
            "credit_note_id": note.id, "number": note.number, "invoice_id": invoice.id,
            "invoice_number": invoice.number, "order_id": invoice.order_id,
            "customer_id": invoice.customer_id, "currency": invoice.currency,
            "amount_minor": note.amount_minor, "returned_to_unapplied_minor": returned,
            "reason": note.reason, "effective_at": effective_at.isoformat(),
            "invoice_outstanding_minor": invoice.outstanding_minor,
            "invoice_status": invoice.status}))
    return note


async def _return_to_unapplied(session: AsyncSession, invoice: Invoice, amount: int,
                               entry_id: str, now: datetime) -> None:
    """Take `amount` of what the invoice's payments paid on it back into their unapplied cash,
    newest payment first (a later reversal of one of them then takes it from there)."""
    balance = await repository.lock_customer_balance(
        session, customer_id=invoice.customer_id, currency=invoice.currency, now=now)
    left = amount
    for payment, paid_here in await repository.paid_by_payment(session, invoice.id):
        take = min(left, paid_here)
        session.add(PaymentAllocation(payment_id=payment.id, invoice_id=invoice.id,
                                      amount_minor=-take, kind=AllocationKind.returned,
                                      journal_entry_id=entry_id, created_at=now))
        payment.unapplied_minor += take
        payment.unapplied_remaining_minor += take
        touch(payment, now)
        left -= take
        if left == 0:
            break
    if left:  # paid_minor counted money no posted payment holds (paid in another system)
        raise DocumentRefused("credit note", [{
            "field": "amount_minor",
            "message": f"only {amount - left} of what was paid on {invoice.number} came "
                       "through payments here; the rest cannot go back to unapplied cash"}])
    balance.unapplied_minor += amount
    touch(balance, now)


async def issue_debit_note(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                           principal: Principal, data: DebitNoteCreate) -> DebitNote:
    """Charge late-payment interest or a fee on an invoice: Dr receivables / Cr late-payment income."""
    now = clock.now()
    invoice = await _lock_invoice_in_body(session, principal, data.invoice_id, "debit note", now)
    if invoice.status == InvoiceStatus.written_off:
        raise DocumentRefused("debit note", [{"field": "invoice_id",
                                              "message": f"invoice {invoice.number} is written off"}])
    effective_at = effective(invoice, data.effective_at, now, "debit note")
    note_id = str(uuid.uuid4())
    number = await next_number(session, counters, "debit_note", "DN")
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.debit_note,
        memo=f"Debit note {number} ({data.kind}) on {invoice.number}: {data.reason}"[:500],
        currency=invoice.currency, posted_at=effective_at, created_by=principal.name,
        source_type="debit_note", source_id=note_id,
        lines=[debit(chart.RECEIVABLES, data.amount_minor, invoice.customer_id),
                                  credit(chart.LATE_PAYMENT_INCOME, data.amount_minor)])
    note = DebitNote(id=note_id, number=number, invoice_id=invoice.id,
                     customer_id=invoice.customer_id, currency=invoice.currency,
                     amount_minor=data.amount_minor, kind=data.kind, reason=data.reason,
                     journal_entry_id=posted.entry.id, effective_at=effective_at,
                     created_by=principal.name, created_at=now)
    session.add(note)
    invoice.outstanding_minor += data.amount_minor
    invoice.debit_notes_minor += data.amount_minor
    touch(invoice, now)
    settle_status(invoice, closed_at=now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="debit_note.issued", source="ledger", subject=note.id, data={
            "debit_note_id": note.id, "number": note.number, "kind": note.kind,
            "invoice_id": invoice.id, "invoice_number": invoice.number,
            "order_id": invoice.order_id, "customer_id": invoice.customer_id,
            "currency": invoice.currency, "amount_minor": note.amount_minor,
            "reason": note.reason, "effective_at": effective_at.isoformat(),
            "invoice_outstanding_minor": invoice.outstanding_minor,
            "invoice_status": invoice.status}))
    return note


async def get_credit_note(session: AsyncSession, note_id: str) -> CreditNote:
    note = await repository.get_credit_note(session, note_id)
    if note is None:
        raise CreditNoteNotFound(note_id)
    return note


async def get_debit_note(session: AsyncSession, note_id: str) -> DebitNote:
    note = await repository.get_debit_note(session, note_id)
    if note is None:
        raise DebitNoteNotFound(note_id)
    return note
