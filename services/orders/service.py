"""Use cases of the orders service: check, compare-and-set, change, outbox event."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.orders import repository
from services.orders.clients import CreditClient
from services.orders.errors import (
    AmountTooLarge,
    DeliveryDateInPast,
    NotADraft,
    OrderChanged,
    OrderNotFound,
    UnknownCustomer,
)
from services.orders.models import Order, OrderLine, OrderState, counters
from services.orders.schemas import OrderCreate, OrderLineIn, OrderUpdate
from shared.auth import Principal
from shared.clock import Clock
from shared.events import Event, new_event
from shared.money import MAX_MINOR, line_total
from shared.numbering import next_number
from shared.outbox import Outbox

# The triggers each state allows (DESIGN.md §4), reported with `invalid_transition` until
# the order machine (lifecycle.py) owns this table.
TRIGGERS_FROM: dict[str, list[str]] = {
    OrderState.draft: ["update", "submit", "cancel"],
    OrderState.in_review: ["review", "credit-recheck", "cancel"],
    OrderState.approved: ["sign-contract", "cancel"],
    OrderState.rejected: ["revise", "cancel"],
    OrderState.contracted: ["start-fulfillment", "cancel"],
    OrderState.in_fulfillment: ["deliveries"],
    OrderState.delivered: ["settle"],
    OrderState.invoiced: ["close"],
    OrderState.closed: [],
    OrderState.cancelled: [],
}


def _order_event(clock: Clock, type_: str, order: Order, **extra: Any) -> Event:
    return new_event(clock, type=type_, source="orders", subject=order.id, data={
        "order_id": order.id, "number": order.number, "customer_id": order.customer_id,
        "salesperson_id": order.salesperson_id, "total_minor": order.total_minor,
        "currency": order.currency, **extra})


def _check_delivery_date(clock: Clock, delivery_date: date | None) -> None:
    today = clock.today()
    if delivery_date is not None and delivery_date < today:
        raise DeliveryDateInPast(today.isoformat())


def _priced_lines(lines: Sequence[OrderLineIn]) -> tuple[list[OrderLine], int]:
    """Order lines with their half-even totals, and the order total; refuses absurd amounts."""
    priced, errors, total = [], [], 0
    for i, line in enumerate(lines):
        amount = line_total(line.quantity, line.unit_price_minor)
        if amount > MAX_MINOR:
            errors.append({"field": f"lines[{i}]",
                           "message": f"quantity × unit_price_minor exceeds {MAX_MINOR} minor units"})
        total += amount
        priced.append(OrderLine(
            position=i + 1, sku=line.sku, name=line.name, specification=line.specification,
            quantity=line.quantity, unit_price_minor=line.unit_price_minor,
            quality_standard=line.quality_standard, total_minor=amount))
    if not errors and total > MAX_MINOR:
        errors.append({"field": "lines", "message": f"order total exceeds {MAX_MINOR} minor units"})
    if errors:
        raise AmountTooLarge(errors)
    return priced, total


async def get_visible(session: AsyncSession, principal: Principal, order_id: str) -> Order:
    """The order, or 404 when it does not exist or belongs to another salesperson."""
    order = await repository.get_order(session, order_id)
    if order is None or not principal.can_see(order.salesperson_id):
        raise OrderNotFound(order_id)
    return order


async def create_order(*, session: AsyncSession, outbox: Outbox, clock: Clock, credit: CreditClient,
                       principal: Principal, data: OrderCreate) -> Order:
    """Create a draft order for a customer credit knows; its salesperson is the customer's."""
    _check_delivery_date(clock, data.delivery_date)
    lines, total = _priced_lines(data.lines)
    # Ask credit before writing anything: if it does not answer, nothing is stored.
    customer = await credit.get_customer(data.customer_id)
    if customer is None or not principal.can_see(customer.salesperson_id):
        raise UnknownCustomer(data.customer_id)
    now = clock.now()
    order = Order(
        number=await next_number(session, counters, "order", "SO"),
        customer_id=customer.id, salesperson_id=customer.salesperson_id,
        external_ref=data.external_ref, currency=data.currency,
        payment_method=data.payment_method.value if data.payment_method else None,
        payment_terms_days=data.payment_terms_days, delivery_date=data.delivery_date,
        delivery_place=data.delivery_place, total_minor=total, lines=lines,
        created_by=principal.name, created_at=now, updated_at=now)
    session.add(order)
    await session.flush()
    await outbox.enqueue(session, _order_event(clock, "order.created", order))
    return order


async def update_order(*, session: AsyncSession, outbox: Outbox, clock: Clock,
                       order: Order, data: OrderUpdate) -> Order:
    """Change a draft's terms or lines (lines replace the whole list); version + 1."""
    if order.state != OrderState.draft:
        raise NotADraft(order.id, order.state, TRIGGERS_FROM.get(order.state, []))
    changes = data.model_dump(exclude_unset=True, exclude={"lines"})
    changed = sorted(data.model_fields_set)
    if not changed:
        return order
    if "delivery_date" in changes:
        _check_delivery_date(clock, changes["delivery_date"])
    if changes.get("payment_method") is not None:
        changes["payment_method"] = changes["payment_method"].value
    lines: list[OrderLine] | None = None
    if data.lines is not None:
        lines, changes["total_minor"] = _priced_lines(data.lines)
    if not await repository.bump_draft_version(session, order.id, order.version,
                                               {**changes, "updated_at": clock.now()}):
        raise OrderChanged(order.id)
    if lines is not None:
        order.lines.clear()
        await session.flush()  # delete the old lines before their positions are reused
        order.lines.extend(lines)
        await session.flush()
    await session.refresh(order)
    await outbox.enqueue(session, _order_event(clock, "order.updated", order, changed=changed))
    return order
