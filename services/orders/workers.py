"""The orders service's periodic work: ask credit again for unanswered reservations, report
reviews past their deadline. `app.py` runs one pass of each on its schedule (the step recovery
worker lives with the steps, in `steps.py`)."""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.orders import credit_blocks, lifecycle, repository, service, steps
from services.orders.context import OrdersContext
from services.orders.errors import StepInProgress
from services.orders.models import CreditStatus, Order, OrderState
from services.orders.payloads import order_event
from services.orders.steps import SYSTEM_ACTOR
from shared.errors import DependencyUnavailable, GuardFailed
from shared.observability import work_request_id

log = logging.getLogger("o2c.orders")


async def retry_pending_credit(*, ctx: OrdersContext, limit: int = 100) -> int:
    """Ask credit again for every order whose reservation has no answer; returns how many got one.

    Each order is asked with the idempotency key of its unanswered request, so credit never
    reserves twice — read, ask, then lock and write: no transaction is open while credit is
    asked. Once it answers, the order is approved if its departments already did. Stops at the
    first order credit does not answer for (credit is still down).
    """
    with work_request_id():
        async with ctx.db.session(read_only=True) as session:
            waiting = [o for o in [await repository.get_order(session, order_id) for order_id in
                                   await repository.orders_awaiting_credit(session, limit=limit)]
                       if o is not None]
        answered = 0
        for order in waiting:
            key = (order.credit or {}).get("request_key") or credit_blocks.reservation_key(order)
            try:
                reply = await ctx.credit.reserve(**steps.reservation_request(order), idempotency_key=key)
            except DependencyUnavailable:
                log.info("credit still does not answer; %d order(s) wait for a reservation",
                         len(waiting) - answered)
                break
            async with ctx.db.session() as session, session.begin():
                locked = await repository.lock_order(session, order.id, skip_locked=True)
                credit_now = (locked.credit or {}) if locked is not None else {}
                if locked is None or locked.state != OrderState.in_review or \
                        credit_now.get("status") != CreditStatus.pending or \
                        (credit_now.get("request_key") or credit_blocks.reservation_key(locked)) != key:
                    continue
                locked.credit = credit_blocks.credit_block(reply)
                locked.version += 1
                locked.updated_at = ctx.clock.now()
                answered += 1
                await _approve_if_ready(session=session, ctx=ctx, order=locked)
        return answered


async def _approve_if_ready(*, session: AsyncSession, ctx: OrdersContext, order: Order) -> None:
    """Fire `approve` after a credit answer; its guards refusing just leaves the order in review."""
    try:
        await service.approve_order(session=session, ctx=ctx, actor=SYSTEM_ACTOR, order=order)
    except (GuardFailed, StepInProgress) as refused:
        log.info("order %s stays in review: %s", order.id, refused.detail)


async def scan_review_deadlines(*, session: AsyncSession, ctx: OrdersContext, as_of: datetime) -> list[str]:
    """Emit `order.review_overdue` once per revision for orders in review past their deadline."""
    reported = []
    for order in await repository.claim_overdue_reviews(session, as_of=as_of):
        opinions = await lifecycle.opinions(session, order)
        waiting = [d for d in ctx.settings.review_departments if d not in opinions]
        order.review_overdue_notified_at = ctx.clock.now()
        await ctx.outbox.enqueue(session, order_event(
            ctx.clock, "order.review_overdue", order, revision=order.revision,
            review_due_at=order.review_due_at.isoformat() if order.review_due_at else None,
            as_of=as_of.isoformat(), waiting_for=waiting))
        reported.append(order.id)
    await session.flush()
    return reported


async def scan_review_deadlines_once(*, ctx: OrdersContext, as_of: datetime | None = None) -> list[str]:
    """The periodic scan, and the one an admin asks for: one transaction, as of now unless told."""
    with work_request_id():
        async with ctx.db.session() as session, session.begin():
            return await scan_review_deadlines(session=session, ctx=ctx,
                                               as_of=as_of or ctx.clock.now())
