"""Invoices: one per order, issued idempotently; who sees one; the one writer of its status."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart, repository
from services.ledger.errors import InvalidPosting, InvoiceConflict, InvoiceNotFound
from services.ledger.models import EntryKind, Invoice, InvoiceStatus, counters
from services.ledger.posting import credit, debit, post_entry
from services.ledger.schemas import InvoiceCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.events import new_event
from shared.numbering import next_number
from shared.outbox import Outbox


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


async def open_dispute_ids(session: AsyncSession, invoice_ids: Iterable[str]) -> set[str]:
    """Which of the invoices have an open dispute (shown as `disputed` on the invoice)."""
    return await repository.disputed_invoice_ids(session, invoice_ids)


# ---------------------------------------------------------------- status
