"""Use cases of collection work: promises to pay, disputes and collection notes on an invoice.

Each runs in the request's transaction: lock the invoice, check, write, outbox event. The
overdue scan, which commits batch by batch, lives in `scan.py`.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import repository as ledger_repository
from services.ledger.collection import repository
from services.ledger.collection.errors import (
    DisputeAlreadyOpen,
    DisputeNotFound,
    DisputeNotOpen,
    InvoiceClosed,
    PromiseRefused,
)
from services.ledger.collection.models import (
    CollectionNote,
    PaymentPromise,
    PromiseStatus,
)
from services.ledger.collection.schemas import (
    CollectionNoteCreate,
    DisputeCreate,
    DisputeResolve,
    PromiseCreate,
)
from services.ledger.dates import end_of_day
from services.ledger.models import DisputeStatus, Invoice, InvoiceDispute, InvoiceStatus
from shared.auth import Principal
from shared.clock import Clock
from shared.events import new_event
from shared.outbox import Outbox


async def _locked(session: AsyncSession, invoice: Invoice) -> Invoice:
    """Re-read the (already visible) invoice under its row lock."""
    locked = await ledger_repository.get_invoice(session, invoice.id, for_update=True)
    assert locked is not None
    return locked


def _closed_status(invoice: Invoice) -> str | None:
    """Why nothing is left to collect on the invoice, or None while money is outstanding."""
    if invoice.status == InvoiceStatus.written_off:
        return InvoiceStatus.written_off
    if invoice.outstanding_minor == 0:
        return InvoiceStatus.paid
    return None


# ---------------------------------------------------------------- promises to pay


async def record_promise(*, session: AsyncSession, clock: Clock, principal: Principal,
                         invoice: Invoice, data: PromiseCreate) -> PaymentPromise:
    """Record the customer's promise to pay `amount` by `promised_date`; the scan decides it."""
    invoice = await _locked(session, invoice)
    errors = []
    if data.promised_date < clock.today():
        errors.append({"field": "promised_date",
                       "message": f"must not be before today ({clock.today().isoformat()})"})
    if _closed_status(invoice) is not None:
        errors.append({"field": "invoice", "message": f"invoice {invoice.number} is "
                                                      f"{_closed_status(invoice)}"})
    elif data.amount_minor > invoice.outstanding_minor:
        errors.append({"field": "amount_minor",
                       "message": f"{data.amount_minor} is more than the {invoice.outstanding_minor} "
                                  f"outstanding on {invoice.number}"})
    if errors:
        raise PromiseRefused(errors)
    promise = PaymentPromise(
        invoice_id=invoice.id, customer_id=invoice.customer_id,
        salesperson_id=invoice.salesperson_id, promised_date=data.promised_date,
        amount_minor=data.amount_minor, currency=invoice.currency, contact_role=data.contact_role,
        note=data.note, status=PromiseStatus.open, created_by=principal.name,
        created_at=clock.now())
    await repository.add(session, promise)
    return promise


async def paid_since_today(session: AsyncSession, promises: list[PaymentPromise],
                           today: date) -> dict[str, int]:
    """What has been paid since each promise: as of today while open, as decided once resolved."""
    open_ids = [p.id for p in promises if p.status == PromiseStatus.open]
    progress = await repository.promise_progress(session, open_ids, before=end_of_day(today))
    return {p.id: progress[p.id].paid_since_minor if p.id in progress else p.paid_since_minor
            for p in promises}


# ---------------------------------------------------------------- disputes


def _dispute_data(dispute: InvoiceDispute, invoice: Invoice) -> dict[str, object]:
    return {
        "dispute_id": dispute.id, "invoice_id": invoice.id, "invoice_number": invoice.number,
        "order_id": invoice.order_id, "customer_id": invoice.customer_id,
        "salesperson_id": invoice.salesperson_id, "reason": dispute.reason,
        "contact_role": dispute.contact_role, "outstanding_minor": invoice.outstanding_minor,
        "currency": invoice.currency, "opened_at": dispute.opened_at.isoformat(),
    }


async def open_dispute(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                       principal: Principal, invoice: Invoice, data: DisputeCreate) -> InvoiceDispute:
    """Open a dispute on an invoice with money outstanding; one open dispute per invoice."""
    invoice = await _locked(session, invoice)
    closed = _closed_status(invoice)
    if closed is not None:
        raise InvoiceClosed(invoice.number, closed, "dispute")
    existing = await repository.open_dispute(session, invoice.id)
    if existing is not None:
        raise DisputeAlreadyOpen(invoice.number, existing.id)
    dispute = InvoiceDispute(
        invoice_id=invoice.id, customer_id=invoice.customer_id,
        salesperson_id=invoice.salesperson_id, status=DisputeStatus.open, reason=data.reason,
        contact_role=data.contact_role, opened_at=clock.now(), opened_by=principal.name)
    try:
        async with session.begin_nested():
            await repository.add(session, dispute)
    except IntegrityError as exc:  # another request opened one first
        raise DisputeAlreadyOpen(invoice.number, None) from exc
    await outbox.enqueue(session, new_event(
        clock, type="invoice.disputed", source="ledger", subject=invoice.id,
        data=_dispute_data(dispute, invoice)))
    return dispute


async def get_dispute(session: AsyncSession, invoice: Invoice, dispute_id: str, *,
                      for_update: bool = False) -> InvoiceDispute:
    dispute = await repository.get_dispute(session, dispute_id, for_update=for_update)
    if dispute is None or dispute.invoice_id != invoice.id:
        raise DisputeNotFound(dispute_id)
    return dispute


async def resolve_dispute(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                          principal: Principal, invoice: Invoice, dispute_id: str,
                          data: DisputeResolve) -> InvoiceDispute:
    """Close an open dispute; the next overdue scan emits the levels crossed meanwhile."""
    invoice = await _locked(session, invoice)
    dispute = await get_dispute(session, invoice, dispute_id, for_update=True)
    if dispute.status != DisputeStatus.open:
        raise DisputeNotOpen(dispute.id, dispute.status)
    dispute.status = DisputeStatus.resolved
    dispute.resolved_at = clock.now()
    dispute.resolved_by = principal.name
    dispute.resolution = data.resolution
    dispute.version += 1
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="invoice.dispute_resolved", source="ledger", subject=invoice.id, data={
            **_dispute_data(dispute, invoice), "resolution": dispute.resolution,
            "resolved_at": dispute.resolved_at.isoformat()}))
    return dispute


# ---------------------------------------------------------------- collection notes


async def add_note(*, session: AsyncSession, clock: Clock, principal: Principal, invoice: Invoice,
                   data: CollectionNoteCreate) -> CollectionNote:
    """Record where the payment stands in the customer's chain and when to follow up."""
    note = CollectionNote(
        invoice_id=invoice.id, customer_id=invoice.customer_id,
        salesperson_id=invoice.salesperson_id, contact_role=data.contact_role, note=data.note,
        next_action_on=data.next_action_on, created_by=principal.name, created_at=clock.now())
    await repository.add(session, note)
    return note
