"""Deliveries: signed posts, the event-type filter, retries, giving up, manual retry,
auto-disable and the delivery-time address check. Time moves only with the frozen clock."""

from __future__ import annotations

import json
import socket
from datetime import datetime, timedelta

from shared.webhooks import verify
from tests.fixtures.notifier import deliveries, envelope, ingest, subscribe

SCHEDULE = [5, 300, 1800, 7200, 18000, 36000, 36000]


async def test_delivery_is_signed_per_standard_webhooks(system):
    endpoint = await subscribe(system, "/signed")
    event = envelope(system)
    await ingest(system, event)
    assert await system.pump() == 1

    (request,) = system.receiver.requests
    assert request["path"] == "/signed"
    headers = request["headers"]
    assert headers["webhook-id"] == event["id"]
    assert int(headers["webhook-timestamp"]) == int(system.clock.now().timestamp())
    assert "authorization" not in headers  # the service key never leaves o2c
    verify(endpoint["secret"], headers, request["body"], now=system.clock.now())
    body = json.loads(request["body"])
    assert body["id"] == event["id"] and body["data"] == event["data"]
    assert set(body) == {"id", "type", "occurred_at", "source", "subject", "data"}

    (delivery,) = await deliveries(system, endpoint_id=endpoint["id"])
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 1
    assert delivery["attempts"][0]["response_status"] == 200
    assert delivery["attempts"][0]["error"] is None


async def test_only_matching_endpoints_receive_an_event(system):
    approved = await subscribe(system, "/approved", ["order.approved"])
    everything = await subscribe(system, "/all", ["*"])
    empty = await subscribe(system, "/empty", [])
    invoices = await subscribe(system, "/invoices", ["invoice.paid"])
    await ingest(system, envelope(system, "order.approved"))
    await system.pump()
    assert sorted(r["path"] for r in system.receiver.requests) == ["/all", "/approved", "/empty"]
    assert {d["endpoint_id"] for d in await deliveries(system)} == {
        approved["id"], everything["id"], empty["id"]}
    assert await deliveries(system, endpoint_id=invoices["id"]) == []


async def test_failures_follow_the_schedule_then_give_up(system):
    await subscribe(system)
    system.receiver.status = 500
    await ingest(system, envelope(system))
    assert await system.pump() == 1
    (delivery,) = await deliveries(system)
    assert delivery["status"] == "pending" and delivery["attempt_count"] == 1
    first_at = datetime.fromisoformat(delivery["attempts"][0]["at"])
    assert datetime.fromisoformat(delivery["next_attempt_at"]) == first_at + timedelta(seconds=5)
    assert delivery["attempts"][0]["response_status"] == 500
    assert delivery["attempts"][0]["error"] == "HTTP 500"

    system.clock.advance(seconds=4)
    assert await system.pump() == 0  # not due yet
    for attempt, delay in enumerate(SCHEDULE, start=2):
        system.clock.advance(seconds=delay)
        assert await system.pump() == 1, attempt
        (delivery,) = await deliveries(system)
        assert delivery["attempt_count"] == attempt
    assert delivery["status"] == "failed" and delivery["next_attempt_at"] is None
    assert len(delivery["attempts"]) == 8
    assert len(system.receiver.requests) == 8
    system.clock.advance(days=1)
    assert await system.pump() == 0
    failed = await deliveries(system, status="failed")
    assert [d["id"] for d in failed] == [delivery["id"]]


async def test_a_retry_succeeds_once_the_receiver_recovers(system):
    await subscribe(system)
    system.receiver.status = 503
    await ingest(system, envelope(system))
    await system.pump()
    system.receiver.status = 204
    system.clock.advance(seconds=5)
    assert await system.pump() == 1
    (delivery,) = await deliveries(system)
    assert delivery["status"] == "succeeded"
    assert [a["response_status"] for a in delivery["attempts"]] == [503, 204]


async def test_manual_retry_of_a_failed_delivery(system):
    await subscribe(system)
    system.receiver.status = 500
    await ingest(system, envelope(system))
    await system.pump()
    for delay in SCHEDULE:
        system.clock.advance(seconds=delay)
        await system.pump()
    (delivery,) = await deliveries(system)
    assert delivery["status"] == "failed"

    system.receiver.status = 200
    retried = await system.client("notifier", "service").post(
        f"/v1/deliveries/{delivery['id']}/retry")
    assert retried.status_code == 200, retried.text
    assert retried.json()["status"] == "pending"
    assert datetime.fromisoformat(retried.json()["next_attempt_at"]) == system.clock.now()
    assert await system.pump() == 1
    got = (await system.client("notifier", "auditor").get(
        f"/v1/deliveries/{delivery['id']}")).json()
    assert got["status"] == "succeeded" and got["attempt_count"] == 9


async def test_endpoint_failing_for_days_is_disabled(system):
    endpoint = await subscribe(system)
    system.receiver.status = 500
    await ingest(system, envelope(system))
    await system.pump()
    started = system.clock.now()
    got = (await system.client("notifier").get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert datetime.fromisoformat(got["failing_since"]) == started

    for day in range(1, 6):  # a new failing event every day
        system.clock.set(started + timedelta(days=day))
        await ingest(system, envelope(system))
        await system.pump()
    got = (await system.client("notifier").get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert got["enabled"] is True  # exactly five days is not more than five

    system.clock.set(started + timedelta(days=5, hours=1))
    await ingest(system, envelope(system))
    await system.pump()
    got = (await system.client("notifier").get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert got["enabled"] is False and "failing since" in got["disabled_reason"]

    sent = len(system.receiver.requests)
    await ingest(system, envelope(system))
    system.clock.advance(days=2)
    assert await system.pump() == 0
    assert len(system.receiver.requests) == sent
    retry = await system.client("notifier").post(
        f"/v1/deliveries/{(await deliveries(system))[0]['id']}/retry")
    assert retry.status_code == 409 and retry.json()["code"] == "guard_failed"


async def test_a_success_resets_the_failure_run(system):
    endpoint = await subscribe(system)
    system.receiver.status = 500
    await ingest(system, envelope(system))
    await system.pump()
    system.clock.advance(days=4)
    system.receiver.status = 200
    await ingest(system, envelope(system))
    await system.pump()
    got = (await system.client("notifier").get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert got["failing_since"] is None
    system.receiver.status = 500
    system.clock.advance(days=2)
    await ingest(system, envelope(system))
    await system.pump()
    got = (await system.client("notifier").get(f"/v1/webhook-endpoints/{endpoint['id']}")).json()
    assert got["enabled"] is True


async def test_host_that_now_resolves_privately_is_not_sent_to(system, monkeypatch):
    """DNS that changes after creation (rebinding) is caught at delivery time."""
    endpoint = await subscribe(system, "/rebound")
    real = socket.getaddrinfo

    def rebound(host, *args, **kwargs):
        if host == "hooks.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    await ingest(system, envelope(system))
    assert await system.pump() == 1
    assert system.receiver.requests == []
    (delivery,) = await deliveries(system, endpoint_id=endpoint["id"])
    assert delivery["status"] == "pending"
    assert "non-public address" in delivery["attempts"][0]["error"]

    service_endpoint = await subscribe(system, "/internal", principal="service")
    await ingest(system, envelope(system))
    await system.pump()
    assert [r["path"] for r in system.receiver.requests] == ["/internal"]
    assert (await deliveries(system, endpoint_id=service_endpoint["id"]))[0]["status"] == "succeeded"


async def test_delivery_list_pages_and_filters(system):
    await subscribe(system)
    events = []
    for _ in range(3):
        events.append(envelope(system))
        await ingest(system, events[-1])
        system.clock.advance(seconds=1)
    auditor = system.client("notifier", "auditor")
    page = (await auditor.get("/v1/deliveries", params={"limit": 2})).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = (await auditor.get("/v1/deliveries", params={"cursor": page["next_cursor"]})).json()
    assert [d["event_id"] for d in page["items"] + rest["items"]] == [e["id"] for e in events]
    assert rest["next_cursor"] is None
    assert len(await deliveries(system, status="pending")) == 3
    assert await deliveries(system, status="succeeded") == []
    bad = await auditor.get("/v1/deliveries", params={"status": "lost"})
    assert bad.status_code == 422
    bad_cursor = await auditor.get("/v1/deliveries", params={"cursor": "garbage"})
    assert bad_cursor.status_code == 422


async def test_delivery_roles_and_unknown_ids(system):
    assert (await system.client("notifier", None).get("/v1/deliveries")).status_code == 401
    assert (await system.client("notifier", "finance").get("/v1/deliveries")).status_code == 403
    auditor = system.client("notifier", "auditor")
    missing = await auditor.get("/v1/deliveries/nope")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert (await auditor.post("/v1/deliveries/nope/retry")).status_code == 403
    assert (await system.client("notifier").post("/v1/deliveries/nope/retry")).status_code == 404


async def test_metrics_report_pending_deliveries(system):
    await subscribe(system)
    await ingest(system, envelope(system))
    metrics = await system.client("notifier", None).get("/metrics")
    assert 'o2c_queue_depth{queue="deliveries",service="notifier"} 1.0' in metrics.text
