"""Refunds: propose (posted at once up to the approval amount) → approve by another principal →
posted → reversed; or rejected.

Posting takes the customer's balance row first, like every movement of a customer's money, so
a refund and an allocation of the same unapplied cash run one after the other and the cash is
never paid back and applied both. It draws on the payments oldest received first and records
each draw, which a reversal gives back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger import chart
from services.ledger import repository as ledger_repository
from services.ledger.errors import DocumentRefused
from services.ledger.models import CustomerBalance, EntryKind, Payment, counters
from services.ledger.posting import credit, debit, post_entry
from services.ledger.refunds import repository
from services.ledger.refunds.errors import RefundNotFound
from services.ledger.refunds.models import Refund, RefundDraw, RefundStatus
from services.ledger.refunds.schemas import RefundCreate
from shared.auth import Principal
from shared.clock import Clock
from shared.errors import GuardFailed, InvalidTransition
from shared.events import new_event
from shared.numbering import next_number
from shared.outbox import Outbox

ALLOWED = {RefundStatus.proposed: ["approve", "reject"], RefundStatus.posted: ["reverse"],
           RefundStatus.rejected: [], RefundStatus.reversed: []}


def _touch(row: Refund | Payment | CustomerBalance, now: datetime) -> None:
    row.version += 1
    row.updated_at = now


def _event_data(refund: Refund) -> dict[str, object]:
    return {"refund_id": refund.id, "number": refund.number, "customer_id": refund.customer_id,
            "currency": refund.currency, "amount_minor": refund.amount_minor,
            "method": refund.method, "reference": refund.reference, "reason": refund.reason,
            "refunded_at": refund.refunded_at.isoformat(), "status": refund.status}


async def get(session: AsyncSession, refund_id: str) -> Refund:
    refund = await repository.get(session, refund_id)
    if refund is None:
        raise RefundNotFound(refund_id)
    return refund


async def _locked(session: AsyncSession, refund_id: str, trigger: str, *,
                  status: RefundStatus) -> Refund:
    """The refund locked, in `status` (409 invalid_transition otherwise)."""
    found = await get(session, refund_id)
    refund = await repository.get(session, found.id, for_update=True)
    assert refund is not None
    if refund.status != status:
        raise InvalidTransition(f"Refund {refund.number} is {refund.status}; it cannot be "
                                f"{trigger}.", state=refund.status, allowed=ALLOWED[refund.status])
    return refund


async def propose(*, session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                  data: RefundCreate, approval_above_minor: int) -> Refund:
    """Record a refund; post it at once when it is at most `approval_above_minor`."""
    now = clock.now()
    refunded_at = (data.refunded_at or now).astimezone(UTC)
    errors = []
    if refunded_at > now:
        errors.append({"field": "refunded_at", "message": "must not be in the future"})
    balance = await ledger_repository.lock_customer_balance(
        session, customer_id=data.customer_id, currency=data.currency, now=now)
    if data.amount_minor > balance.unapplied_minor:
        errors.append(_more_than_unapplied(data.amount_minor, balance))
    if errors:
        raise DocumentRefused("refund", errors)
    refund = Refund(
        number=await next_number(session, counters, "refund", "RF"),
        customer_id=data.customer_id, currency=data.currency, amount_minor=data.amount_minor,
        method=data.method, reference=data.reference, reason=data.reason,
        refunded_at=refunded_at, status=RefundStatus.proposed, proposed_by=principal.name,
        created_at=now, updated_at=now)
    session.add(refund)
    await session.flush()
    if data.amount_minor <= approval_above_minor:
        await _post(session, outbox, clock, principal, refund, balance)
        return refund
    await outbox.enqueue(session, new_event(
        clock, type="refund.proposed", source="ledger", subject=refund.id,
        data={**_event_data(refund), "proposed_by": principal.name,
              "approval_above_minor": approval_above_minor}))
    return refund


def _more_than_unapplied(amount: int, balance: CustomerBalance) -> dict[str, str]:
    return {"field": "amount_minor",
            "message": f"{amount} is more than the customer's {balance.unapplied_minor} "
                       f"{balance.currency} of unapplied cash"}


async def approve(*, session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                  refund_id: str) -> Refund:
    """Post a proposed refund; not by its proposer (four eyes), and only if the unapplied cash
    still covers it (it may have been applied to an invoice since)."""
    found = await get(session, refund_id)
    if found.proposed_by == principal.name:
        raise GuardFailed("four_eyes", f"Refund {found.number} was proposed by "
                                       f"{principal.name}; another finance principal must "
                                       "approve it.")
    now = clock.now()
    balance = await ledger_repository.lock_customer_balance(
        session, customer_id=found.customer_id, currency=found.currency, now=now)
    refund = await _locked(session, refund_id, "approved", status=RefundStatus.proposed)
    if refund.amount_minor > balance.unapplied_minor:
        raise GuardFailed("unapplied_covers_amount", _more_than_unapplied(
            refund.amount_minor, balance)["message"] + " now; reject this refund and propose "
                                                       "again.",
                          unapplied_minor=balance.unapplied_minor)
    await _post(session, outbox, clock, principal, refund, balance)
    return refund


async def _post(session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                refund: Refund, balance: CustomerBalance) -> None:
    """Dr unapplied cash / Cr cash, drawn from the payments oldest received first."""
    now = clock.now()
    posted = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.refund,
        memo=(f"Refund {refund.number}: {refund.reason}"
              + (f", ref {refund.reference}" if refund.reference else ""))[:500],
        currency=refund.currency, posted_at=refund.refunded_at, created_by=principal.name,
        source_type="refund", source_id=refund.id,
        lines=[debit(chart.UNAPPLIED_CASH, refund.amount_minor, refund.customer_id),
               credit(chart.CASH, refund.amount_minor)])
    left = refund.amount_minor
    for payment in await ledger_repository.payments_with_unapplied(
            session, customer_id=refund.customer_id, currency=refund.currency):
        if left == 0:
            break
        take = min(left, payment.unapplied_remaining_minor)
        payment.unapplied_remaining_minor -= take
        payment.refunded_minor += take
        _touch(payment, now)
        session.add(RefundDraw(refund_id=refund.id, payment_id=payment.id, amount_minor=take))
        left -= take
    assert left == 0, "the balance row says the payments hold at least this much"
    balance.unapplied_minor -= refund.amount_minor
    _touch(balance, now)
    refund.status = RefundStatus.posted
    refund.approved_by = principal.name
    refund.journal_entry_id = posted.entry.id
    _touch(refund, now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="refund.posted", source="ledger", subject=refund.id,
        data={**_event_data(refund), "proposed_by": refund.proposed_by,
              "approved_by": principal.name, "journal_entry_id": posted.entry.id,
              "unapplied_minor": balance.unapplied_minor}))


async def reject(*, session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                 refund_id: str, reason: str) -> Refund:
    """Turn a proposed refund down; nothing was posted, so nothing is undone."""
    refund = await _locked(session, refund_id, "rejected", status=RefundStatus.proposed)
    refund.status = RefundStatus.rejected
    refund.rejected_by = principal.name
    refund.rejection_reason = reason
    _touch(refund, clock.now())
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="refund.rejected", source="ledger", subject=refund.id,
        data={**_event_data(refund), "rejected_by": principal.name, "rejection_reason": reason}))
    return refund


async def reverse(*, session: AsyncSession, outbox: Outbox, clock: Clock, principal: Principal,
                  refund_id: str, reason: str) -> Refund:
    """The money came back (a returned transfer): Dr cash / Cr unapplied cash, each payment's
    unapplied cash given back what the refund drew on it. Once."""
    found = await get(session, refund_id)
    now = clock.now()
    balance = await ledger_repository.lock_customer_balance(
        session, customer_id=found.customer_id, currency=found.currency, now=now)
    refund = await _locked(session, refund_id, "reversed", status=RefundStatus.posted)
    reversal = await post_entry(
        session, outbox=outbox, clock=clock, kind=EntryKind.reversal,
        memo=f"Reversal of refund {refund.number}: {reason}"[:500], currency=refund.currency,
        created_by=principal.name, source_type="refund", source_id=refund.id,
        reverses_entry_id=refund.journal_entry_id,
        lines=[debit(chart.CASH, refund.amount_minor),
               credit(chart.UNAPPLIED_CASH, refund.amount_minor, refund.customer_id)])
    if refund.journal_entry_id is not None:
        await ledger_repository.mark_reversed(session, refund.journal_entry_id, reversal.entry.id)
    for draw, payment in await repository.draws_of(session, refund.id):
        payment.unapplied_remaining_minor += draw.amount_minor
        payment.refunded_minor -= draw.amount_minor
        _touch(payment, now)
    balance.unapplied_minor += refund.amount_minor
    _touch(balance, now)
    refund.status = RefundStatus.reversed
    refund.reversal_entry_id = reversal.entry.id
    refund.reversed_at = now
    refund.reversal_reason = reason
    _touch(refund, now)
    await session.flush()
    await outbox.enqueue(session, new_event(
        clock, type="refund.reversed", source="ledger", subject=refund.id,
        data={**_event_data(refund), "reversed_by": principal.name, "reversal_reason": reason,
              "reversal_entry_id": reversal.entry.id, "unapplied_minor": balance.unapplied_minor}))
    return refund
