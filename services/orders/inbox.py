"""What the orders service does with the events it subscribes to: `invoice.paid` closes the
order once nothing is outstanding (prepare reads ledger before any lock; the handler locks
and fires `close`). `app.py` registers the pair with the subscriber."""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.orders import repository, service, steps
from services.orders.context import OrdersContext
from services.orders.errors import StepInProgress
from services.orders.models import OrderState
from services.orders.steps import SYSTEM_ACTOR
from shared.errors import DependencyUnavailable, GuardFailed
from shared.events import Event

log = logging.getLogger("o2c.orders")


async def close_when_paid_prepare(app: Any, event: Event) -> int | None:
    """`invoice.paid`: what ledger says is outstanding on the order, asked before any lock
    (None: nothing to close, or ledger knows no invoice). An order whose settlement is still
    in progress cannot close yet: the inbox answers 503 and notifier delivers the event again
    (on the internal schedule, within seconds) — else a payment that came between the invoice
    and the end of the settlement would leave the order invoiced for ever."""
    order_id = str(event.data.get("order_id") or "")
    if not order_id:
        return None
    ctx: OrdersContext = app.state.context
    async with ctx.db.session(read_only=True) as session:
        order = await repository.get_order(session, order_id)
    if order is not None and steps.pending(order, "settle") is not None:
        raise DependencyUnavailable(f"Order {order.number} is being settled; deliver "
                                    "invoice.paid again once it is invoiced.", dependency="orders")
    if order is None or order.state != OrderState.invoiced:
        return None
    balance = await ctx.ledger.order_balance(order_id)
    return balance.outstanding_minor if balance is not None else None


async def close_when_paid(session: AsyncSession, app: Any, event: Event,
                          outstanding_minor: int | None) -> None:
    """`invoice.paid` from ledger (via notifier): close the order if its guards hold."""
    order_id = str(event.data.get("order_id") or "")
    order = await repository.lock_order(session, order_id) if order_id else None
    if order is None or order.state != OrderState.invoiced or outstanding_minor is None:
        log.info("invoice.paid for order %s: nothing to close", order_id or "?")
        return
    try:
        await service.close_order(session=session, ctx=app.state.context, actor=SYSTEM_ACTOR, order=order,
                          outstanding_minor=outstanding_minor, reason="invoice paid")
    except (GuardFailed, StepInProgress) as refused:
        log.info("order %s stays invoiced: %s", order.id, refused.detail)
