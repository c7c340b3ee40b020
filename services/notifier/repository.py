"""Every query of the notifier service."""

from __future__ import annotations

import json
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import JSON, String, any_, bindparam, cast, func, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import (
    POLICY_ID,
    ChargeStatus,
    Delivery,
    DeliveryStatus,
    DunningCharge,
    DunningPolicy,
    DunningRun,
    Notification,
    NotificationStatus,
    RunStatus,
    Salesperson,
    StoredEvent,
    WebhookEndpoint,
)
from shared.db import dialect_insert
from shared.pagination import Keyset, Page, keyset_page

# leases: deliveries, dunning runs and email notifications are queues of the same shape

QueueRow = TypeVar("QueueRow", Delivery, DunningRun, Notification)


async def _lease_due(session: AsyncSession, model: type[QueueRow], *conditions: Any,
                     now: datetime, lease_until: datetime, limit: int) -> list[str]:
    """Ids of up to `limit` rows due by `now` and not leased, leased until `lease_until`.

    Due order (`next_attempt_at`, id); SKIP LOCKED on PostgreSQL, plus the lease on both
    databases, so two workers never claim the same row.
    """
    due = (
        select(model.id)
        .where(*conditions, model.next_attempt_at <= now,
               or_(model.claimed_until.is_(None), model.claimed_until < now))
        .order_by(model.next_attempt_at, model.id).limit(limit)
        .with_for_update(skip_locked=True)
    )
    ids = list((await session.execute(due)).scalars())
    if ids:
        await session.execute(update(model).where(model.id.in_(ids))
                              .values(claimed_until=lease_until))
    return ids


async def _leased(session: AsyncSession, model: type[QueueRow], ids: list[str]) -> list[QueueRow]:
    """The leased rows, freshly read, in due order."""
    if not ids:
        return []
    stmt = (select(model).where(model.id.in_(ids))
            .order_by(model.next_attempt_at, model.id)
            .execution_options(populate_existing=True))
    return list((await session.execute(stmt)).scalars())


# events

async def get_event(session: AsyncSession, event_id: str) -> StoredEvent | None:
    return await session.get(StoredEvent, event_id)


async def insert_new_events(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the events whose id is not stored yet (one statement); returns the ids inserted.

    Rows go in id order, so two batches that share ids wait for each other in the same order
    on PostgreSQL (no deadlock); a concurrent insert of the same id makes this one skip it
    once that one commits.
    """
    if not rows:
        return set()
    table = StoredEvent.__table__
    stmt = (dialect_insert(session)(table).on_conflict_do_nothing(index_elements=[table.c.id])
            .returning(table.c.id))
    return set((await session.execute(stmt, sorted(rows, key=lambda r: r["id"]))).scalars())


async def events_by_id(session: AsyncSession, ids: Collection[str]) -> dict[str, StoredEvent]:
    if not ids:
        return {}
    stmt = select(StoredEvent).where(StoredEvent.id.in_(list(ids)))
    return {event.id: event for event in (await session.execute(stmt)).scalars()}


async def list_events(session: AsyncSession, *, limit: int, cursor: str | None,
                      type_: str | None, occurred_after: datetime | None) -> Page[StoredEvent]:
    stmt = select(StoredEvent)
    if type_ is not None:
        stmt = stmt.where(StoredEvent.type == type_)
    if occurred_after is not None:
        stmt = stmt.where(StoredEvent.occurred_at > occurred_after)
    return await keyset_page(session, stmt, Keyset(StoredEvent.occurred_at, StoredEvent.id),
                             limit=limit, cursor=cursor)


async def events_since(session: AsyncSession, *, since: datetime,
                       types: Sequence[str] | None) -> list[tuple[str, str]]:
    """(id, type) of every event that occurred at or after `since`, of `types` (None: all)."""
    stmt = select(StoredEvent.id, StoredEvent.type).where(StoredEvent.occurred_at >= since)
    if types is not None:
        stmt = stmt.where(StoredEvent.type.in_(list(types)))
    stmt = stmt.order_by(StoredEvent.occurred_at, StoredEvent.id)
    return [(row.id, row.type) for row in await session.execute(stmt)]


# endpoints

async def get_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint | None:
    endpoint = await session.get(WebhookEndpoint, endpoint_id)
    return None if endpoint is None or endpoint.deleted_at is not None else endpoint


async def subscriptions(session: AsyncSession) -> list[Row[Any]]:
    """(id, event_types) of every enabled endpoint: what ingest fans out to."""
    t = WebhookEndpoint.__table__
    stmt = select(t.c.id, t.c.event_types).where(t.c.enabled.is_(True), t.c.deleted_at.is_(None))
    return list(await session.execute(stmt))


async def sending_endpoints(session: AsyncSession, ids: Collection[str]) -> dict[str, Row[Any]]:
    """What the delivery worker needs of these endpoints to send: URL, secrets, flags."""
    t = WebhookEndpoint.__table__
    stmt = select(t.c.id, t.c.url, t.c.secret, t.c.previous_secret,
                  t.c.previous_secret_expires_at, t.c.allow_private, t.c.internal).where(
        t.c.id.in_(list(ids)))
    return {row.id: row for row in await session.execute(stmt)}


async def list_endpoints(session: AsyncSession, *, limit: int,
                         cursor: str | None,
                         enabled: bool | None) -> Page[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None))
    if enabled is not None:
        stmt = stmt.where(WebhookEndpoint.enabled.is_(enabled))
    return await keyset_page(session, stmt, Keyset(WebhookEndpoint.created_at, WebhookEndpoint.id),
                             limit=limit, cursor=cursor)


async def bump_endpoint(session: AsyncSession, endpoint_id: str, expected: int,
                        values: dict[str, Any]) -> bool:
    """Compare-and-set update; False when another writer changed the row first."""
    result = await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.version == expected)
        .values(**values, version=expected + 1))
    return result.rowcount == 1


async def mark_endpoint_failing(session: AsyncSession, endpoint_id: str,
                                now: datetime) -> WebhookEndpoint | None:
    """Start the endpoint's failing run unless one is already running; returns the endpoint."""
    await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_(None))
        .values(failing_since=now))
    stmt = (select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one_or_none()


async def mark_endpoints_healthy(session: AsyncSession, endpoint_ids: Collection[str]) -> None:
    """End the failing run of these endpoints (one statement; those not failing are untouched)."""
    if endpoint_ids:
        await session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id.in_(list(endpoint_ids)),
                   WebhookEndpoint.failing_since.is_not(None))
            .values(failing_since=None))


async def disable_endpoint(session: AsyncSession, endpoint_id: str, reason: str,
                           now: datetime) -> bool:
    result = await session.execute(
        update(WebhookEndpoint)
        .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, updated_at=now,
                version=WebhookEndpoint.version + 1))
    return result.rowcount == 1


# deliveries

async def get_delivery(session: AsyncSession, delivery_id: str) -> Delivery | None:
    return await session.get(Delivery, delivery_id)


async def list_deliveries(session: AsyncSession, *, limit: int,
                          cursor: str | None, endpoint_id: str | None,
                          status: DeliveryStatus | None, event_id: str | None) -> Page[Delivery]:
    stmt = select(Delivery)
    if endpoint_id is not None:
        stmt = stmt.where(Delivery.endpoint_id == endpoint_id)
    if status is not None:
        stmt = stmt.where(Delivery.status == status)
    if event_id is not None:
        stmt = stmt.where(Delivery.event_id == event_id)
    return await keyset_page(session, stmt, Keyset(Delivery.created_at, Delivery.id),
                             limit=limit, cursor=cursor)


async def add_deliveries(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    if rows:
        await session.execute(Delivery.__table__.insert(), rows)


async def give_up_pending(session: AsyncSession, endpoint_id: str) -> None:
    """Pending deliveries of a deleted endpoint will never be sent: mark them failed.

    The rows are locked in id order first, the order `record_attempts` takes them in, so the
    delivery worker recording attempts at the same moment waits instead of deadlocking."""
    pending = (Delivery.endpoint_id == endpoint_id, Delivery.status == DeliveryStatus.pending)
    ids = list((await session.execute(
        select(Delivery.id).where(*pending).order_by(Delivery.id).with_for_update())).scalars())
    if ids:
        await session.execute(
            update(Delivery).where(Delivery.id.in_(ids), *pending)
            .values(status=DeliveryStatus.failed, next_attempt_at=None))


async def lease_due_deliveries(session: AsyncSession, *, now: datetime, lease_until: datetime,
                               limit: int, skip_endpoints: Collection[str] = ()) -> list[Row[Any]]:
    """Lease up to `limit` due, unleased pending deliveries of enabled endpoints until
    `lease_until`, in one statement; returns (id, endpoint_id, event_id, attempt_count) of each,
    in due order (`next_attempt_at`, id). SKIP LOCKED on PostgreSQL plus the lease on both
    databases, so two workers never lease the same delivery. `skip_endpoints` are left out
    (their senders are busy)."""
    t = Delivery.__table__
    live = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True),
                                            WebhookEndpoint.deleted_at.is_(None))
    due = (
        select(t.c.id)
        .where(t.c.status == DeliveryStatus.pending.value, t.c.next_attempt_at <= now,
               or_(t.c.claimed_until.is_(None), t.c.claimed_until < now),
               t.c.endpoint_id.in_(live))
        .order_by(t.c.next_attempt_at, t.c.id).limit(limit)
        .with_for_update(skip_locked=True)
    )
    if skip_endpoints:
        due = due.where(t.c.endpoint_id.not_in(list(skip_endpoints)))
    if session.get_bind().dialect.name == "postgresql":  # chosen once (an InitPlan), never
        picked = t.c.id == any_(func.array(due.scalar_subquery()))  # rescanned by a join
    else:
        picked = t.c.id.in_(due)
    stmt = (update(t).where(picked).values(claimed_until=lease_until)
            .returning(t.c.id, t.c.endpoint_id, t.c.event_id, t.c.attempt_count,
                       t.c.next_attempt_at))
    rows = list(await session.execute(stmt))
    return sorted(rows, key=lambda r: (r.next_attempt_at, r.id))


async def envelopes(session: AsyncSession, event_ids: Collection[str]) -> dict[str, Row[Any]]:
    """The stored envelopes of these events: (id, type, occurred_at, source, subject, data)."""
    t = StoredEvent.__table__
    stmt = select(t.c.id, t.c.type, t.c.occurred_at, t.c.source, t.c.subject, t.c.data).where(
        t.c.id.in_(list(event_ids)))
    return {row.id: row for row in await session.execute(stmt)}


def _appended_attempt(session: AsyncSession) -> Any:
    """`attempts` with the bound `b_attempt` (one attempt as JSON text) appended, in SQL, so a
    batch of outcomes is one statement and two workers that both record an attempt of the same
    delivery (a lease that ran out) both keep theirs."""
    column = Delivery.__table__.c.attempts
    attempt = bindparam("b_attempt", type_=String)
    if session.get_bind().dialect.name == "postgresql":
        added = func.jsonb_build_array(cast(attempt, JSONB))
        return cast(cast(column, JSONB).op("||")(added), JSON)
    return func.json_insert(column, "$[#]", func.json(attempt))


async def record_attempts(session: AsyncSession, outcomes: list[dict[str, Any]]) -> None:
    """Append one attempt to each delivery's log, apply its outcome and end its lease.

    Each outcome: `id`, `status`, `next_attempt_at`, `last_attempt_at` and `attempt` (the
    attempt's dict). One statement for the lot (executemany), in id order: two transactions
    that touch the same deliveries (a lease that ran out, an endpoint deleted meanwhile) lock
    them in the same order, so one waits for the other instead of deadlocking.
    """
    if not outcomes:
        return
    outcomes = sorted(outcomes, key=lambda o: o["id"])
    t = Delivery.__table__
    stmt = (update(t).where(t.c.id == bindparam("b_id"))
            .values(status=bindparam("b_status"), next_attempt_at=bindparam("b_next"),
                    last_attempt_at=bindparam("b_at"), attempts=_appended_attempt(session),
                    attempt_count=t.c.attempt_count + 1, claimed_until=None))
    await session.execute(stmt, [
        {"b_id": o["id"], "b_status": o["status"], "b_next": o["next_attempt_at"],
         "b_at": o["last_attempt_at"], "b_attempt": json.dumps(o["attempt"])}
        for o in outcomes])


async def release_deliveries(session: AsyncSession, ids: Collection[str]) -> None:
    """End the lease of deliveries that were claimed but not sent: due again at once."""
    if ids:
        await session.execute(update(Delivery).where(Delivery.id.in_(list(ids)))
                              .values(claimed_until=None))


async def pending_deliveries(session: AsyncSession) -> int:
    stmt = select(func.count()).select_from(Delivery).where(
        Delivery.status == DeliveryStatus.pending)
    return int((await session.execute(stmt)).scalar_one())


# dunning

async def get_policy(session: AsyncSession, *, lock: bool = False) -> DunningPolicy | None:
    return await session.get(DunningPolicy, POLICY_ID, with_for_update=lock or None,
                             populate_existing=lock)


async def get_charge(session: AsyncSession, charge_id: str) -> DunningCharge | None:
    return await session.get(DunningCharge, charge_id)


async def get_salesperson(session: AsyncSession, salesperson_id: str, *,
                          lock: bool = False) -> Salesperson | None:
    return await session.get(Salesperson, salesperson_id, with_for_update=lock or None,
                             populate_existing=lock)


async def list_salespeople(session: AsyncSession, *, limit: int, after: str | None) -> list[Salesperson]:
    stmt = select(Salesperson)
    if after is not None:
        stmt = stmt.where(Salesperson.salesperson_id > after)
    stmt = stmt.order_by(Salesperson.salesperson_id).limit(limit)
    return list((await session.execute(stmt)).scalars())


async def get_run(session: AsyncSession, invoice_id: str, threshold_days: int) -> DunningRun | None:
    stmt = select(DunningRun).where(DunningRun.invoice_id == invoice_id,
                                    DunningRun.threshold_days == threshold_days)
    return (await session.execute(stmt)).scalar_one_or_none()


async def claim_due_runs(session: AsyncSession, *, now: datetime, lease_until: datetime,
                         limit: int) -> list[DunningRun]:
    """Lease due pending runs (SKIP LOCKED on PostgreSQL plus a lease on both databases)."""
    ids = await _lease_due(session, DunningRun, DunningRun.status == RunStatus.pending,
                           now=now, lease_until=lease_until, limit=limit)
    return await _leased(session, DunningRun, ids)


async def lock_run(session: AsyncSession, run_id: str) -> DunningRun:
    stmt = (select(DunningRun).where(DunningRun.id == run_id).with_for_update()
            .execution_options(populate_existing=True))
    return (await session.execute(stmt)).scalar_one()


async def invoice_charges(session: AsyncSession, invoice_id: str) -> list[DunningCharge]:
    stmt = (select(DunningCharge).where(DunningCharge.invoice_id == invoice_id)
            .order_by(DunningCharge.created_at, DunningCharge.id))
    return list((await session.execute(stmt)).scalars())


async def pending_charges(session: AsyncSession, run_id: str) -> list[DunningCharge]:
    stmt = (select(DunningCharge).where(DunningCharge.run_id == run_id,
                                        DunningCharge.status == ChargeStatus.pending)
            .order_by(DunningCharge.kind))
    return list((await session.execute(stmt)).scalars())


async def get_notification(session: AsyncSession, notification_id: str) -> Notification | None:
    return await session.get(Notification, notification_id)


async def list_notifications(session: AsyncSession, *, limit: int,
                             cursor: str | None, customer_id: str | None,
                             invoice_id: str | None, level: int | None,
                             status: NotificationStatus | None,
                             salesperson_id: str | None) -> Page[Notification]:
    stmt = select(Notification)
    for column, value in ((Notification.customer_id, customer_id),
                          (Notification.invoice_id, invoice_id), (Notification.level, level),
                          (Notification.status, status),
                          (Notification.salesperson_id, salesperson_id)):
        if value is not None:
            stmt = stmt.where(column == value)
    return await keyset_page(session, stmt, Keyset(Notification.created_at, Notification.id),
                             limit=limit, cursor=cursor)


async def claim_due_emails(session: AsyncSession, *, now: datetime, lease_until: datetime,
                           limit: int) -> list[Notification]:
    """Lease pending email notifications that are due (SKIP LOCKED on PostgreSQL, plus a lease)."""
    ids = await _lease_due(session, Notification,
                           Notification.status == NotificationStatus.pending,
                           Notification.channel == "email",
                           now=now, lease_until=lease_until, limit=limit)
    return await _leased(session, Notification, ids)


async def recent_letter(session: AsyncSession, *, customer_id: str, address: str, level: int,
                        since: datetime) -> Notification | None:
    """The latest email sent to `address` about the customer at `level` or above since `since`."""
    stmt = (select(Notification)
            .where(Notification.customer_id == customer_id,
                   func.lower(Notification.address) == address.lower(),
                   Notification.channel == "email", Notification.status == NotificationStatus.sent,
                   Notification.level >= level, Notification.sent_at >= since,
                   Notification.letter_id == Notification.id)
            .order_by(Notification.sent_at.desc()).limit(1))
    return (await session.execute(stmt)).scalar_one_or_none()


async def settle_notification(session: AsyncSession, notification_id: str,
                              values: dict[str, Any]) -> None:
    """Record the outcome of a send; only while the notification is still pending."""
    await session.execute(
        update(Notification)
        .where(Notification.id == notification_id,
               Notification.status == NotificationStatus.pending)
        .values(**values, claimed_until=None))


async def pending_work(session: AsyncSession) -> dict[str, int]:
    runs = await session.execute(select(func.count()).select_from(DunningRun).where(
        DunningRun.status == RunStatus.pending))
    emails = await session.execute(select(func.count()).select_from(Notification).where(
        Notification.status == NotificationStatus.pending, Notification.channel == "email"))
    return {"dunning_runs": int(runs.scalar_one()), "emails": int(emails.scalar_one())}


async def list_runs(session: AsyncSession, *, limit: int, cursor: str | None,
                    invoice_id: str | None, status: RunStatus | None) -> Page[DunningRun]:
    stmt = select(DunningRun)
    if invoice_id is not None:
        stmt = stmt.where(DunningRun.invoice_id == invoice_id)
    if status is not None:
        stmt = stmt.where(DunningRun.status == status)
    return await keyset_page(session, stmt, Keyset(DunningRun.created_at, DunningRun.id),
                             limit=limit, cursor=cursor)


async def list_charges(session: AsyncSession, *, limit: int, cursor: str | None,
                       invoice_id: str | None, status: ChargeStatus | None) -> Page[DunningCharge]:
    stmt = select(DunningCharge)
    if invoice_id is not None:
        stmt = stmt.where(DunningCharge.invoice_id == invoice_id)
    if status is not None:
        stmt = stmt.where(DunningCharge.status == status)
    return await keyset_page(session, stmt, Keyset(DunningCharge.created_at, DunningCharge.id),
                             limit=limit, cursor=cursor)
