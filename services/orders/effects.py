"""The order machine's effects: what a fired row changes on the order, in the caller's transaction.

Each effect takes the trigger's `AsyncEventData`; its model is the `OrderLifecycle` binding
(`order`, `facts`, `effects`). Effects are local: none calls another service. What a step got
from credit or ledger before the trigger fired arrives in the facts, and the effects keep it
on the order (`keep_reservation`, `keep_invoice`, …). `lifecycle.TRANSITIONS` names the
effects of each row, run in the order listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from transitions.extensions.asyncio import AsyncEventData

from services.orders import repository
from services.orders.credit_blocks import (
    holds_reservation,
    needs_reservation,
    not_required_block,
    pending_block,
    reservation_key,
)
from services.orders.models import CreditStatus
from services.orders.terms import keep_revision
from services.orders.working_days import add_working_days

if TYPE_CHECKING:
    from services.orders.lifecycle import Opinion, OrderLifecycle


def _binding(event: AsyncEventData) -> OrderLifecycle:
    return event.model


async def schedule_review(event: AsyncEventData) -> None:
    """Review due = submission + N working days (weekends and holidays skipped)."""
    b = _binding(event)
    b.order.review_due_at = add_working_days(b.effects.clock.now(), b.effects.review_sla_working_days,
                                             b.effects.holidays)
    b.order.review_overdue_notified_at = None


async def keep_reservation(event: AsyncEventData) -> None:
    """Keep credit's answer to the reservation the submit step asked for (`pending` with the key
    to ask again when credit did not answer); prepaid and free orders need none."""
    b = _binding(event)
    order = b.order
    if not needs_reservation(order):
        order.credit = not_required_block()
    elif b.facts.credit is not None:
        order.credit = dict(b.facts.credit)
    else:
        order.credit = pending_block(reservation_key(order))


async def store_opinion(event: AsyncEventData) -> None:
    """Store the department's opinion on this revision, replacing its earlier one."""
    b = _binding(event)
    opinion: Opinion = event.kwargs["opinion"]
    await repository.upsert_review(
        b.effects.session, order_id=b.order.id, revision=b.order.revision,
        department=opinion.department, decision=opinion.decision, comment=opinion.comment,
        by=b.effects.actor, at=b.effects.clock.now())


async def store_credit_answer(event: AsyncEventData) -> None:
    """Keep credit's latest answer on the order."""
    b = _binding(event)
    if b.facts.credit is not None:
        b.order.credit = dict(b.facts.credit)


async def keep_release(event: AsyncEventData) -> None:
    """Keep what credit said when the step gave the reservation back (`released`)."""
    b = _binding(event)
    if b.facts.credit is not None:
        b.order.credit = {k: v for k, v in b.facts.credit.items() if k != "request_key"}


async def start_new_revision(event: AsyncEventData) -> None:
    """Back to draft as revision + 1 (the old terms are kept): fresh credit, no reviews, no deadline."""
    b = _binding(event)
    keep_revision(b.effects.session, b.order, actor=b.effects.actor, at=b.effects.clock.now(),
                  trigger="revise")
    b.order.revision += 1
    b.order.credit = {"status": CreditStatus.pending.value, "reservation_id": None, "reasons": []}
    b.order.review_due_at = None
    b.order.review_overdue_notified_at = None


async def record_contract(event: AsyncEventData) -> None:
    """Keep the signed contract's number and signing time; the reservation stays."""
    b = _binding(event)
    b.order.contract_number = event.kwargs["contract_number"]
    b.order.contract_signed_at = event.kwargs["signed_at"]


async def keep_invoice(event: AsyncEventData) -> None:
    """Keep the invoice ledger issued in the step (settle; the contract of a prepaid order).

    A prepaid order was invoiced at contract already: settle keeps that invoice.
    """
    b = _binding(event)
    if b.order.invoice_id is None:
        b.order.invoice_id = b.facts.invoice_id


async def keep_conversion(event: AsyncEventData) -> None:
    """Credit converted the order's reservation into open receivables (the settle step)."""
    b = _binding(event)
    credit = dict(b.order.credit or {})
    if holds_reservation(credit):
        b.order.credit = {**credit, "status": CreditStatus.converted.value}

