"""Use cases of the notifier service: manage endpoints, steer deliveries, the dunning policy
and the salesperson directory (ingest of events is `ingest.py`). Everything happens in the
caller's transaction; the delivery worker sends after commit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import destinations, policy, repository
from services.notifier.config import NotifierSettings
from services.notifier.errors import (
    DeliveryNotFound,
    EndpointDisabled,
    EndpointNotFound,
    UrlRefused,
)
from services.notifier.ingest import ALL_TYPES, Wake, delivery_rows, wants
from services.notifier.models import (
    POLICY_ID,
    Delivery,
    DeliveryStatus,
    DunningPolicy,
    Notification,
    NotificationStatus,
    Salesperson,
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
from shared.webhooks import new_secret


def _normalize_types(event_types: list[str]) -> list[str]:
    unique = list(dict.fromkeys(event_types))
    return [ALL_TYPES] if ALL_TYPES in unique else unique



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
    rows = delivery_rows([(endpoint.id, event_id, event_type, now)
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
