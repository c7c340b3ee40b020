"""The outbox relay (shared/outbox.py) on the credit service: several due rows go to notifier
in one batch POST, exactly the rows notifier accepted are marked dispatched, and a notifier
that does not know batches gets them one by one."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from shared.events import new_event

NOTIFIER = "http://notifier.test"


class Recorder(httpx.AsyncBaseTransport):
    """Passes requests on to `inner`, keeping each JSON body sent to `POST /v1/events`."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.posts: list[tuple[dict[str, str], Any]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/events":
            self.posts.append((dict(request.headers), json.loads(await request.aread())))
        return await self.inner.handle_async_request(request)


@pytest.fixture
def recorder(system) -> Recorder:
    recorder = Recorder(system.mounts[NOTIFIER])
    system.mounts[NOTIFIER] = recorder
    return recorder


async def _enqueue(system, count: int, **row: Any) -> list[str]:
    """`count` events in credit's outbox (a type nobody subscribes to); their ids."""
    state = system.state("credit")
    events = [new_event(system.clock, type="credit.relay_checked", source="credit",
                        subject=f"C-{i}", data={"n": i}) for i in range(count)]
    async with state.db.session() as session, session.begin():
        await state.outbox.enqueue_many(session, events)
        if row:
            await session.execute(state.outbox.table.insert().values(
                event_id=row["payload"]["id"], type="x", subject="x",
                payload=json.dumps(row["payload"]), created_at=system.clock.now(),
                available_at=system.clock.now(), attempts=0))
    return [str(e.id) for e in events]


async def _outbox(system) -> dict[str, Any]:
    state = system.state("credit")
    t = state.outbox.table
    async with state.db.session(read_only=True) as session:
        rows = await session.execute(select(t.c.event_id, t.c.dispatched_at, t.c.attempts,
                                            t.c.last_error, t.c.available_at))
        return {row.event_id: row for row in rows}


async def _stored(system) -> set[str]:
    items = (await system.client("notifier").get(
        "/v1/events", params={"type": "credit.relay_checked", "limit": 200})).json()["items"]
    return {e["id"] for e in items}


async def test_due_rows_go_in_one_batch_post(system, recorder):
    ids = await _enqueue(system, 3)
    relay = system.state("credit").relay
    assert await relay.dispatch_once() == 3
    ((headers, body),) = recorder.posts
    assert [e["id"] for e in body["events"]] == ids  # in outbox order
    assert headers["idempotency-key"].startswith("events:")
    assert await _stored(system) == set(ids)
    rows = await _outbox(system)
    assert all(rows[i].dispatched_at is not None and rows[i].attempts == 1 for i in ids)
    assert await relay.dispatch_once() == 0 and len(recorder.posts) == 1


async def test_one_row_is_posted_as_the_single_envelope(system, recorder):
    (event_id,) = await _enqueue(system, 1)
    assert await system.state("credit").relay.dispatch_once() == 1
    ((headers, body),) = recorder.posts
    assert body["id"] == event_id and "events" not in body
    assert headers["idempotency-key"] == event_id


async def test_batches_are_no_larger_than_the_post_size(system, recorder):
    relay = system.state("credit").relay
    relay.post_batch_size = 2
    ids = await _enqueue(system, 5)
    assert await relay.dispatch_once() == 5
    assert [len(b["events"]) if "events" in b else 1 for _, b in recorder.posts] == [2, 2, 1]
    assert await _stored(system) == set(ids)


async def test_only_the_rows_notifier_accepted_are_dispatched(system, recorder):
    bad = {"id": "7f1b1f57-0a8f-4d0c-9a57-3d1d6a0c2b11", "type": "Not A Type",
           "occurred_at": system.clock.now().isoformat(), "source": "credit", "subject": "C-x",
           "data": {}}
    ids = await _enqueue(system, 2, payload=bad)
    before = ids[0]
    await system.client("notifier", "service").post("/v1/events", json=json.loads(
        json.dumps((await _outbox_payloads(system))[before])))  # notifier has it already
    relay = system.state("credit").relay
    assert await relay.dispatch_once() == 2  # the one stored before counts as accepted
    rows = await _outbox(system)
    assert all(rows[i].dispatched_at is not None for i in ids)
    refused = rows[bad["id"]]
    assert refused.dispatched_at is None and refused.attempts == 1
    assert "refused" in refused.last_error and "type" in refused.last_error
    assert refused.available_at == system.clock.now() + timedelta(seconds=1)
    system.clock.advance(seconds=1)
    assert await relay.dispatch_once() == 0  # still refused, backing off
    assert (await _outbox(system))[bad["id"]].attempts == 2
    assert await _stored(system) == set(ids)


async def _outbox_payloads(system) -> dict[str, Any]:
    state = system.state("credit")
    t = state.outbox.table
    async with state.db.session(read_only=True) as session:
        rows = await session.execute(select(t.c.event_id, t.c.payload))
        return {row.event_id: json.loads(row.payload) for row in rows}


async def test_notifier_down_backs_off_the_whole_batch(system):
    ids = await _enqueue(system, 3)
    healthy = system.mounts[NOTIFIER]

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("notifier is down", request=request)

    system.mounts[NOTIFIER] = httpx.MockTransport(down)
    relay = system.state("credit").relay
    assert await relay.dispatch_once() == 0
    rows = await _outbox(system)
    assert all(rows[i].dispatched_at is None and rows[i].attempts == 1 for i in ids)
    assert all("notifier" in rows[i].last_error for i in ids)
    system.mounts[NOTIFIER] = healthy
    assert await relay.dispatch_once() == 0  # backing off
    system.clock.advance(seconds=1)
    assert await relay.dispatch_once() == 3
    assert await _stored(system) == set(ids)


async def test_a_notifier_without_batches_gets_the_rows_one_by_one(system):
    """A notifier from before batches reads `{"events": [...]}` as a bad envelope (422)."""
    new = system.mounts[NOTIFIER]
    singles: list[str] = []

    async def old_notifier(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/events":
            body = json.loads(await request.aread())
            if "events" in body:
                return httpx.Response(422, json={"code": "validation_failed", "errors": [
                    {"field": "events", "message": "unknown field"}]})
            singles.append(body["id"])
        return await new.handle_async_request(request)

    system.mounts[NOTIFIER] = httpx.MockTransport(old_notifier)
    ids = await _enqueue(system, 3)
    assert await system.state("credit").relay.dispatch_once() == 3
    assert singles == ids
    assert await _stored(system) == set(ids)
