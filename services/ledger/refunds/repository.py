"""Every query of refunds."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.ledger.models import Payment
from services.ledger.refunds.models import Refund, RefundDraw
from shared.pagination import Keyset, Page, keyset_page


async def get(session: AsyncSession, refund_id: str, *, for_update: bool = False) -> Refund | None:
    """The refund; `for_update` locks its row (PostgreSQL) and re-reads it."""
    if not for_update:
        return await session.get(Refund, refund_id)
    stmt = (select(Refund).where(Refund.id == refund_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def draws_of(session: AsyncSession, refund_id: str) -> list[tuple[RefundDraw, Payment]]:
    """The payments a refund drew on, each locked, in the order drawn."""
    stmt = (select(RefundDraw, Payment).join(Payment, Payment.id == RefundDraw.payment_id)
            .where(RefundDraw.refund_id == refund_id).order_by(RefundDraw.id)
            .with_for_update(of=Payment).execution_options(populate_existing=True))
    return [(draw, payment) for draw, payment in await session.execute(stmt)]


async def list_refunds(session: AsyncSession, *, limit: int, cursor: str | None,
                       customer_id: str | None, status: str | None) -> Page[Refund]:
    stmt = select(Refund)
    if customer_id is not None:
        stmt = stmt.where(Refund.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Refund.status == status)
    return await keyset_page(session, stmt, Keyset(Refund.created_at, Refund.id),
                             limit=limit, cursor=cursor)
