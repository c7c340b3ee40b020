"""Write-offs: propose → approve by another principal (four eyes) → posted; recoveries after.

Approval and payments take the same locks in the same order — the customer's balance row,
then the invoice — so a payment racing an approval runs before or after it, never beside it,
and outstanding can never go below 0 (the invoice's CHECK constraints say so too).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart
from services.ledger import repository as ledger_repository
from services.ledger.errors import DocumentRefused
from services.ledger.models import EntryKind, Invoice, counters
from services.ledger.posting import credit, debit, post_entry, settle_status
from services.ledger.writeoffs import repository
from services.ledger.writeoffs.errors import WriteOffNotFound
from services.ledger.writeoffs.models import WriteOff, WriteOffRecovery, WriteOffStatus
from services.ledger.writeoffs.schemas import RecoveryCreate, WriteOffCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import GuardFailed, InvalidTransition
from shared.events import new_event
from shared.numbering import next_number
from shared.outbox import Outbox


@dataclass
class WriteOffView:
    """A write-off with its recoveries and its invoice's number."""

    write_off: WriteOff
    recoveries: list[WriteOffRecovery]
    invoice_number: str | None


async def views(session: AsyncSession, write_offs: list[WriteOff]) -> list[WriteOffView]:
    """The write-offs with their recoveries and invoice numbers, in two queries."""
    recoveries = await repository.recoveries_of(session, (w.id for w in write_offs))
    numbers = await ledger_repository.document_numbers(
        session, Invoice, (w.invoice_id for w in write_offs))
    return [WriteOffView(w, recoveries[w.id], numbers.get(w.invoice_id)) for w in write_offs]


async def get_visible(session: AsyncSession, principal: Principal, write_off_id: str) -> WriteOff:
    """The write-off, or 404 when it does not exist or is another salesperson's."""
    write_off = await repository.get(session, write_off_id)
    if write_off is None or not principal.can_see(write_off.salesperson_id):
        raise WriteOffNotFound(write_off_id)
    return write_off


def _touch(row: WriteOff | Invoice, now: datetime) -> None:
    row.version += 1
    row.updated_at = now


def _event_data(write_off: WriteOff, invoice_number: str | None) -> dict[str, object]:
    return {"write_off_id": write_off.id, "number": write_off.number,
            "invoice_id": write_off.invoice_id, "invoice_number": invoice_number,
            "customer_id": write_off.customer_id, "salesperson_id": write_off.salesperson_id,
            "amount_minor": write_off.amount_minor, "currency": write_off.currency,
            "reason": write_off.reason, "responsible": list(write_off.responsible)}


async def propose(*, session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                  data: WriteOffCreate) -> WriteOffView:
    """Propose writing off (part of) an invoice's outstanding; nothing is posted yet."""
    invoice = await ledger_repository.get_invoice(session, data.invoice_id)
    if invoice is None or not principal.can_see(invoice.salesperson_id):
        raise DocumentRefused("write-off", [{"field": "invoice_id",
                                             "message": f"unknown invoice {data.invoice_id}"}])
    if invoice.outstanding_minor == 0:
        raise DocumentRefused("write-off", [{
            "field": "invoice_id", "message": f"nothing is outstanding on {invoice.number}"}])
    amount = data.amount_minor if data.amount_minor is not None else invoice.outstanding_minor
    if amount > invoice.outstanding_minor:
        raise DocumentRefused("write-off", [{
            "field": "amount_minor", "message": f"{amount} is more than the "
                                                f"{invoice.outstanding_minor} outstanding on "
                                                f"{invoice.number}"}])
    now = clock.now()
    effective_at = None if data.effective_at is None else data.effective_at.astimezone(UTC)
    if effective_at is not None and not invoice.issued_at <= effective_at <= now:
        raise DocumentRefused("write-off", [{
            "field": "effective_at",
            "message": "must not be in the future" if effective_at > now else
                       f"must not be before {invoice.number} was issued "
                       f"({invoice.issued_at.isoformat()})"}])
    pending = await repository.proposed_for_invoice(session, invoice.id)
    if pending is not None:
        raise GuardFailed("one_open_proposal",
                          f"Invoice {invoice.number} already has write-off {pending.number} "
                          "waiting for approval; approve or reject it first.",
                          write_off_id=pending.id)
    write_off = WriteOff(
        number=await next_number(session, counters, "write_off", "WO"), invoice_id=invoice.id,
        customer_id=invoice.customer_id, salesperson_id=invoice.salesperson_id,
        currency=invoice.currency, amount_minor=amount, reason=data.reason,
        responsible=list(data.responsible), status=WriteOffStatus.proposed,
        effective_at=effective_at,
        proposed_by=principal.name, proposed_at=now, created_at=now, updated_at=now)
    session.add(write_off)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="writeoff.proposed", source="ledger", subject=write_off.id,
        data={**_event_data(write_off, invoice.number), "proposed_by": principal.name,
              "invoice_outstanding_minor": invoice.outstanding_minor}))
    return WriteOffView(write_off, [], invoice.number)


async def _lock_proposed(session: AsyncSession, principal: Principal, write_off_id: str,
                         trigger: str) -> WriteOff:
    """The write-off locked, still `proposed` (409 invalid_transition otherwise)."""
    write_off = await get_visible(session, principal, write_off_id)
    locked = await repository.get(session, write_off.id, for_update=True)
    assert locked is not None
    if locked.status != WriteOffStatus.proposed:
        raise InvalidTransition(f"Write-off {locked.number} is {locked.status}; only a proposed "
                                f"write-off can be {trigger}.", state=locked.status,
                                allowed=[] if locked.status == WriteOffStatus.rejected
                                else ["recoveries"])
    return locked


async def approve(*, session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                  write_off_id: str) -> WriteOffView:
    """Approve and post: Dr bad-debt expense / Cr receivables; the invoice's outstanding falls.

    Guards: the approver is not the proposer (`four_eyes`); the invoice still has at least
    the amount outstanding (`outstanding_covers_amount`: a payment may have arrived since).
    """
    found = await get_visible(session, principal, write_off_id)
    if found.proposed_by == principal.name:
        raise GuardFailed("four_eyes", f"Write-off {found.number} was proposed by "
                                       f"{principal.name}; another finance principal must "
                                       "approve it.")
    now = clock.now()
    await ledger_repository.lock_customer_balance(
        session, customer_id=found.customer_id, currency=found.currency, now=now)
    write_off = await _lock_proposed(session, principal, write_off_id, "approved")
    invoice = await ledger_repository.get_invoice(session, write_off.invoice_id, for_update=True)
    assert invoice is not None
    if write_off.amount_minor > invoice.outstanding_minor:
        raise GuardFailed("outstanding_covers_amount",
                          f"Only {invoice.outstanding_minor} is outstanding on {invoice.number} "
                          f"now, less than the {write_off.amount_minor} proposed (money arrived "
                          "since the proposal); reject this write-off and propose again.",
                          outstanding_minor=invoice.outstanding_minor)
    counts_from = write_off.effective_at or now
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.write_off,
        memo=f"Write-off {write_off.number} of {invoice.number}: {write_off.reason}"[:500],
        currency=write_off.currency, posted_at=counts_from, created_by=principal.name,
        source_type="write_off",
        source_id=write_off.id,
        lines=[debit(chart.BAD_DEBT_EXPENSE, write_off.amount_minor),
               credit(chart.RECEIVABLES, write_off.amount_minor, write_off.customer_id)])
    invoice.outstanding_minor -= write_off.amount_minor
    invoice.written_off_minor += write_off.amount_minor
    settle_status(invoice, closed_at=now, by_write_off=True)
    _touch(invoice, now)
    write_off.status = WriteOffStatus.posted
    write_off.approved_by = principal.name
    write_off.approved_at = now
    write_off.posted_at = counts_from
    write_off.journal_entry_id = posted.entry.id
    _touch(write_off, now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="writeoff.approved", source="ledger", subject=write_off.id,
        data={**_event_data(write_off, invoice.number), "order_id": invoice.order_id,
              "proposed_by": write_off.proposed_by, "approved_by": principal.name,
              "journal_entry_id": posted.entry.id, "posted_at": counts_from.isoformat(),
              "approved_at": now.isoformat(),
              "invoice_outstanding_minor": invoice.outstanding_minor,
              "invoice_status": invoice.status}))
    return WriteOffView(write_off, [], invoice.number)


async def reject(*, session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                 write_off_id: str, reason: str) -> WriteOffView:
    """Turn a proposal down; nothing was posted, so nothing is undone."""
    write_off = await _lock_proposed(session, principal, write_off_id, "rejected")
    now = clock.now()
    write_off.status = WriteOffStatus.rejected
    write_off.rejected_by = principal.name
    write_off.rejected_at = now
    write_off.rejection_reason = reason
    _touch(write_off, now)
    await session.flush()
    (view,) = await views(session, [write_off])
    await outbox.enqueue(session, new_event(
        clock, type="writeoff.rejected", source="ledger", subject=write_off.id,
        data={**_event_data(write_off, view.invoice_number), "rejected_by": principal.name,
              "rejection_reason": reason}))
    return view


async def recover(*, session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                  write_off_id: str, data: RecoveryCreate) -> tuple[WriteOffView, WriteOffRecovery]:
    """Post money received on a written-off debt: Dr cash / Cr bad-debt recoveries.

    The recoveries of a write-off never add up to more than was written off.
    """
    found = await get_visible(session, principal, write_off_id)
    write_off = await repository.get(session, found.id, for_update=True)
    assert write_off is not None
    if write_off.status != WriteOffStatus.posted:
        raise InvalidTransition(f"Write-off {write_off.number} is {write_off.status}; money can "
                                "be recovered only on a posted write-off.", state=write_off.status,
                                allowed=["approve", "reject"]
                                if write_off.status == WriteOffStatus.proposed else [])
    now = clock.now()
    received_at = (data.received_at or now).astimezone(UTC)
    errors = []
    if received_at > now:
        errors.append({"field": "received_at", "message": "must not be in the future"})
    else:
        invoice = await ledger_repository.get_invoice(session, write_off.invoice_id)
        if invoice is not None and received_at < invoice.issued_at:
            errors.append({"field": "received_at",
                           "message": f"must not be before {invoice.number} was issued "
                                      f"({invoice.issued_at.isoformat()})"})
    left = write_off.amount_minor - write_off.recovered_minor
    if data.amount_minor > left:
        errors.append({"field": "amount_minor",
                       "message": f"{data.amount_minor} is more than the {left} written off and "
                                  f"not yet recovered on {write_off.number}"})
    if errors:
        raise DocumentRefused("recovery", errors)
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.recovery,
        memo=(f"Recovery on write-off {write_off.number}"
              + (f", ref {data.reference}" if data.reference else ""))[:500],
        currency=write_off.currency, posted_at=received_at, created_by=principal.name,
        source_type="write_off", source_id=write_off.id,
        lines=[debit(chart.CASH, data.amount_minor),
               credit(chart.BAD_DEBT_RECOVERIES, data.amount_minor)])
    recovery = WriteOffRecovery(
        write_off_id=write_off.id, amount_minor=data.amount_minor,
        received_at=received_at, reference=data.reference, journal_entry_id=posted.entry.id,
        created_by=principal.name, created_at=now)
    session.add(recovery)
    write_off.recovered_minor += data.amount_minor
    _touch(write_off, now)
    await session.flush()
    (view,) = await views(session, [write_off])
    await outbox.enqueue(session, new_event(
        clock, type="writeoff.recovered", source="ledger", subject=write_off.id,
        data={**_event_data(write_off, view.invoice_number), "recovery_id": recovery.id,
              "recovered_amount_minor": recovery.amount_minor,
              "recovered_minor": write_off.recovered_minor,
              "received_at": received_at.isoformat(), "journal_entry_id": posted.entry.id}))
    return view, recovery
