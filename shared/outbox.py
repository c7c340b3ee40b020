"""The transactional outbox and its relay to notifier.

A service writes its events to its own `outbox` table in the same transaction as the change
(`enqueue`). `OutboxRelay` claims due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so
several replicas never take the same row; a single relay per SQLite file) and posts them to
notifier `POST /v1/events`: one row as the single envelope with the event id as idempotency
key; several, in seq order, as batches `{"events": [...]}` of up to `post_batch_size` (an
extension notifier answers 207 with one result per event), keyed by a hash of their ids. It
marks dispatched exactly the rows notifier accepted (stored now or before), all in one
transaction. A row notifier did not accept backs off exponentially (capped) and is tried
again, so nothing is lost while notifier is down; notifier stores each event id once, so a
row that is posted twice (a lease that ran out) is still delivered once. A notifier that
does not know batches (it answers a batch 422) gets the rows one by one.

Each row keeps the `X-Request-ID` it was written under, and the relay carries it on (DESIGN
§3), so notifier logs each event under the request that caused it: a POST of one request's
events goes under that id; a batch of several requests' events (under load, the usual case)
goes under the relay pass's own id and lists each event's id in `request_ids`, which notifier
logs per event. Batches stay full-sized either way. (Rows without an id: the pass's own.)
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from shared.clock import Clock
from shared.db import Database, UTCDateTime, after_commit
from shared.errors import DependencyUnavailable
from shared.events import Event
from shared.failpoints import failpoint
from shared.http import ServiceHttp
from shared.observability import current_request_id, reset_request_id, set_request_id, work_request_id
from shared.polling import poll_loop

log = logging.getLogger("o2c.outbox")
MAX_POST_BATCH = 500  # notifier takes up to this many events in one POST


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox", metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
               autoincrement=True),
        Column("event_id", String(36), nullable=False, unique=True),
        Column("type", String(100), nullable=False),
        Column("subject", String(100), nullable=False),
        Column("payload", Text, nullable=False),
        Column("created_at", UTCDateTime, nullable=False),
        Column("available_at", UTCDateTime, nullable=False),
        Column("claimed_until", UTCDateTime, nullable=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("dispatched_at", UTCDateTime, nullable=True),
        Column("last_error", String(500), nullable=True),
        # The X-Request-ID of the request (or worker pass) that wrote the event: the relay
        # posts it on, so one order's trail carries on into notifier (DESIGN.md §3).
        Column("request_id", String(128), nullable=True),
        Index("ix_outbox_pending", "dispatched_at", "available_at"),
    )


class Outbox:
    """Writes events into a service's outbox inside the caller's transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self.relay: OutboxRelay | None = None

    async def enqueue(self, session: AsyncSession, event: Event) -> None:
        await self.enqueue_many(session, [event])

    async def enqueue_many(self, session: AsyncSession, events: list[Event]) -> None:
        """Write events in the caller's transaction (one multi-row INSERT); the relay wakes on commit."""
        if not events:
            return
        request_id = current_request_id()
        await session.execute(self.table.insert(), [{
            "event_id": str(e.id), "type": e.type, "subject": e.subject,
            "payload": e.model_dump_json(), "created_at": e.occurred_at,
            "available_at": e.occurred_at, "attempts": 0, "request_id": request_id}
            for e in events])
        if self.relay is not None:
            after_commit(session, self.relay.wake)

    async def pending(self, session: AsyncSession) -> int:
        stmt = select(func.count()).select_from(self.table).where(
            self.table.c.dispatched_at.is_(None))
        return int((await session.execute(stmt)).scalar_one())


class OutboxRelay:
    """Posts outbox rows to notifier until each is accepted."""

    def __init__(self, *, db: Database, outbox: Outbox, http: ServiceHttp, clock: Clock,
                 batch_size: int = 100, lease_seconds: float = 30.0,
                 max_backoff_seconds: float = 300.0, poll_seconds: float = 1.0,
                 service: str = "", post_batch_size: int = 100) -> None:
        self.db = db
        self.service = service
        self.table = outbox.table
        self.http = http
        self.clock = clock
        self.batch_size = batch_size
        self.post_batch_size = max(1, min(post_batch_size, MAX_POST_BATCH))
        self.lease = timedelta(seconds=lease_seconds)
        self.max_backoff = max_backoff_seconds
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        outbox.relay = self

    def wake(self) -> None:
        self._wake.set()

    async def _claim(self) -> list[Any]:
        t, now = self.table, self.clock.now()
        async with self.db.session() as session, session.begin():
            due = (
                select(t.c.seq)
                .where(t.c.dispatched_at.is_(None), t.c.available_at <= now,
                       or_(t.c.claimed_until.is_(None), t.c.claimed_until < now))
                .order_by(t.c.seq).limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            seqs = list((await session.execute(due)).scalars())
            if not seqs:
                return []
            await session.execute(update(t).where(t.c.seq.in_(seqs))
                                  .values(claimed_until=now + self.lease))
            rows = await session.execute(
                select(t.c.seq, t.c.event_id, t.c.payload, t.c.attempts, t.c.request_id)
                .where(t.c.seq.in_(seqs)).order_by(t.c.seq))
            return list(rows)

    async def _post(self, payload: str, event_id: str) -> str | None:
        """Post one event; None when notifier accepted it, else the reason it did not."""
        try:
            response = await self.http.call("notifier", "POST", "/v1/events",
                                            json=json.loads(payload), idempotency_key=event_id)
        except DependencyUnavailable as exc:
            return exc.detail
        if 200 <= response.status_code < 300:
            return None
        return f"notifier answered {response.status_code}: {response.text[:200]}"

    @staticmethod
    def _batch_body(rows: list[Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"events": [json.loads(row.payload) for row in rows]}
        if len({row.request_id for row in rows}) > 1:
            body["request_ids"] = [row.request_id for row in rows]
        return body

    async def _post_batch(self, rows: list[Any]) -> list[str | None]:
        """Post several events in one request; per row, None when notifier accepted it, else
        the reason it did not."""
        ids = [row.event_id for row in rows]
        key = "events:" + hashlib.sha256(",".join(ids).encode()).hexdigest()
        try:
            response = await self.http.call(
                "notifier", "POST", "/v1/events",
                json=self._batch_body(rows), idempotency_key=key)
        except DependencyUnavailable as exc:
            return [exc.detail] * len(rows)
        if response.status_code == 207:
            try:
                results = response.json()["results"]
            except (ValueError, KeyError, TypeError):
                results = None
            if not isinstance(results, list) or len(results) != len(rows) or any(
                    not isinstance(r, dict)
                    or r.get("id") is not None and str(r["id"]).lower() != event_id.lower()
                    for r, event_id in zip(results, ids, strict=True)):
                return ["notifier answered a batch with results that do not match it"] * len(rows)
            return [None if r.get("status") in (200, 201) else
                    f"notifier refused the event ({r.get('status')}): "
                    f"{json.dumps(r.get('errors') or r.get('detail'))[:200]}" for r in results]
        if response.status_code == 422:  # a notifier without batches: one by one, as before
            return [await self._post(row.payload, row.event_id) for row in rows]
        return [f"notifier answered {response.status_code}: {response.text[:200]}"] * len(rows)

    def _posts(self, rows: list[Any]) -> Iterator[list[Any]]:
        """The rows in POSTs of at most `post_batch_size`, in seq order."""
        for start in range(0, len(rows), self.post_batch_size):
            yield rows[start:start + self.post_batch_size]

    async def dispatch_once(self) -> int:
        """Send every due event once; returns how many notifier accepted."""
        with work_request_id() as own_id:
            rows = await self._claim()
            errors: list[str | None] = []
            for chunk in self._posts(rows):
                # One request's events go under its id; a batch of several requests' events
                # goes under the relay pass's id and names each event's own in the body.
                origins = {row.request_id for row in chunk}
                shared = origins.pop() if len(origins) == 1 else None
                token = set_request_id(shared or own_id)
                try:
                    if len(chunk) == 1:
                        outcome = [await self._post(chunk[0].payload, chunk[0].event_id)]
                    else:
                        outcome = await self._post_batch(chunk)
                finally:
                    reset_request_id(token)
                if None in outcome:
                    failpoint(f"{self.service}.outbox.after_post")
                errors += outcome
            if rows:
                await self._settle(rows, errors)
            return errors.count(None)

    async def _settle(self, rows: list[Any], errors: list[str | None]) -> None:
        """Mark the accepted rows dispatched and back off the others, in one transaction."""
        t, now = self.table, self.clock.now()
        accepted = [row.seq for row, error in zip(rows, errors, strict=True) if error is None]
        failed = [(row, error) for row, error in zip(rows, errors, strict=True) if error is not None]
        async with self.db.session() as session, session.begin():
            if accepted:
                await session.execute(
                    update(t).where(t.c.seq.in_(accepted))
                    .values(dispatched_at=now, claimed_until=None, attempts=t.c.attempts + 1,
                            last_error=None))
            if failed:
                await session.execute(
                    update(t).where(t.c.seq == bindparam("b_seq"))
                    .values(attempts=t.c.attempts + 1, claimed_until=None,
                            available_at=bindparam("b_available"), last_error=bindparam("b_error")),
                    [{"b_seq": row.seq, "b_error": error[:500],
                      "b_available": now + timedelta(seconds=min(self.max_backoff,
                                                                 2.0 ** row.attempts))}
                     for row, error in failed])
        for error, count in Counter(error for _, error in failed).items():
            first = next(row for row, e in failed if e == error)
            log.warning("%d event(s) not accepted by notifier (first %s, attempt %d): %s",
                        count, first.event_id, first.attempts + 1, error,
                        extra={"event_id": first.event_id, "attempt": first.attempts + 1})

    async def run(self, stop: asyncio.Event) -> None:
        """Background loop: dispatch, then sleep until woken or the poll interval passes."""
        await poll_loop(self.dispatch_once, stop=stop, wake=self._wake,
                        batch_size=self.batch_size, poll_seconds=self.poll_seconds, log=log,
                        what="outbox relay")
