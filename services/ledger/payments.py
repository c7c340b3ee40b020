"""Payments and unapplied cash: allocating money to invoices, receiving, reversing and applying it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart, repository
from services.ledger.errors import DocumentRefused, PaymentAlreadyReversed, PaymentNotFound
from services.ledger.models import (
    AllocationKind,
    CustomerBalance,
    EntryKind,
    Invoice,
    InvoiceStatus,
    Payment,
    PaymentAllocation,
    PaymentMethod,
    PaymentStatus,
    counters,
)
from services.ledger.posting import credit, debit, post_entry, settle_status
from services.ledger.rows import touch
from services.ledger.schemas import AllocationIn, PaymentCreate, UnappliedAllocationCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import GuardFailed
from shared.events import new_event
from shared.numbering import next_number
from shared.outbox import Outbox

# ---------------------------------------------------------------- allocations (shared by payments)

OLDEST_FIRST_FIRST_BATCH = 4


@dataclass
class Allocation:
    """Money to apply to one invoice (locked by the caller's transaction)."""

    invoice: Invoice
    amount_minor: int


def _apply_payment(invoice: Invoice, amount: int, *, paid_at: datetime, now: datetime) -> bool:
    """Take `amount` of payment off the invoice; True when that paid it in full."""
    invoice.outstanding_minor -= amount
    invoice.paid_minor += amount
    touch(invoice, now)
    return settle_status(invoice, closed_at=paid_at)


async def _explicit_allocations(session: AsyncSession, *, customer_id: str, currency: str,
                                wanted: list[AllocationIn], available: int,
                                available_what: str, what: str) -> list[Allocation]:
    """Lock and check the named invoices; every reason to refuse is reported at once."""
    errors: list[dict[str, str]] = []
    invoices = await repository.lock_invoices(session, (a.invoice_id for a in wanted))
    seen: set[str] = set()
    plan = []
    for i, a in enumerate(wanted):
        field = f"allocations[{i}]"
        invoice = invoices.get(a.invoice_id)
        if a.invoice_id in seen:
            errors.append({"field": f"{field}.invoice_id", "message": "invoice listed twice"})
        elif invoice is None:
            errors.append({"field": f"{field}.invoice_id",
                           "message": f"unknown invoice {a.invoice_id}"})
        elif invoice.customer_id != customer_id:
            errors.append({"field": f"{field}.invoice_id",
                           "message": f"invoice {invoice.number} belongs to another customer"})
        elif invoice.currency != currency:
            errors.append({"field": f"{field}.invoice_id",
                           "message": f"invoice {invoice.number} is in {invoice.currency}, "
                                      f"not {currency}"})
        elif invoice.status == InvoiceStatus.written_off:
            errors.append({"field": f"{field}.invoice_id",
                           "message": f"invoice {invoice.number} is written off"})
        elif a.amount_minor > invoice.outstanding_minor:
            errors.append({"field": f"{field}.amount_minor",
                           "message": f"{a.amount_minor} is more than the "
                                      f"{invoice.outstanding_minor} outstanding on "
                                      f"{invoice.number}"})
        else:
            plan.append(Allocation(invoice, a.amount_minor))
        seen.add(a.invoice_id)
    total = sum(a.amount_minor for a in wanted)
    if total > available:
        errors.append({"field": "allocations",
                       "message": f"allocations total {total}, more than the {available_what} "
                                  f"{available}"})
    if errors:
        raise DocumentRefused(what, errors)
    return plan


async def _oldest_due_first(session: AsyncSession, *, customer_id: str, currency: str,
                            amount: int) -> list[Allocation]:
    """Spread `amount` over the customer's open invoices in `currency`, oldest due first.

    Invoices are locked a few at a time (4, then 16, 64, …): most payments settle one or two
    invoices, and a large one still needs only a handful of queries.
    """
    plan: list[Allocation] = []
    left, offset, batch_size = amount, 0, OLDEST_FIRST_FIRST_BATCH
    while left > 0:
        batch = await repository.open_invoices_oldest_first(
            session, customer_id=customer_id, currency=currency, limit=batch_size, offset=offset)
        for invoice in batch:
            take = min(left, invoice.outstanding_minor)
            plan.append(Allocation(invoice, take))
            left -= take
            if left == 0:
                break
        if len(batch) < batch_size:
            break
        offset += len(batch)
        batch_size *= 4
    return plan


def _allocation_data(plan: list[Allocation]) -> list[dict[str, object]]:
    return [{"invoice_id": a.invoice.id, "invoice_number": a.invoice.number,
             "amount_minor": a.amount_minor} for a in plan]


async def _invoice_paid(outbox: Outbox, session: AsyncSession, clock: Clock,
                        invoice: Invoice) -> None:
    paid_on = invoice.paid_at.date() if invoice.paid_at else clock.today()
    await outbox.enqueue(session, new_event(
        clock, type="invoice.paid", source="ledger", subject=invoice.id, data={
            "invoice_id": invoice.id, "number": invoice.number, "order_id": invoice.order_id,
            "customer_id": invoice.customer_id, "salesperson_id": invoice.salesperson_id,
            "currency": invoice.currency, "amount_minor": invoice.amount_minor,
            "total_minor": invoice.total_minor, "paid_minor": invoice.paid_minor,
            "credited_minor": invoice.credited_minor, "due_date": invoice.due_date.isoformat(),
            "paid_at": invoice.paid_at.isoformat() if invoice.paid_at else None,
            "days_late": max(0, (paid_on - invoice.due_date).days)}))


# ---------------------------------------------------------------- payments


@dataclass
class PaymentView:
    """A payment with its allocations and the numbers of the invoices they went to."""

    payment: Payment
    allocations: list[PaymentAllocation]
    invoice_numbers: dict[str, str]


def _cash_account(method: str) -> str:
    """Where the money (or the goods taken in offset) lands."""
    return chart.OFFSET_GOODS if method == PaymentMethod.offset_goods else chart.CASH


async def receive_payment(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                          principal: Principal, data: PaymentCreate) -> PaymentView:
    """Post a payment: Dr cash (or goods in offset) / Cr receivables, the rest Cr unapplied.

    The customer's balance row is locked first, so concurrent payments of one customer
    allocate one after the other and never more than an invoice's outstanding.
    """
    now = clock.now()
    received_at = (data.received_at or now).astimezone(UTC)
    if received_at > now:
        raise DocumentRefused("payment", [{"field": "received_at",
                                           "message": "must not be in the future"}])
    balance = await repository.lock_customer_balance(
        session, customer_id=data.customer_id, currency=data.currency, now=now)
    if data.allocations is not None:
        plan = await _explicit_allocations(
            session, customer_id=data.customer_id, currency=data.currency,
            wanted=data.allocations, available=data.amount_minor,
            available_what="payment amount", what="payment")
    else:
        plan = await _oldest_due_first(session, customer_id=data.customer_id,
                                       currency=data.currency, amount=data.amount_minor)
        if not plan:  # nothing open in this currency: is it the wrong currency?
            currencies = await repository.invoice_currencies(session, data.customer_id)
            if currencies and data.currency not in currencies:
                raise DocumentRefused("payment", [{
                    "field": "currency", "message": f"customer {data.customer_id} has invoices "
                                                    f"only in {', '.join(sorted(currencies))}"}])
    allocated = sum(a.amount_minor for a in plan)
    unapplied = data.amount_minor - allocated
    payment_id = str(uuid.uuid4())
    number = await next_number(session, counters, "payment", "PAY")
    lines = [debit(_cash_account(data.method), data.amount_minor)]
    if allocated:
        lines.append(credit(chart.RECEIVABLES, allocated, data.customer_id))
    if unapplied:
        lines.append(credit(chart.UNAPPLIED_CASH, unapplied, data.customer_id))
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.payment,
        memo=(f"Payment {number} ({data.method})"
              + (f", ref {data.reference}" if data.reference else ""))[:500],
        currency=data.currency, posted_at=received_at, created_by=principal.name,
        source_type="payment", source_id=payment_id, lines=lines)
    payment = Payment(
        id=payment_id, number=number, customer_id=data.customer_id, currency=data.currency,
        amount_minor=data.amount_minor, method=data.method, reference=data.reference,
        received_at=received_at, unapplied_minor=unapplied, unapplied_remaining_minor=unapplied,
        status=PaymentStatus.posted, journal_entry_id=posted.entry.id,
        created_by=principal.name, created_at=now, updated_at=now)
    session.add(payment)
    await session.flush()
    closed, rows = [], []
    for a in plan:
        rows.append(PaymentAllocation(payment_id=payment.id, invoice_id=a.invoice.id,
                                      amount_minor=a.amount_minor, kind=AllocationKind.payment,
                                      journal_entry_id=posted.entry.id, created_at=now))
        if _apply_payment(a.invoice, a.amount_minor, paid_at=received_at, now=now):
            closed.append(a.invoice)
    session.add_all(rows)
    if unapplied:
        balance.unapplied_minor += unapplied
        touch(balance, now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="payment.received", source="ledger", subject=payment.id, data={
            "payment_id": payment.id, "number": payment.number,
            "customer_id": payment.customer_id, "amount_minor": payment.amount_minor,
            "currency": payment.currency, "method": payment.method,
            "received_at": payment.received_at.isoformat(),
            "allocations": _allocation_data(plan), "unapplied_minor": unapplied}))
    for invoice in closed:
        await _invoice_paid(outbox, session, clock, invoice)
    return PaymentView(payment, rows, {a.invoice.id: a.invoice.number for a in plan})


async def payment_views(session: AsyncSession, payments: list[Payment]) -> list[PaymentView]:
    """The payments with their allocations and the invoices' numbers, in two queries."""
    allocations = await repository.allocations_of(session, (p.id for p in payments))
    numbers = await repository.document_numbers(
        session, Invoice, (a.invoice_id for rows in allocations.values() for a in rows))
    return [PaymentView(p, allocations[p.id], numbers) for p in payments]


async def get_payment(session: AsyncSession, payment_id: str) -> PaymentView:
    """The payment with its allocations, or 404."""
    payment = await repository.get_payment(session, payment_id)
    if payment is None:
        raise PaymentNotFound(payment_id)
    return (await payment_views(session, [payment]))[0]


async def reverse_payment(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                          principal: Principal, payment_id: str, reason: str) -> Payment:
    """Undo a payment that did not hold (a bounced transfer), once.

    One reversal entry takes the money back off cash and puts it back where the payment
    took it from: receivables of every invoice it paid (when received or later from its
    unapplied cash) and the unapplied cash it still had.
    """
    found = await repository.get_payment(session, payment_id)
    if found is None:
        raise PaymentNotFound(payment_id)
    now = clock.now()
    balance = await repository.lock_customer_balance(
        session, customer_id=found.customer_id, currency=found.currency, now=now)
    payment = await repository.get_payment(session, payment_id, for_update=True)
    assert payment is not None
    if payment.status == PaymentStatus.reversed:
        raise PaymentAlreadyReversed(payment.number, payment.reversal_entry_id)
    if payment.refunded_minor:
        raise GuardFailed("not_refunded", f"{payment.refunded_minor} of payment "
                          f"{payment.number}'s unapplied cash was refunded to the customer; "
                          "reverse that refund first (POST /v1/refunds/{id}/reverse).",
                          refunded_minor=payment.refunded_minor)
    restored: dict[str, int] = {}
    for allocation in (await repository.allocations_of(session, [payment.id]))[payment.id]:
        restored[allocation.invoice_id] = restored.get(allocation.invoice_id, 0) + allocation.amount_minor
    invoices = await repository.lock_invoices(session, restored)
    for invoice_id, amount in restored.items():
        invoice = invoices[invoice_id]
        invoice.outstanding_minor += amount
        invoice.paid_minor -= amount
        touch(invoice, now)
        settle_status(invoice, closed_at=now)
    back_to_receivables = sum(restored.values())
    remaining = payment.unapplied_remaining_minor
    lines = [credit(_cash_account(payment.method), payment.amount_minor)]
    if back_to_receivables:
        lines.append(debit(chart.RECEIVABLES, back_to_receivables, payment.customer_id))
    if remaining:
        lines.append(debit(chart.UNAPPLIED_CASH, remaining, payment.customer_id))
    reversal = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.reversal,
        memo=f"Reversal of payment {payment.number}: {reason}"[:500], currency=payment.currency,
        created_by=principal.name, source_type="payment", source_id=payment.id,
        reverses_entry_id=payment.journal_entry_id, lines=lines)
    if payment.journal_entry_id is not None and not await repository.mark_reversed(
            session, payment.journal_entry_id, reversal.entry.id):
        raise PaymentAlreadyReversed(payment.number, None)
    if remaining:
        balance.unapplied_minor -= remaining
        touch(balance, now)
    payment.status = PaymentStatus.reversed
    payment.reversed_at = now
    payment.reversal_entry_id = reversal.entry.id
    payment.reversal_reason = reason
    payment.unapplied_remaining_minor = 0
    touch(payment, now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="payment.reversed", source="ledger", subject=payment.id, data={
            "payment_id": payment.id, "number": payment.number,
            "customer_id": payment.customer_id, "currency": payment.currency,
            "amount_minor": payment.amount_minor, "reason": reason,
            "restored": [{"invoice_id": i, "invoice_number": invoices[i].number,
                          "amount_minor": a, "outstanding_minor": invoices[i].outstanding_minor}
                         for i, a in restored.items()],
            "unapplied_reversed_minor": remaining}))
    return payment


# ---------------------------------------------------------------- unapplied cash


async def unapplied_balances(session: AsyncSession, customer_id: str) -> list[CustomerBalance]:
    """The customer's unapplied cash, one row per currency it ever had."""
    return await repository.customer_balances(session, customer_id)


@dataclass
class UnappliedApplication:
    customer_id: str
    currency: str
    allocated_minor: int
    unapplied_minor: int
    journal_entry_id: str
    allocations: list[PaymentAllocation]
    invoice_numbers: dict[str, str]


async def apply_unapplied(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                          principal: Principal, customer_id: str,
                          data: UnappliedAllocationCreate) -> UnappliedApplication:
    """Apply the customer's unapplied cash to invoices: Dr unapplied / Cr receivables.

    The cash is drawn from the customer's payments oldest received first, so a later
    reversal of one of them knows which invoices to reopen.
    """
    now = clock.now()
    balance = await repository.lock_customer_balance(
        session, customer_id=customer_id, currency=data.currency, now=now)
    available = balance.unapplied_minor
    if available == 0:
        raise DocumentRefused("allocation", [{
            "field": "currency", "message": f"customer {customer_id} has no unapplied "
                                            f"{data.currency} cash"}])
    if data.allocations is not None:
        plan = await _explicit_allocations(
            session, customer_id=customer_id, currency=data.currency, wanted=data.allocations,
            available=available, available_what="unapplied balance", what="allocation")
    else:
        plan = await _oldest_due_first(session, customer_id=customer_id,
                                       currency=data.currency, amount=available)
    total = sum(a.amount_minor for a in plan)
    if total == 0:
        raise DocumentRefused("allocation", [{
            "field": "allocations", "message": f"customer {customer_id} has no open invoice in "
                                               f"{data.currency}"}])
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.allocation,
        memo=("Unapplied cash applied to " + ", ".join(a.invoice.number for a in plan))[:500],
        currency=data.currency, created_by=principal.name, source_type="allocation",
        lines=[debit(chart.UNAPPLIED_CASH, total, customer_id),
               credit(chart.RECEIVABLES, total, customer_id)])
    payments = iter(await repository.payments_with_unapplied(
        session, customer_id=customer_id, currency=data.currency))
    rows: list[PaymentAllocation] = []
    closed = []
    payment: Payment | None = None
    for a in plan:
        left, latest = a.amount_minor, None
        while left > 0:
            if payment is None or payment.unapplied_remaining_minor == 0:
                payment = next(payments)  # Σ remaining = the balance, locked above
            take = min(left, payment.unapplied_remaining_minor)
            payment.unapplied_remaining_minor -= take
            touch(payment, now)
            rows.append(PaymentAllocation(payment_id=payment.id, invoice_id=a.invoice.id,
                                          amount_minor=take, kind=AllocationKind.unapplied,
                                          journal_entry_id=posted.entry.id, created_at=now))
            latest = max(latest or payment.received_at, payment.received_at)
            left -= take
        if _apply_payment(a.invoice, a.amount_minor, paid_at=latest or now, now=now):
            closed.append(a.invoice)
    session.add_all(rows)
    balance.unapplied_minor -= total
    touch(balance, now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="unapplied_cash.applied", source="ledger", subject=customer_id, data={
            "customer_id": customer_id, "currency": data.currency, "allocated_minor": total,
            "allocations": _allocation_data(plan), "unapplied_minor": balance.unapplied_minor,
            "journal_entry_id": posted.entry.id}))
    for invoice in closed:
        await _invoice_paid(outbox, session, clock, invoice)
    return UnappliedApplication(customer_id, data.currency, total, balance.unapplied_minor,
                                posted.entry.id, rows, {a.invoice.id: a.invoice.number for a in plan})
