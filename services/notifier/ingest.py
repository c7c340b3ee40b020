"""Ingest: each event stored once, a delivery queued to every endpoint that wants it, and
the reactions other parts of notifier register (dunning on `invoice.overdue`), all in the
caller's transaction. The bottom of notifier's use cases: it imports none of them.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import repository
from services.notifier.errors import EventNotFound
from services.notifier.models import DeliveryStatus, StoredEvent
from shared.clock import Clock, as_utc
from shared.db import after_commit
from shared.events import Event

Wake = Callable[[], None] | None
ALL_TYPES = "*"


def wants(event_types: list[str], event_type: str) -> bool:
    """Whether an endpoint with this filter receives events of `event_type`."""
    return not event_types or ALL_TYPES in event_types or event_type in event_types


def new_ids(count: int) -> Iterator[str]:
    """`count` random (version 4) UUIDs as strings, from one read of the system's randomness:
    ingest makes one per delivery, and `str(uuid.uuid4())` was its heaviest line (profiled)."""
    random = bytearray(os.urandom(16 * count))
    for start in range(0, 16 * count, 16):
        random[start + 6] = (random[start + 6] & 0x0F) | 0x40  # version 4
        random[start + 8] = (random[start + 8] & 0x3F) | 0x80  # RFC 4122 variant
        h = random[start:start + 16].hex()
        yield f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def delivery_rows(pairs: list[tuple[str, str, str, datetime]]) -> list[dict[str, Any]]:
    """Pending deliveries, due at once, for (endpoint id, event id, event type, now) each."""
    pending = DeliveryStatus.pending.value
    return [{"id": delivery_id, "endpoint_id": endpoint_id, "event_id": event_id,
             "event_type": event_type, "status": pending, "attempt_count": 0,
             "next_attempt_at": now, "attempts": [], "created_at": now}
            for delivery_id, (endpoint_id, event_id, event_type, now)
            in zip(new_ids(len(pairs)), pairs, strict=True)]


# events

@dataclass(frozen=True)
class Recorded:
    """What ingest did with one event: stored now (`created`) or already stored before."""

    event: StoredEvent
    created: bool


@dataclass(frozen=True)
class Reaction:
    """Work a newly stored event of `event_type` from `source` queues in the ingest's
    transaction (dunning reacts to ledger's `invoice.overdue`). `react` returns whether it
    queued something; `wake` then runs after commit."""

    event_type: str
    source: str
    react: Callable[[AsyncSession, StoredEvent], Awaitable[bool]]
    wake: Wake = None


async def record_event(session: AsyncSession, *, clock: Clock, event: Event, wake: Wake = None,
                       reactions: Sequence[Reaction] = ()) -> tuple[StoredEvent, bool]:
    """Store `event` once (dedup by id) and queue a delivery to every endpoint that wants it.

    Returns the stored event and whether it is new. Notifier's own events (for example
    `dunning.escalated`) go through here too: notifier has no outbox.
    """
    (recorded,) = await record_events(session, clock=clock, events=[event], wake=wake,
                                      reactions=reactions)
    return recorded.event, recorded.created


async def record_events(session: AsyncSession, *, clock: Clock, events: Sequence[Event],
                        wake: Wake = None, reactions: Sequence[Reaction] = ()) -> list[Recorded]:
    """Store each event once and queue its deliveries, in the caller's transaction; one result
    per event, in order.

    One INSERT for the events (`ON CONFLICT DO NOTHING`: an id stored before, or by a
    concurrent request, is not new), one read of the subscribed endpoints and one INSERT of
    the deliveries, however many events; then each new event's `reactions`. An id repeated
    within `events` is stored once; the later copies count as already stored. Each event is
    received at its own `clock.now()`, so due order follows the order of `events` as it
    follows the order of single posts.
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
        deliveries = delivery_rows([(endpoint.id, event.id, event.type, event.received_at)
                                     for event in stored.values() for endpoint in endpoints
                                     if wants(endpoint.event_types, event.type)])
        await repository.add_deliveries(session, deliveries)
        if deliveries and wake is not None:
            after_commit(session, wake)
        for event in stored.values():
            for reaction in reactions:
                if event.type == reaction.event_type and event.source == reaction.source \
                        and await reaction.react(session, event) and reaction.wake is not None:
                    after_commit(session, reaction.wake)
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
