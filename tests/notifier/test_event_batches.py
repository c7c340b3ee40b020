"""Batch ingest, `POST /v1/events {"events": [...]}` (an extension the outbox relays use):
each event is stored once and answered on its own, a bad one refused without the others."""

from __future__ import annotations

from tests.fixtures.notifier import deliveries, envelope, ingest, subscribe


async def _batch(system, events, expect: int = 207, **headers):
    r = await system.client("notifier", "service").post("/v1/events", json={"events": events},
                                                         headers=headers)
    assert r.status_code == expect, r.text
    return r


async def test_each_event_is_stored_once_and_answered_in_order(system):
    await subscribe(system)
    before, first, second = envelope(system), envelope(system), envelope(system)
    await ingest(system, before)
    body = (await _batch(system, [first, before, second, first])).json()
    assert [(r["id"], r["status"]) for r in body["results"]] == [
        (first["id"], 201), (before["id"], 200), (second["id"], 201), (first["id"], 200)]
    assert (body["created"], body["duplicates"], body["refused"]) == (2, 2, 0)

    listed = (await system.client("notifier").get("/v1/events")).json()["items"]
    assert sorted(e["id"] for e in listed) == sorted([before["id"], first["id"], second["id"]])
    for event in (before, first, second):
        assert len(await deliveries(system, event_id=event["id"])) == 1
    assert await system.pump() == 3
    assert sorted(r["headers"]["webhook-id"] for r in system.receiver.requests) == sorted(
        [before["id"], first["id"], second["id"]])


async def test_a_bad_event_is_refused_and_the_others_stored(system):
    await subscribe(system)
    good, also_good = envelope(system), envelope(system)
    bad = envelope(system, type="Not A Type", colour="red")
    del bad["subject"]
    body = (await _batch(system, [good, bad, {"id": 42}, also_good])).json()
    results = body["results"]
    assert [r["status"] for r in results] == [201, 422, 422, 201]
    assert results[1]["id"] == bad["id"] and results[1]["code"] == "validation_failed"
    errors = {e["field"]: e["message"] for e in results[1]["errors"]}
    assert errors["colour"] == "unknown field" and {"type", "subject"} <= errors.keys()
    assert results[2]["id"] is None and results[2]["code"] == "validation_failed"
    assert (body["created"], body["duplicates"], body["refused"]) == (2, 0, 2)
    stored = {e["id"] for e in (await system.client("notifier").get("/v1/events")).json()["items"]}
    assert stored == {good["id"], also_good["id"]}
    assert len(await deliveries(system)) == 2


async def test_the_batch_itself_must_be_well_formed(system):
    service = system.client("notifier", "service")
    cases = [({"events": []}, "events"), ({"events": "x"}, "events"),
             ({"events": [envelope(system)], "more": 1}, "more"),
             # an item that is not an object is no envelope at all (the schema says objects)
             ({"events": [envelope(system), 42]}, "events[1]"),
             ({"events": [envelope(system) for _ in range(501)]}, "events")]
    for body, field in cases:
        r = await service.post("/v1/events", json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["code"] == "validation_failed"
        assert field in {e["field"] for e in r.json()["errors"]}, r.json()
    assert (await system.client("notifier").get("/v1/events")).json()["items"] == []


async def test_the_single_form_is_unchanged(system):
    """Malformed JSON, an empty body and a bad envelope read as before batches existed."""
    service = system.client("notifier", "service")
    malformed = await service.post("/v1/events", content=b"{not json",
                                   headers={"content-type": "application/json"})
    assert malformed.status_code == 422
    assert malformed.json()["errors"] == [{"field": "body", "message": "malformed JSON"}]
    empty = await service.post("/v1/events", content=b"",
                               headers={"content-type": "application/json"})
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "body"
    event = envelope(system)
    created = await service.post("/v1/events", json=event)
    assert created.status_code == 201 and created.headers["location"] == f"/v1/events/{event['id']}"
    assert set(created.json()) == {"id", "type", "occurred_at", "source", "subject", "data",
                                   "received_at"}


async def test_a_batch_replays_under_its_idempotency_key(system):
    events = [envelope(system), envelope(system)]
    first = await _batch(system, events, **{"Idempotency-Key": "batch-1"})
    again = await _batch(system, events, **{"Idempotency-Key": "batch-1"})
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == first.json()
    fresh = (await _batch(system, events, **{"Idempotency-Key": "batch-2"})).json()
    assert [r["status"] for r in fresh["results"]] == [200, 200]


async def test_overdue_steps_in_a_batch_queue_one_dunning_run(system):
    steps = [envelope(system, "invoice.overdue", subject="INV-9",
                      data={"invoice_id": "INV-9", "level": 15, "days_overdue": 15})
             for _ in range(2)]
    body = (await _batch(system, steps)).json()
    assert [r["status"] for r in body["results"]] == [201, 201]
    runs = (await system.client("notifier", "finance").get(
        "/v1/dunning-runs", params={"invoice_id": "INV-9"})).json()["items"]
    assert [(r["threshold_days"], r["event_id"]) for r in runs] == [(15, steps[0]["id"])]


async def test_a_batch_needs_the_service_role(system):
    r = await system.client("notifier", "finance").post(
        "/v1/events", json={"events": [envelope(system)]})
    assert r.status_code == 403 and r.json()["code"] == "forbidden"


async def test_openapi_documents_both_forms(system):
    spec = (await system.client("notifier", None).get("/openapi.json")).json()
    op = spec["paths"]["/v1/events"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    assert len(schema["oneOf"]) == 2 and schema["examples"]
    assert "events" in schema["oneOf"][1]["properties"]
    assert {"200", "201", "207"} <= op["responses"].keys()
