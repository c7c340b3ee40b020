"""Credit and debit notes on an invoice: a return or allowance off it, interest or a fee on it."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart, repository
from services.ledger.errors import CreditNoteNotFound, DebitNoteNotFound, DocumentRefused
from services.ledger.models import CreditNote, DebitNote, EntryKind, Invoice, InvoiceStatus, counters
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


async def issue_credit_note(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                            principal: Principal, data: CreditNoteCreate) -> CreditNote:
    """Credit an invoice (a return, an allowance): Dr sales returns / Cr receivables.

    Never more than is still outstanding on the invoice. A note that brings it to 0 marks it
    paid (`paid_at` set) but emits only `credit_note.issued`, not `invoice.paid`: that event
    means money arrived; the note's event carries the invoice's new outstanding and status.
    """
    now = clock.now()
    invoice = await _lock_invoice_in_body(session, principal, data.invoice_id, "credit note", now)
    if data.amount_minor > invoice.outstanding_minor:
        raise DocumentRefused("credit note", [{
            "field": "amount_minor",
            "message": f"{data.amount_minor} is more than the {invoice.outstanding_minor} "
                       f"still outstanding on {invoice.number}"}])
    note_id = str(uuid.uuid4())
    number = await next_number(session, counters, "credit_note", "CN")
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.credit_note,
        memo=f"Credit note {number} on {invoice.number}: {data.reason}"[:500],
        currency=invoice.currency, created_by=principal.name, source_type="credit_note",
        source_id=note_id, lines=[debit(chart.SALES_RETURNS, data.amount_minor),
                                  credit(chart.RECEIVABLES, data.amount_minor,
                                         invoice.customer_id)])
    note = CreditNote(id=note_id, number=number, invoice_id=invoice.id,
                      customer_id=invoice.customer_id, currency=invoice.currency,
                      amount_minor=data.amount_minor, reason=data.reason,
                      journal_entry_id=posted.entry.id, created_by=principal.name, created_at=now)
    session.add(note)
    invoice.outstanding_minor -= data.amount_minor
    invoice.credited_minor += data.amount_minor
    touch(invoice, now)
    settle_status(invoice, closed_at=now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="credit_note.issued", source="ledger", subject=note.id, data={
            "credit_note_id": note.id, "number": note.number, "invoice_id": invoice.id,
            "invoice_number": invoice.number, "order_id": invoice.order_id,
            "customer_id": invoice.customer_id, "currency": invoice.currency,
            "amount_minor": note.amount_minor, "reason": note.reason,
            "invoice_outstanding_minor": invoice.outstanding_minor,
            "invoice_status": invoice.status}))
    return note


async def issue_debit_note(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                           principal: Principal, data: DebitNoteCreate) -> DebitNote:
    """Charge late-payment interest or a fee on an invoice: Dr receivables / Cr late-payment income."""
    now = clock.now()
    invoice = await _lock_invoice_in_body(session, principal, data.invoice_id, "debit note", now)
    if invoice.status == InvoiceStatus.written_off:
        raise DocumentRefused("debit note", [{"field": "invoice_id",
                                              "message": f"invoice {invoice.number} is written off"}])
    note_id = str(uuid.uuid4())
    number = await next_number(session, counters, "debit_note", "DN")
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.debit_note,
        memo=f"Debit note {number} ({data.kind}) on {invoice.number}: {data.reason}"[:500],
        currency=invoice.currency, created_by=principal.name, source_type="debit_note",
        source_id=note_id, lines=[debit(chart.RECEIVABLES, data.amount_minor, invoice.customer_id),
                                  credit(chart.LATE_PAYMENT_INCOME, data.amount_minor)])
    note = DebitNote(id=note_id, number=number, invoice_id=invoice.id,
                     customer_id=invoice.customer_id, currency=invoice.currency,
                     amount_minor=data.amount_minor, kind=data.kind, reason=data.reason,
                     journal_entry_id=posted.entry.id, created_by=principal.name, created_at=now)
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
            "reason": note.reason, "invoice_outstanding_minor": invoice.outstanding_minor,
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
