"""Every query of write-offs and recoveries."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.writeoffs.models import WriteOff, WriteOffRecovery, WriteOffStatus
from shared.pagination import Keyset, Page, keyset_page


async def get(session: AsyncSession, write_off_id: str, *, for_update: bool = False
              ) -> WriteOff | None:
    """The write-off; `for_update` locks its row (PostgreSQL) and re-reads it."""
    if not for_update:
        return await session.get(WriteOff, write_off_id)
    stmt = (select(WriteOff).where(WriteOff.id == write_off_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def proposed_for_invoice(session: AsyncSession, invoice_id: str) -> WriteOff | None:
    stmt = select(WriteOff).where(WriteOff.invoice_id == invoice_id,
                                  WriteOff.status == WriteOffStatus.proposed).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()


async def recoveries_of(session: AsyncSession, write_off_ids: Iterable[str]
                        ) -> dict[str, list[WriteOffRecovery]]:
    ids = list(write_off_ids)
    result: dict[str, list[WriteOffRecovery]] = {i: [] for i in ids}
    if not ids:
        return result
    rows = await session.execute(select(WriteOffRecovery)
                                 .where(WriteOffRecovery.write_off_id.in_(ids))
                                 .order_by(WriteOffRecovery.created_at, WriteOffRecovery.id))
    for recovery in rows.scalars():
        result[recovery.write_off_id].append(recovery)
    return result


async def list_write_offs(session: AsyncSession, *, limit: int, cursor: str | None,
                          status: str | None, customer_id: str | None, invoice_id: str | None,
                          salesperson_id: str | None) -> Page[WriteOff]:
    stmt = select(WriteOff)
    if status is not None:
        stmt = stmt.where(WriteOff.status == status)
    if customer_id is not None:
        stmt = stmt.where(WriteOff.customer_id == customer_id)
    if invoice_id is not None:
        stmt = stmt.where(WriteOff.invoice_id == invoice_id)
    if salesperson_id is not None:
        stmt = stmt.where(WriteOff.salesperson_id == salesperson_id)
    return await keyset_page(session, stmt, Keyset(WriteOff.created_at, WriteOff.id),
                             limit=limit, cursor=cursor)
