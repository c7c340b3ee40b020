"""An order's terms as data: the snapshot a revision keeps, and what its invoice asks.

`terms_of` is what `order_revisions` keeps when a revise or an applied change request replaces
the terms (`keep_revision`) and what `order.changed` compares; `settlement_amount` is the
amount settle invoices.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.orders.models import Order, OrderRevision
from shared.money import line_total


def terms_of(order: Order) -> dict[str, Any]:
    """The order's terms as data: what a revision snapshot keeps and `order.changed` compares."""
    return {
        "currency": order.currency, "payment_method": order.payment_method,
        "payment_terms_days": order.payment_terms_days,
        "delivery_date": order.delivery_date.isoformat() if order.delivery_date else None,
        "delivery_place": order.delivery_place, "total_minor": order.total_minor,
        "lines": [{"id": line.id, "position": line.position, "sku": line.sku, "name": line.name,
                   "specification": line.specification, "quantity": str(line.quantity.quantize(
                       Decimal("0.001"))), "unit_price_minor": line.unit_price_minor,
                   "quality_standard": line.quality_standard, "total_minor": line.total_minor}
                  for line in order.lines]}


def keep_revision(session: AsyncSession, order: Order, *, actor: str, at: datetime, trigger: str,
                  change_request_id: str | None = None) -> None:
    """Keep the terms of the order's current revision before a new one replaces them."""
    session.add(OrderRevision(order_id=order.id, revision=order.revision, terms=terms_of(order),
                              replaced_at=at, replaced_by=actor, replaced_by_trigger=trigger,
                              replaced_by_change_request_id=change_request_id))


def settlement_amount(order: Order) -> int:
    """What the invoice asks: per line, delivered quantity × unit price (half-even) − returns."""
    return sum(line_total(line.delivered_quantity, line.unit_price_minor)
               - line_total(line.returned_quantity, line.unit_price_minor) for line in order.lines)

