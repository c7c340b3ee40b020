"""Every query of the orders service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, inspect, select, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from services.orders.models import (
    OPEN_CHANGE_REQUEST_STATES,
    CreditStatus,
    Order,
    OrderChangeRequest,
    OrderChangeReview,
    OrderException,
    OrderHistory,
    OrderReturn,
    OrderReview,
    OrderRevision,
    OrderState,
)
from shared.db import dialect_insert
from shared.pagination import Keyset, Page, keyset_page


async def get_order(session: AsyncSession, order_id: str) -> Order | None:
    """The order with its lines (loaded eagerly)."""
    return await session.get(Order, order_id)


async def list_orders(session: AsyncSession, *, limit: int, cursor: str | None,
                      customer_id: str | None = None, salesperson_id: str | None = None,
                      state: str | None = None, created_from: datetime | None = None,
                      created_to: datetime | None = None,
                      external_ref: str | None = None) -> Page[Order]:
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
    return await keyset_page(session, stmt, Keyset(Order.created_at, Order.id),
                             limit=limit, cursor=cursor)


async def bump_draft_version(session: AsyncSession, order_id: str, expected: int,
                             values: dict[str, Any]) -> bool:
    """Compare-and-set on a draft; False when another writer changed or moved it first."""
    result = await session.execute(
        update(Order)
        .where(Order.id == order_id, Order.version == expected, Order.state == "draft")
        .values(**values, version=expected + 1)
        .execution_options(synchronize_session=False))
    return result.rowcount == 1


async def lock_order(session: AsyncSession, order_id: str, *, skip_locked: bool = False) -> Order | None:
    """The order re-read under a row lock (`FOR UPDATE` on PostgreSQL; SQLite's write
    transaction, begun IMMEDIATE, already excludes other writers). None when it is gone or,
    with `skip_locked`, when another transaction holds it."""
    known = session.identity_map.get(identity_key(Order, order_id))
    if known is not None and not inspect(known).unloaded & _RELATED:
        return await _relock(session, known, skip_locked=skip_locked)
    stmt = (select(Order).where(Order.id == order_id)
            .with_for_update(skip_locked=skip_locked)
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalars().one_or_none()


_RELATED = frozenset({"lines", "reviews"})
_COLUMNS = [c.key for c in inspect(Order).column_attrs]


async def _relock(session: AsyncSession, order: Order, *, skip_locked: bool) -> Order | None:
    """Lock an order this session already read: one SELECT of its row, not three. Its lines and
    reviews are re-read only if its version moved, since whatever changes them (an update, a
    change applied, a review, a revision) is a new version of the order."""
    version = order.version
    try:
        await session.refresh(order, attribute_names=_COLUMNS,
                              with_for_update={"skip_locked": skip_locked} if skip_locked else True)
    except InvalidRequestError:  # gone, or (skip_locked) another transaction holds it
        return None
    if order.version != version:
        await session.refresh(order, attribute_names=list(_RELATED))
    return order


async def reviews_of(session: AsyncSession, order_id: str, revision: int) -> list[OrderReview]:
    """The current opinions on one revision of an order."""
    stmt = (select(OrderReview)
            .where(OrderReview.order_id == order_id, OrderReview.revision == revision)
            .order_by(OrderReview.department)
            .execution_options(populate_existing=True))  # opinions are upserted in Core
    return list((await session.execute(stmt)).scalars())


async def upsert_review(session: AsyncSession, *, order_id: str, revision: int, department: str,
                        decision: str, comment: str | None, by: str, at: datetime) -> None:
    """Store a department's opinion on a revision, replacing the one it gave before."""
    insert = dialect_insert(session)
    stmt = insert(OrderReview).values(
        id=str(uuid.uuid4()), order_id=order_id, revision=revision, department=department,
        decision=decision, comment=comment, by=by, at=at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["order_id", "revision", "department"],
        set_={"decision": decision, "comment": comment, "by": by, "at": at})
    await session.execute(stmt)


async def list_history(session: AsyncSession, order_id: str, *, limit: int,
                       after_seq: int | None) -> list[OrderHistory]:
    """An order's transitions, oldest first, after the cursor's sequence number."""
    stmt = select(OrderHistory).where(OrderHistory.order_id == order_id)
    if after_seq is not None:
        stmt = stmt.where(OrderHistory.seq > after_seq)
    stmt = stmt.order_by(OrderHistory.seq).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def orders_awaiting_credit(session: AsyncSession, *, limit: int) -> list[str]:
    """Ids of orders in review whose credit reservation has no answer yet, oldest first."""
    stmt = (select(Order.id)
            .where(Order.state == OrderState.in_review,
                   Order.credit["status"].as_string() == CreditStatus.pending.value)
            .order_by(Order.updated_at, Order.id).limit(limit))
    return list((await session.execute(stmt)).scalars())


async def orders_with_due_steps(session: AsyncSession, *, now: datetime, limit: int) -> list[str]:
    """Ids of orders whose pending step may be taken up now (steps.py), the longest due first."""
    stmt = (select(Order.id).where(Order.step_due_at.is_not(None), Order.step_due_at <= now)
            .order_by(Order.step_due_at, Order.id).limit(limit))
    return list((await session.execute(stmt)).scalars())


async def claim_overdue_reviews(session: AsyncSession, *, as_of: datetime) -> list[Order]:
    """Orders in review past their due time that were not reported yet, locked for reporting
    (rows another scan is reporting right now are skipped)."""
    stmt = (select(Order)
            .where(Order.state == OrderState.in_review, Order.review_due_at < as_of,
                   Order.review_overdue_notified_at.is_(None))
            .order_by(Order.review_due_at, Order.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True))
    return list((await session.execute(stmt)).scalars())


async def exceptions_of(session: AsyncSession, order_id: str) -> list[OrderException]:
    """The order's exceptions, oldest first."""
    rows = await session.execute(select(OrderException).where(
        OrderException.order_id == order_id).order_by(OrderException.opened_at, OrderException.id))
    return list(rows.scalars())


async def get_exception(session: AsyncSession, order_id: str, exception_id: str) -> OrderException | None:
    return (await session.execute(select(OrderException).where(
        OrderException.order_id == order_id, OrderException.id == exception_id))).scalar_one_or_none()


async def count_open_exceptions(session: AsyncSession, order_id: str) -> int:
    return (await session.execute(select(func.count()).select_from(OrderException).where(
        OrderException.order_id == order_id, OrderException.status == "open"))).scalar_one()


async def claim_overdue_exceptions(session: AsyncSession, *, as_of: datetime) -> list[OrderException]:
    """Open exceptions past their due time not reported yet, locked for reporting."""
    stmt = (select(OrderException)
            .where(OrderException.status == "open", OrderException.due_at < as_of,
                   OrderException.overdue_notified_at.is_(None))
            .order_by(OrderException.due_at, OrderException.id)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True))
    return list((await session.execute(stmt)).scalars())


# --- Change requests ----------------------------------------------------------------------


async def open_change_request_numbers(session: AsyncSession, order_id: str) -> list[str]:
    """Numbers of the order's change requests that are in review or approved."""
    rows = await session.execute(select(OrderChangeRequest.number).where(
        OrderChangeRequest.order_id == order_id,
        OrderChangeRequest.state.in_(OPEN_CHANGE_REQUEST_STATES)).order_by(OrderChangeRequest.number))
    return list(rows.scalars())


def _change_requests(order_id: str) -> Select[tuple[OrderChangeRequest]]:
    return select(OrderChangeRequest).where(OrderChangeRequest.order_id == order_id)


async def change_requests_of(session: AsyncSession, order_id: str) -> list[OrderChangeRequest]:
    """All of the order's change requests, oldest first."""
    stmt = _change_requests(order_id).order_by(OrderChangeRequest.requested_at, OrderChangeRequest.id)
    return list((await session.execute(stmt)).scalars())


async def page_change_requests(session: AsyncSession, order_id: str, *, limit: int,
                               cursor: str | None) -> Page[OrderChangeRequest]:
    """A page of the order's change requests, oldest first."""
    return await keyset_page(session, _change_requests(order_id),
                             Keyset(OrderChangeRequest.requested_at, OrderChangeRequest.id),
                             limit=limit, cursor=cursor)


async def get_change_request(session: AsyncSession, order_id: str, change_request_id: str, *,
                             fresh: bool = False) -> OrderChangeRequest | None:
    """One change request of the order; `fresh` re-reads it (after the order's row lock)."""
    stmt = select(OrderChangeRequest).where(OrderChangeRequest.order_id == order_id,
                                            OrderChangeRequest.id == change_request_id)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def upsert_change_review(session: AsyncSession, *, change_request_id: str, department: str,
                               decision: str, comment: str | None, by: str, at: datetime) -> None:
    """Store a department's opinion on a change request, replacing the one it gave before."""
    insert = dialect_insert(session)
    stmt = insert(OrderChangeReview).values(
        id=str(uuid.uuid4()), change_request_id=change_request_id, department=department,
        decision=decision, comment=comment, by=by, at=at)
    stmt = stmt.on_conflict_do_update(
        index_elements=["change_request_id", "department"],
        set_={"decision": decision, "comment": comment, "by": by, "at": at})
    await session.execute(stmt)


async def get_revision(session: AsyncSession, order_id: str, revision: int) -> OrderRevision | None:
    """The kept terms of a past revision of the order."""
    return (await session.execute(select(OrderRevision).where(
        OrderRevision.order_id == order_id, OrderRevision.revision == revision))).scalar_one_or_none()


async def change_request_applied_as(session: AsyncSession, order_id: str,
                                    revision: int) -> str | None:
    """The id of the change request whose apply made `revision` of the order, if any."""
    return (await session.execute(select(OrderChangeRequest.id).where(
        OrderChangeRequest.order_id == order_id,
        OrderChangeRequest.applied_revision == revision))).scalar_one_or_none()


async def get_return(session: AsyncSession, return_id: str) -> OrderReturn | None:
    return await session.get(OrderReturn, return_id)
