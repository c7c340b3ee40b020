"""Every query of the credit service."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit.models import Customer
from shared.pagination import after_keyset


async def get_customer(session: AsyncSession, customer_id: str) -> Customer | None:
    return await session.get(Customer, customer_id)


async def list_customers(session: AsyncSession, *, limit: int, after: tuple[datetime, str] | None,
                         salesperson_id: str | None, name: str | None,
                         registration_no: str | None) -> list[Customer]:
    stmt = select(Customer)
    if salesperson_id is not None:
        stmt = stmt.where(Customer.salesperson_id == salesperson_id)
    if registration_no is not None:
        stmt = stmt.where(Customer.registration_no == registration_no)
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Customer.name.ilike(f"%{escaped}%", escape="\\"))
    stmt = stmt.where(after_keyset(Customer.created_at, Customer.id, after))
    stmt = stmt.order_by(Customer.created_at, Customer.id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def bump_version(session: AsyncSession, customer_id: str, expected: int,
                       values: dict[str, object]) -> bool:
    """Compare-and-set update; False when another writer changed the row first."""
    result = await session.execute(
        update(Customer).where(Customer.id == customer_id, Customer.version == expected)
        .values(**values, version=expected + 1))
    return result.rowcount == 1
