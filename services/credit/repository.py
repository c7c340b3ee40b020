"""Every query of the credit service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.credit.models import (
    Asset,
    CreditHold,
    CreditInquiry,
    CreditProfile,
    Customer,
    Evaluation,
    Guarantee,
    GuaranteeStatus,
    HoldKind,
    HoldStatus,
    ReceivablesSnapshot,
    Reservation,
    ReservationStatus,
)
from shared.db import dialect_insert
from shared.pagination import Keyset, Page, keyset_page

# ---------------------------------------------------------------- customers


async def get_customer(session: AsyncSession, customer_id: str) -> Customer | None:
    return await session.get(Customer, customer_id)


async def list_customers(session: AsyncSession, *, limit: int, cursor: str | None,
                         salesperson_id: str | None, name: str | None,
                         registration_no: str | None) -> Page[Customer]:
    stmt = select(Customer)
    if salesperson_id is not None:
        stmt = stmt.where(Customer.salesperson_id == salesperson_id)
    if registration_no is not None:
        stmt = stmt.where(Customer.registration_no == registration_no)
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(Customer.name.ilike(f"%{escaped}%", escape="\\"))
    return await keyset_page(session, stmt, Keyset(Customer.created_at, Customer.id),
                             limit=limit, cursor=cursor)


async def bump_version(session: AsyncSession, customer_id: str, expected: int,
                       values: dict[str, object]) -> bool:
    """Compare-and-set update; False when another writer changed the row first."""
    result = await session.execute(
        update(Customer).where(Customer.id == customer_id, Customer.version == expected)
        .values(**values, version=expected + 1))
    return result.rowcount == 1


# ---------------------------------------------------------------- credit profiles


async def get_profile(session: AsyncSession, customer_id: str) -> CreditProfile | None:
    return await session.get(CreditProfile, customer_id)


async def lock_profile(session: AsyncSession, customer_id: str, *, defaults: dict[str, Any]
                       ) -> CreditProfile:
    """The customer's profile, created with `defaults` if missing, locked until commit.

    `FOR UPDATE` serializes every writer of this customer's credit on PostgreSQL (SQLite
    writers are serialized by BEGIN IMMEDIATE already). Only a missing row costs more: INSERT …
    ON CONFLICT DO NOTHING makes racing first uses safe, then the locked read again.
    """
    stmt = (select(CreditProfile).where(CreditProfile.customer_id == customer_id)
            .with_for_update().execution_options(populate_existing=True))
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is not None:
        return found
    insert = dialect_insert(session)
    await session.execute(insert(CreditProfile).values(customer_id=customer_id, **defaults)
                          .on_conflict_do_nothing(index_elements=["customer_id"]))
    return (await session.execute(stmt)).scalar_one()


@dataclass(frozen=True)
class CreditUse:
    """What a customer's credit is used by in one currency, read in one statement."""

    guarantees_minor: int  # Σ active guarantees (not released, not expired)
    guarantees: int  # how many
    open_receivables_minor: int  # ledger's, from the snapshot (0 without one)
    overdue_minor: int
    max_days_overdue: int
    reserved_minor: int  # Σ active reservations
    in_transit_minor: int  # Σ reservations converted on invoicing whose `invoice.issued` has
    #                        not refreshed the snapshot yet


async def credit_use(session: AsyncSession, customer_id: str, currency: str,
                     today: date) -> CreditUse:
    """Guarantees, the receivables snapshot and reservations of the customer in `currency`:
    one SELECT of three derived tables (it was three round trips, on every decision and read)."""
    g, r, snap = Guarantee, Reservation, ReceivablesSnapshot
    guarantees = (select(func.coalesce(func.sum(g.amount_minor), 0).label("total"),
                         func.count().label("n"))
                  .where(*_active_guarantees(customer_id, today), g.currency == currency)
                  .subquery())
    converted = and_(r.status == ReservationStatus.converted, r.currency == currency,
                     r.receivable_seen_at.is_(None))
    reserved = select(
        func.coalesce(func.sum(case((r.status == ReservationStatus.active, r.amount_minor),
                                    else_=0)), 0).label("reserved"),
        func.coalesce(func.sum(case((converted, r.amount_minor), else_=0)), 0).label("in_transit"),
    ).where(r.customer_id == customer_id,
            r.status.in_((ReservationStatus.active, ReservationStatus.converted))).subquery()
    snapshot = select(snap.open_receivables_minor, snap.overdue_minor, snap.max_days_overdue) \
        .where(snap.customer_id == customer_id, snap.currency == currency).subquery()
    # Both aggregates are one row always; the snapshot is zero or one, hence the outer join.
    stmt = (select(guarantees.c.total, guarantees.c.n, reserved.c.reserved, reserved.c.in_transit,
                   snapshot.c.open_receivables_minor, snapshot.c.overdue_minor,
                   snapshot.c.max_days_overdue)
            .select_from(guarantees.join(reserved, true()).outerjoin(snapshot, true())))
    row = (await session.execute(stmt)).one()
    return CreditUse(guarantees_minor=int(row[0]), guarantees=int(row[1]),
                     reserved_minor=int(row[2]), in_transit_minor=int(row[3]),
                     open_receivables_minor=int(row[4] or 0), overdue_minor=int(row[5] or 0),
                     max_days_overdue=int(row[6] or 0))


async def save_snapshot(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert or overwrite the (customer, currency) snapshot with `values` in one statement,
    unless the stored one was asked of ledger later (`refreshed_at`): figures asked later
    include everything earlier ones do, so a slower refresh never overwrites a newer one."""
    insert = dialect_insert(session)
    stmt = insert(ReceivablesSnapshot).values(**values)
    changed = {k: v for k, v in values.items() if k not in ("customer_id", "currency")}
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["customer_id", "currency"], set_=changed,
        where=ReceivablesSnapshot.refreshed_at <= values["refreshed_at"]))


async def mark_receivable_seen(session: AsyncSession, order_id: str, customer_id: str,
                               at: datetime) -> None:
    """The order's converted reservation is now in ledger's snapshot."""
    await session.execute(update(Reservation).where(
        Reservation.order_id == order_id, Reservation.customer_id == customer_id,
        Reservation.status == ReservationStatus.converted,
        Reservation.receivable_seen_at.is_(None)).values(receivable_seen_at=at))


async def count_reservations(session: AsyncSession, customer_id: str, statuses: list[str]) -> int:
    stmt = select(func.count()).select_from(Reservation).where(
        Reservation.customer_id == customer_id, Reservation.status.in_(statuses))
    return int((await session.execute(stmt)).scalar_one())


def _active_guarantees(customer_id: str, today: date) -> Any:
    return (Guarantee.customer_id == customer_id, Guarantee.status == GuaranteeStatus.active,
            Guarantee.expires_on >= today)


async def count_active_guarantees(session: AsyncSession, customer_id: str, today: date) -> int:
    stmt = select(func.count()).select_from(Guarantee).where(*_active_guarantees(customer_id, today))
    return int((await session.execute(stmt)).scalar_one())


# ---------------------------------------------------------------- holds


async def active_holds(session: AsyncSession, customer_id: str) -> list[CreditHold]:
    stmt = (select(CreditHold).where(CreditHold.customer_id == customer_id,
                                     CreditHold.status == HoldStatus.active)
            .order_by(CreditHold.placed_at, CreditHold.id))
    return list((await session.execute(stmt)).scalars())


async def list_holds(session: AsyncSession, customer_id: str, *, limit: int, cursor: str | None,
                     status: str | None, kind: str | None = None) -> Page[CreditHold]:
    stmt = select(CreditHold).where(CreditHold.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(CreditHold.status == status)
    if kind is not None:
        stmt = stmt.where(CreditHold.kind == kind)
    return await keyset_page(session, stmt, Keyset(CreditHold.placed_at, CreditHold.id),
                             limit=limit, cursor=cursor)


async def active_automatic_hold(session: AsyncSession, customer_id: str, invoice_id: str
                                ) -> CreditHold | None:
    stmt = select(CreditHold).where(CreditHold.customer_id == customer_id,
                                    CreditHold.source_ref == invoice_id,
                                    CreditHold.kind == HoldKind.automatic,
                                    CreditHold.status == HoldStatus.active)
    return (await session.execute(stmt)).scalars().first()


async def active_automatic_holds(session: AsyncSession, customer_ids: Sequence[str]
                                 ) -> list[CreditHold]:
    """The customers' active automatic holds, by customer, oldest first."""
    stmt = (select(CreditHold).where(CreditHold.customer_id.in_(customer_ids),
                                     CreditHold.kind == HoldKind.automatic,
                                     CreditHold.status == HoldStatus.active)
            .order_by(CreditHold.customer_id, CreditHold.placed_at, CreditHold.id))
    return list((await session.execute(stmt)).scalars())


async def customers_with_automatic_holds(session: AsyncSession, *, after: str | None,
                                         limit: int) -> list[str]:
    """Ids of customers with an active automatic hold, in id order after `after`."""
    stmt = select(CreditHold.customer_id).where(CreditHold.kind == HoldKind.automatic,
                                                CreditHold.status == HoldStatus.active)
    if after is not None:
        stmt = stmt.where(CreditHold.customer_id > after)
    stmt = stmt.group_by(CreditHold.customer_id).order_by(CreditHold.customer_id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def get_hold(session: AsyncSession, hold_id: str, *, for_update: bool = False
                   ) -> CreditHold | None:
    stmt = select(CreditHold).where(CreditHold.id == hold_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


# ---------------------------------------------------------------- guarantees, inquiries, assets


async def get_guarantee(session: AsyncSession, guarantee_id: str) -> Guarantee | None:
    stmt = (select(Guarantee).where(Guarantee.id == guarantee_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_guarantees(session: AsyncSession, customer_id: str, *, limit: int,
                          cursor: str | None) -> Page[Guarantee]:
    stmt = select(Guarantee).where(Guarantee.customer_id == customer_id)
    return await keyset_page(session, stmt, Keyset(Guarantee.created_at, Guarantee.id),
                             limit=limit, cursor=cursor)


async def list_inquiries(session: AsyncSession, customer_id: str, *, limit: int,
                         cursor: str | None) -> Page[CreditInquiry]:
    stmt = select(CreditInquiry).where(CreditInquiry.customer_id == customer_id)
    return await keyset_page(session, stmt, Keyset(CreditInquiry.created_at, CreditInquiry.id),
                             limit=limit, cursor=cursor)


async def latest_inquiry(session: AsyncSession, customer_id: str) -> CreditInquiry | None:
    stmt = (select(CreditInquiry).where(CreditInquiry.customer_id == customer_id)
            .order_by(CreditInquiry.inquired_on.desc(), CreditInquiry.created_at.desc()).limit(1))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_assets(session: AsyncSession, customer_id: str, *, limit: int,
                      cursor: str | None) -> Page[Asset]:
    stmt = select(Asset).where(Asset.customer_id == customer_id)
    return await keyset_page(session, stmt, Keyset(Asset.created_at, Asset.id),
                             limit=limit, cursor=cursor)


async def asset_totals(session: AsyncSession, customer_id: str, currency: str
                       ) -> tuple[int, int, int]:
    """(Σ value, Σ encumbered value, count) of the customer's assets in `currency`."""
    encumbered = func.sum(Asset.value_minor).filter(Asset.encumbered.is_(True))
    stmt = select(func.coalesce(func.sum(Asset.value_minor), 0), func.coalesce(encumbered, 0),
                  func.count()).where(Asset.customer_id == customer_id, Asset.currency == currency)
    total, pledged, count = (await session.execute(stmt)).one()
    return int(total), int(pledged), int(count)


# ---------------------------------------------------------------- reservations


async def get_reservation(session: AsyncSession, reservation_id: str, *, for_update: bool = False
                          ) -> Reservation | None:
    stmt = select(Reservation).where(Reservation.id == reservation_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def live_reservation_for_order(session: AsyncSession, order_id: str) -> Reservation | None:
    """The order's active or converted reservation, if any (at most one, by a unique index)."""
    stmt = (select(Reservation).where(
        Reservation.order_id == order_id,
        Reservation.status.in_([ReservationStatus.active, ReservationStatus.converted]))
        .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_reservations(session: AsyncSession, *, limit: int, cursor: str | None,
                            order_id: str | None, customer_id: str | None,
                            status: str | None) -> Page[Reservation]:
    stmt = select(Reservation)
    if order_id is not None:
        stmt = stmt.where(Reservation.order_id == order_id)
    if customer_id is not None:
        stmt = stmt.where(Reservation.customer_id == customer_id)
    if status is not None:
        stmt = stmt.where(Reservation.status == status)
    return await keyset_page(session, stmt, Keyset(Reservation.created_at, Reservation.id),
                             limit=limit, cursor=cursor)


# ---------------------------------------------------------------- evaluations


async def get_evaluation(session: AsyncSession, evaluation_id: str, *, for_update: bool = False
                         ) -> Evaluation | None:
    stmt = select(Evaluation).where(Evaluation.id == evaluation_id)
    if for_update:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_evaluations(session: AsyncSession, customer_id: str, *, limit: int,
                           cursor: str | None) -> Page[Evaluation]:
    stmt = select(Evaluation).where(Evaluation.customer_id == customer_id)
    return await keyset_page(session, stmt, Keyset(Evaluation.created_at, Evaluation.id),
                             limit=limit, cursor=cursor)
