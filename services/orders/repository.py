"""Every query of the orders service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.orders.models import Order
from shared.pagination import after_keyset


async def get_order(session: AsyncSession, order_id: str) -> Order | None:
    """The order with its lines (loaded eagerly)."""
    return await session.get(Order, order_id)


async def list_orders(session: AsyncSession, *, limit: int, after: tuple[datetime, str] | None,
                      customer_id: str | None = None, salesperson_id: str | None = None,
                      state: str | None = None, created_from: datetime | None = None,
                      created_to: datetime | None = None,
                      external_ref: str | None = None) -> list[Order]:
    """Orders oldest first, after the cursor `(created_at, id)`; `created_to` is exclusive."""
    stmt = select(Order)
    if customer_id is not None:
        stmt = stmt.where(Order.customer_id == customer_id)
    if salesperson_id is not None:
        stmt = stmt.where(Order.salesperson_id == salesperson_id)
    if state is not None:
        stmt = stmt.where(Order.state == state)
    if external_ref is not None:
        stmt = stmt.where(Order.external_ref == external_ref)
    if created_from is not None:
        stmt = stmt.where(Order.created_at >= created_from)
    if created_to is not None:
        stmt = stmt.where(Order.created_at < created_to)
    stmt = stmt.where(after_keyset(Order.created_at, Order.id, after))
    stmt = stmt.order_by(Order.created_at, Order.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def bump_draft_version(session: AsyncSession, order_id: str, expected: int,
                             values: dict[str, Any]) -> bool:
    """Compare-and-set on a draft; False when another writer changed or moved it first."""
    result = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.version == expected, Order.state == "draft")
        .values(**values, version=expected + 1)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1
