"""Event ingest and the event log, as the outbox relays and integrators use them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.fixtures.notifier import deliveries, envelope, ingest, subscribe


async def test_ingest_stores_once_and_delivers_once(system):
    await subscribe(system)
    event = envelope(system)
    first = await ingest(system, event, expect=201)
    again = await ingest(system, event, expect=200)
    assert first == again
    assert first["id"] == event["id"] and first["type"] == "order.approved"

    listed = (await system.client("notifier").get("/v1/events")).json()["items"]
    assert [e["id"] for e in listed] == [event["id"]]
    assert len(await deliveries(system, event_id=event["id"])) == 1

    assert await system.pump() == 1
    assert len(system.receiver.requests) == 1


async def test_concurrent_duplicates_are_stored_once(system):
    await subscribe(system)
    event = envelope(system)
    service = system.client("notifier", "service")
    results = await asyncio.gather(*(service.post("/v1/events", json=event) for _ in range(3)))
    assert sorted(r.status_code for r in results) == [200, 200, 201]
    assert len(await deliveries(system)) == 1


async def test_relayed_outbox_event_is_accepted_once(system):
    """An event posted twice by the relay (a lease that ran out) is stored once."""
    event = envelope(system, source="credit", type="credit.hold_placed")
    service = system.client("notifier", "service")
    for _ in range(2):
        r = await service.post("/v1/events", json=event, headers={"Idempotency-Key": event["id"]})
        assert r.status_code in (200, 201)
    listed = (await system.client("notifier").get("/v1/events")).json()["items"]
    assert len(listed) == 1


async def test_list_filters_by_type_and_time_and_pages(system):
    ids = []
    for i in range(5):
        event = envelope(system, "order.approved" if i % 2 else "invoice.overdue")
        ids.append((event["id"], event["type"]))
        await ingest(system, event)
        system.clock.advance(minutes=1)
    notifier = system.client("notifier", "auditor")

    approved = (await notifier.get("/v1/events", params={"type": "order.approved"})).json()
    assert [e["id"] for e in approved["items"]] == [i for i, t in ids if t == "order.approved"]

    start = system.clock.now() - timedelta(minutes=5)
    later = (await notifier.get("/v1/events", params={
        "after": (start + timedelta(minutes=2)).isoformat()})).json()["items"]
    assert [e["id"] for e in later] == [i for i, _ in ids[3:]]

    seen, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = (await notifier.get("/v1/events", params=params)).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [i for i, _ in ids]


async def test_get_one_event_and_unknown_id(system):
    event = envelope(system)
    await ingest(system, event)
    finance = system.client("notifier", "finance")
    got = await finance.get(f"/v1/events/{event['id']}")
    assert got.status_code == 200 and got.json()["data"] == event["data"]
    missing = await finance.get("/v1/events/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


async def test_naive_timestamp_is_taken_as_utc(system):
    event = envelope(system, occurred_at="2026-01-05T09:00:00")
    stored = await ingest(system, event)
    assert stored["occurred_at"].startswith("2026-01-05T09:00:00")
    assert stored["occurred_at"].endswith(("Z", "+00:00"))


async def test_ingest_needs_a_valid_key_and_the_service_role(system):
    event = envelope(system)
    anonymous = await system.client("notifier", None).post("/v1/events", json=event)
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
    for principal in ("sales", "auditor", "finance"):
        refused = await system.client("notifier", principal).post("/v1/events", json=event)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert (await system.client("notifier", "sales").get("/v1/events")).status_code == 403
    assert (await system.client("notifier", "admin").post("/v1/events", json=event)).status_code == 201


async def test_bad_envelopes_are_refused_with_every_field(system):
    event = envelope(system, type="Not A Type", colour="red")
    del event["subject"]
    r = await system.client("notifier", "service").post("/v1/events", json=event)
    assert r.status_code == 422
    errors = {e["field"]: e["message"] for e in r.json()["errors"]}
    assert errors["colour"] == "unknown field"
    assert {"type", "subject"} <= errors.keys()
