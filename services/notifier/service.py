"""Use cases of the notifier service: store events once, fan them out to the endpoints that
want them, manage endpoints and steer deliveries. Everything happens in the caller's
transaction; the delivery worker sends after commit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import destinations, dunning, policy, repository
from services.notifier.config import NotifierSettings
from services.notifier.errors import (
    DeliveryNotFound,
    EndpointDisabled,
    EndpointNotFound,
    EventNotFound,
    UrlRefused,
)
from services.notifier.models import (
    POLICY_ID,
    Delivery,
    DeliveryStatus,
    DunningPolicy,
    Notification,
    NotificationStatus,
    Salesperson,
    StoredEvent,
    WebhookEndpoint,
)
from services.notifier.schemas import (
    DunningPolicyIn,
    DunningPolicyPublic,
    EndpointCreate,
    EndpointUpdate,
    SalespersonIn,
)
from shared.auth import Principal, Role, ensure_visible
from shared.clock import Clock, as_utc
from shared.db import after_commit
from shared.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed, VersionConflict
from shared.events import Event
from shared.webhooks import new_secret

Wake = Callable[[], None] | None
ALL_TYPES = "*"


def wants(event_types: list[str], event_type: str) -> bool:
    """Whether an endpoint with this filter receives events of `event_type`."""
    return not event_types or ALL_TYPES in event_types or event_type in event_types


def _normalize_types(event_types: list[str]) -> list[str]:
    unique = list(dict.fromkeys(event_types))
    return [ALL_TYPES] if ALL_TYPES in unique else unique


def _new_ids(count: int) -> Iterator[str]:
    """`count` random (version 4) UUIDs as strings, from one read of the system's randomness:
    ingest makes one per delivery, and `str(uuid.uuid4())` was its heaviest line (profiled)."""
    random = bytearray(os.urandom(16 * count))
    for start in range(0, 16 * count, 16):
        random[start + 6] = (random[start + 6] & 0x0F) | 0x40  # version 4
        random[start + 8] = (random[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
        h = random[start:start + 16].hex()
        yield f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _delivery_rows(pairs: list[tuple[str, str, str, datetime]]) -> list[dict[str, Any]]:
    """Pending deliveries, due at once, for (endpoint id, event id, event type, now) each."""
    pending = DeliveryStatus.pending.value
    return [{"id": delivery_id, "endpoint_id": endpoint_id, "event_id": event_id,
             "event_type": event_type, "status": pending, "attempt_count": 0,
             "next_attempt_at": now, "attempts": [], "created_at": now}
            for delivery_id, (endpoint_id, event_id, event_type, now)
            in zip(_new_ids(len(pairs)), pairs, strict=True)]


# events

@dataclass(frozen=True)
class Recorded:
    """What ingest did with one event: stored now (`created`) or already stored before."""

    event: StoredEvent
    created: bool


async def record_event(session: AsyncSession, *, clock: Clock, event: Event,
                       wake: Wake = None, wake_dunning: Wake = None) -> tuple[StoredEvent, bool]:
    """Store `event` once (dedup by id) and queue a delivery to every endpoint that wants it.

    Returns the stored event and whether it is new. Notifier's own events (for example
    `dunning.escalated`) go through here too: notifier has no outbox. A new `invoice.overdue`
    also queues its dunning run in this transaction.
    """
    (recorded,) = await record_events(session, clock=clock, events=[event], wake=wake,
                                      wake_dunning=wake_dunning)
    return recorded.event, recorded.created


async def record_events(session: AsyncSession, *, clock: Clock, events: Sequence[Event],
                        wake: Wake = None, wake_dunning: Wake = None) -> list[Recorded]:
    """Store each event once and queue its deliveries, in the caller's transaction; one result
    per event, in order.

    One INSERT for the events (`ON CONFLICT DO NOTHING`: an id stored before, or by a
    concurrent request, is not new), one read of the subscribed endpoints and one INSERT of
    the deliveries, however many events. An id repeated within `events` is stored once; the
    later copies count as already stored. Each event is received at its own `clock.now()`, so
    due order follows the order of `events` as it follows the order of single posts.
    """
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        event_id = str(event.id)
        if event_id not in rows:
            rows[event_id] = {"id": event_id, "type": event.type, "source": event.source,
                              "subject": event.subject, "occurred_at": as_utc(event.occurred_at),
                              "data": event.model_dump(mode="json", include={"data"})["data"],
                              "received_at": clock.now()}
    new_ids = await repository.insert_new_events(session, list(rows.values()))
    stored = {event_id: StoredEvent(**row) for event_id, row in rows.items() if event_id in new_ids}
    if stored:
        endpoints = await repository.subscriptions(session)
        deliveries = _delivery_rows([(endpoint.id, event.id, event.type, event.received_at)
                                     for event in stored.values() for endpoint in endpoints
                                     if wants(endpoint.event_types, event.type)])
        await repository.add_deliveries(session, deliveries)
        if deliveries and wake is not None:
            after_commit(session, wake)
        for event in stored.values():
            if event.type == dunning.OVERDUE and event.source == "ledger":
                run = await dunning.queue_run(session, event=event, now=event.received_at)
                if run is not None and wake_dunning is not None:
                    after_commit(session, wake_dunning)
    earlier = await repository.events_by_id(session, rows.keys() - new_ids)
    results, seen = [], set()
    for event in events:
        event_id = str(event.id)
        created = event_id in stored and event_id not in seen
        seen.add(event_id)
        results.append(Recorded(stored[event_id] if event_id in stored else earlier[event_id],
                                created))
    return results


async def get_event(session: AsyncSession, event_id: str) -> StoredEvent:
    event = await repository.get_event(session, event_id)
    if event is None:
        raise EventNotFound(event_id)
    return event


# endpoints

async def _check_destination(settings: NotifierSettings, principal: Principal, url: str) -> bool:
    """Refuse unusable or non-public URLs; returns whether private addresses are allowed."""
    problem = destinations.url_problem(url)
    if problem is not None:
        raise UrlRefused(problem)
    allow_private = Role.service in principal.roles
    if not (allow_private or settings.webhook_allow_private):
        problem = await destinations.private_address_problem(
            url, dns_timeout=settings.webhook_dns_timeout_seconds)
        if problem is not None:
            raise UrlRefused(problem)
    return allow_private


async def get_endpoint(session: AsyncSession, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await repository.get_endpoint(session, endpoint_id)
    if endpoint is None:
        raise EndpointNotFound(endpoint_id)
    return endpoint


async def create_endpoint(*, session: AsyncSession, clock: Clock, settings: NotifierSettings,
                          principal: Principal, data: EndpointCreate) -> WebhookEndpoint:
    """Register a webhook endpoint with a fresh signing secret.

    One the `service` principal creates is internal (a service's own inbox) for good.
    """
    allow_private = await _check_destination(settings, principal, data.url)
    now = clock.now()
    endpoint = WebhookEndpoint(
        url=data.url, description=data.description, event_types=_normalize_types(data.event_types),
        secret=new_secret(), allow_private=allow_private,
        internal=Role.service in principal.roles, created_by=principal.name,
        created_at=now, updated_at=now)
    session.add(endpoint)
    await session.flush()
    return endpoint


async def _change(session: AsyncSession, endpoint: WebhookEndpoint,
                  values: dict[str, Any]) -> WebhookEndpoint:
    if not await repository.bump_endpoint(session, endpoint.id, endpoint.version, values):
        raise VersionConflict("The webhook endpoint was changed by another request; "
                              "fetch it again.")
    await session.refresh(endpoint)
    return endpoint


async def update_endpoint(*, session: AsyncSession, clock: Clock, settings: NotifierSettings,
                          principal: Principal, endpoint: WebhookEndpoint,
                          data: EndpointUpdate) -> WebhookEndpoint:
    """Change URL, filter, description or enabled; enabling again clears the failure run."""
    changes = data.model_dump(exclude_unset=True)
    nulls = [f for f in ("url", "event_types", "enabled") if f in changes and changes[f] is None]
    if nulls:
        raise ValidationFailed("These fields cannot be null.",
                               errors=[{"field": f, "message": "may not be null"} for f in nulls])
    if not changes:
        return endpoint
    if "url" in changes:
        if endpoint.internal and changes["url"] != endpoint.url and Role.service not in principal.roles:
            raise Forbidden("This endpoint is a service's own inbox; only that service moves it "
                            "(it retries for ever and is never disabled).")
        changes["allow_private"] = await _check_destination(settings, principal, changes["url"])
    if "event_types" in changes:
        changes["event_types"] = _normalize_types(changes["event_types"])
    if changes.get("enabled") is True:
        changes.update(disabled_reason=None, failing_since=None)
    elif changes.get("enabled") is False and endpoint.enabled:
        changes["disabled_reason"] = f"disabled by {principal.name}"
    return await _change(session, endpoint, {**changes, "updated_at": clock.now()})


async def delete_endpoint(*, session: AsyncSession, clock: Clock, principal: Principal,
                          endpoint: WebhookEndpoint) -> None:
    """Retire an endpoint: it receives nothing more; its deliveries stay readable."""
    now = clock.now()
    await _change(session, endpoint, {"deleted_at": now, "enabled": False, "updated_at": now,
                                      "disabled_reason": f"deleted by {principal.name}"})
    await repository.give_up_pending(session, endpoint.id)


async def rotate_secret(*, session: AsyncSession, clock: Clock, settings: NotifierSettings,
                        endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """New signing secret; the old one also signs for `webhook_previous_secret_hours`."""
    now = clock.now()
    return await _change(session, endpoint, {
        "secret": new_secret(), "previous_secret": endpoint.secret, "updated_at": now,
        "previous_secret_expires_at": now + timedelta(hours=settings.webhook_previous_secret_hours)})


async def replay(*, session: AsyncSession, clock: Clock, endpoint: WebhookEndpoint,
                 since: datetime, wake: Wake = None) -> int:
    """Queue a new delivery to `endpoint` of every stored event since `since` it wants."""
    if not endpoint.enabled:
        raise EndpointDisabled(endpoint.id)
    types = None if wants(endpoint.event_types, "") else endpoint.event_types
    now = clock.now()
    rows = _delivery_rows([(endpoint.id, event_id, event_type, now)
                           for event_id, event_type in await repository.events_since(
                               session, since=as_utc(since), types=types)])
    await repository.add_deliveries(session, rows)
    if rows and wake is not None:
        after_commit(session, wake)
    return len(rows)


# deliveries

async def get_delivery(session: AsyncSession, delivery_id: str) -> Delivery:
    delivery = await repository.get_delivery(session, delivery_id)
    if delivery is None:
        raise DeliveryNotFound(delivery_id)
    return delivery


async def retry_delivery(*, session: AsyncSession, clock: Clock, delivery: Delivery,
                         wake: Wake = None) -> Delivery:
    """Make a delivery pending and due now, even one that has failed or succeeded."""
    endpoint = await repository.get_endpoint(session, delivery.endpoint_id)
    if endpoint is None or not endpoint.enabled:
        raise EndpointDisabled(delivery.endpoint_id)
    delivery.status = DeliveryStatus.pending
    delivery.next_attempt_at = clock.now()
    delivery.claimed_until = None
    await session.flush()
    if wake is not None:
        after_commit(session, wake)
    return delivery


# dunning

async def get_policy(session: AsyncSession) -> DunningPolicyPublic:
    """The stored dunning policy, or the default one when none was stored."""
    stored = await repository.get_policy(session)
    if stored is None:
        return DunningPolicyPublic(levels=policy.DEFAULT_LEVELS, is_default=True,
                                   placeholders=policy.PLACEHOLDERS, version=0, updated_by=None,
                                   updated_at=None)
    return DunningPolicyPublic(levels=stored.levels, is_default=False,
                               placeholders=policy.PLACEHOLDERS, version=stored.version,
                               updated_by=stored.updated_by, updated_at=stored.updated_at)


async def put_policy(session: AsyncSession, *, clock: Clock, principal: Principal,
                     data: DunningPolicyIn, request_version: Callable[[int], None]) -> DunningPolicyPublic:
    """Replace the dunning policy; it applies to overdue steps worked from now on.

    `request_version` checks the caller's If-Match against the locked current version.
    """
    now = clock.now()
    levels = [lvl.model_dump(mode="json") for lvl in data.levels]
    stored = await repository.get_policy(session, lock=True)
    request_version(stored.version if stored is not None else 0)
    if stored is None:
        stored = DunningPolicy(id=POLICY_ID, levels=levels, updated_by=principal.name,
                               created_at=now, updated_at=now)
        try:
            async with session.begin_nested():
                session.add(stored)
        except IntegrityError as exc:
            raise VersionConflict("The dunning policy was saved by another request; "
                                  "fetch it again.") from exc
    else:
        stored.levels, stored.updated_by, stored.updated_at = levels, principal.name, now
        stored.version += 1
    await session.flush()
    return await get_policy(session)


async def put_salesperson(session: AsyncSession, *, clock: Clock, salesperson_id: str,
                          data: SalespersonIn,
                          request_version: Callable[[int], None]) -> tuple[Salesperson, bool]:
    """Create or replace a salesperson's directory entry; returns it and whether it is new.

    `request_version` checks the caller's If-Match against the locked current version (0
    when there is no entry yet)."""
    now = clock.now()
    row = await repository.get_salesperson(session, salesperson_id, lock=True)
    if row is None:
        request_version(0)
        row = Salesperson(salesperson_id=salesperson_id, name=data.name, email=data.email,
                          created_at=now, updated_at=now)
        try:
            async with session.begin_nested():  # two first PUTs at once: one inserts
                session.add(row)
            return row, True
        except IntegrityError:
            row = await repository.get_salesperson(session, salesperson_id, lock=True)
            assert row is not None
    request_version(row.version)
    row.name, row.email, row.updated_at = data.name, data.email, now
    row.version += 1
    await session.flush()
    return row, False


async def get_salesperson(session: AsyncSession, salesperson_id: str) -> Salesperson:
    row = await repository.get_salesperson(session, salesperson_id)
    if row is None:
        raise NotFound(f"Salesperson {salesperson_id} is not in the directory.")
    return row


async def get_notification(session: AsyncSession, principal: Principal,
                           notification_id: str) -> Notification:
    note = await repository.get_notification(session, notification_id)
    if note is None:
        raise NotFound(f"Notification {notification_id} not found.")
    ensure_visible(principal, note.salesperson_id, "Notification", notification_id)
    return note


async def retry_notification(session: AsyncSession, *, clock: Clock,
                             note: Notification, wake: Wake = None) -> Notification:
    """Make a failed email notification pending and due now, for one more attempt."""
    if note.status != NotificationStatus.failed:
        raise InvalidTransition(f"Only a failed notification can be retried; this one is "
                                f"{note.status}.", state=str(note.status), allowed=[])
    now = clock.now()
    note.status, note.next_attempt_at, note.claimed_until, note.updated_at = (
        NotificationStatus.pending, now, None, now)
    await session.flush()
    if wake is not None:
        after_commit(session, wake)
    return note
