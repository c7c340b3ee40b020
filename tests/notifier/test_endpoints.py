"""Webhook endpoints: CRUD, secrets shown once, rotation, replay and the URL guard."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.webhooks import InvalidSignature, verify
from tests.fixtures.notifier import deliveries, envelope, ingest, subscribe
from tests.harness import HOOKS_URL, external_endpoints


@pytest.fixture
def system_overrides() -> dict[str, dict]:
    return {"notifier": {"webhook_allow_private": False}}


async def test_create_shows_the_secret_once(system):
    notifier = system.client("notifier", "admin")
    created = await notifier.post("/v1/webhook-endpoints", json={
        "url": HOOKS_URL + "/a", "event_types": ["invoice.overdue", "invoice.overdue"],
        "description": "Collections"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["secret"].startswith("whsec_")
    assert body["event_types"] == ["invoice.overdue"]
    assert body["enabled"] is True and body["created_by"] == "admin"
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"] == f"/v1/webhook-endpoints/{body['id']}"

    got = await notifier.get(f"/v1/webhook-endpoints/{body['id']}")
    assert got.status_code == 200 and "secret" not in got.json()
    listed = external_endpoints((await notifier.get("/v1/webhook-endpoints")).json()["items"])
    assert [e["id"] for e in listed] == [body["id"]] and "secret" not in listed[0]


async def test_update_with_if_match_and_delete(system):
    notifier = system.client("notifier", "admin")
    endpoint = await subscribe(system)
    url = f"/v1/webhook-endpoints/{endpoint['id']}"
    patched = await notifier.patch(url, json={"event_types": ["order.approved"],
                                              "description": "orders"},
                                   headers={"If-Match": '"1"'})
    assert patched.status_code == 200, patched.text
    assert patched.json()["version"] == 2 and patched.json()["event_types"] == ["order.approved"]
    assert patched.headers["etag"] == '"2"'
    stale = await notifier.patch(url, json={"description": "x"}, headers={"If-Match": '"1"'})
    assert stale.status_code == 412 and stale.json()["code"] == "version_conflict"
    nulled = await notifier.patch(url, json={"url": None})
    assert nulled.status_code == 422

    await ingest(system, envelope(system, "order.approved"))
    assert (await notifier.delete(url)).status_code == 204
    assert (await notifier.get(url)).status_code == 404
    assert (await notifier.delete(url)).status_code == 404
    kept = await deliveries(system, endpoint_id=endpoint["id"])
    assert [d["status"] for d in kept] == ["failed"]  # never sent, still readable
    await ingest(system, envelope(system, "order.approved"))
    assert len(await deliveries(system, endpoint_id=endpoint["id"])) == 1
    assert await system.pump() == 0


async def test_disabling_and_enabling_by_hand(system):
    notifier = system.client("notifier", "admin")
    endpoint = await subscribe(system)
    url = f"/v1/webhook-endpoints/{endpoint['id']}"
    off = (await notifier.patch(url, json={"enabled": False})).json()
    assert off["enabled"] is False and off["disabled_reason"] == "disabled by admin"
    await ingest(system, envelope(system))
    assert await deliveries(system) == []
    on = (await notifier.patch(url, json={"enabled": True})).json()
    assert on["enabled"] is True and on["disabled_reason"] is None
    listed = (await notifier.get("/v1/webhook-endpoints", params={"enabled": True})).json()
    assert [e["id"] for e in external_endpoints(listed["items"])] == [endpoint["id"]]


async def test_rotated_secret_signs_beside_the_old_one_for_a_day(system):
    endpoint = await subscribe(system)
    notifier = system.client("notifier", "admin")
    rotated = await notifier.post(f"/v1/webhook-endpoints/{endpoint['id']}/rotate-secret")
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret.startswith("whsec_") and new_secret != endpoint["secret"]
    assert rotated.json()["version"] == 2

    await ingest(system, envelope(system))
    await system.pump()
    request = system.receiver.requests[-1]
    verify(new_secret, request["headers"], request["body"], now=system.clock.now())
    verify(endpoint["secret"], request["headers"], request["body"], now=system.clock.now())

    system.clock.advance(hours=25)
    await ingest(system, envelope(system))
    await system.pump()
    request = system.receiver.requests[-1]
    verify(new_secret, request["headers"], request["body"], now=system.clock.now())
    with pytest.raises(InvalidSignature):
        verify(endpoint["secret"], request["headers"], request["body"], now=system.clock.now())


async def test_replay_queues_matching_events_since_a_time(system):
    start = system.clock.now()
    old = envelope(system, "invoice.overdue")
    await ingest(system, old)
    system.clock.advance(hours=1)
    matching = [envelope(system, "invoice.overdue"), envelope(system, "invoice.paid")]
    other = envelope(system, "order.approved")
    for event in (*matching, other):
        await ingest(system, event)

    endpoint = await subscribe(system, event_types=["invoice.overdue", "invoice.paid"])
    replayed = await system.client("notifier").post(
        f"/v1/webhook-endpoints/{endpoint['id']}/replay",
        json={"since": (start + timedelta(minutes=30)).isoformat()})
    assert replayed.status_code == 202, replayed.text
    assert replayed.json()["count"] == 2
    await system.pump()  # also delivers to the services' own subscriptions
    sent = {r["headers"]["webhook-id"] for r in system.receiver.requests}
    assert sent == {e["id"] for e in matching}

    everything = await subscribe(system, "/all", event_types=["*"])
    replayed = await system.client("notifier").post(
        f"/v1/webhook-endpoints/{everything['id']}/replay", json={"since": start.isoformat()})
    assert replayed.json()["count"] == 4


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "https://10.1.2.3/hook",
    "http://[::1]/hook", "http://169.254.169.254/latest/meta-data", "http://0.0.0.0/",
    "http://2130706433/hook",
])
async def test_private_urls_are_refused(system, url):
    r = await system.client("notifier", "admin").post("/v1/webhook-endpoints", json={"url": url})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"
    assert [e["field"] for e in r.json()["errors"]] == ["url"]


async def test_the_service_principal_may_subscribe_private_urls(system):
    endpoint = await subscribe(system, principal="service")
    r = await system.client("notifier", "service").post(
        "/v1/webhook-endpoints", json={"url": "http://127.0.0.1:8002/v1/webhooks"})
    assert r.status_code == 201, r.text
    assert r.json()["created_by"] == "service" and endpoint["created_by"] == "service"
    admin = system.client("notifier", "admin")
    moved = await admin.patch(f"/v1/webhook-endpoints/{r.json()['id']}",
                              json={"url": "http://127.0.0.1:9999/"})
    assert moved.status_code == 403  # a service's own inbox is the service's to move


@pytest.mark.parametrize("body", [
    {"url": "ftp://hooks.example.com/x"},
    {"url": "not a url"},
    {"url": "https://" + "a" * 2000 + ".example.com/"},
    {"url": HOOKS_URL, "event_types": ["Invoice Overdue"]},
    {"url": HOOKS_URL, "event_types": [f"type.n{chr(97 + i % 26)}{i}" for i in range(101)]},
    {"url": HOOKS_URL, "colour": "red"},
])
async def test_bad_endpoints_are_refused(system, body):
    r = await system.client("notifier", "admin").post("/v1/webhook-endpoints", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_failed"


async def test_endpoint_roles_and_unknown_ids(system):
    body = {"url": HOOKS_URL + "/x"}
    assert (await system.client("notifier", None).post(
        "/v1/webhook-endpoints", json=body)).status_code == 401
    for principal in ("finance", "auditor", "sales"):
        assert (await system.client("notifier", principal).post(
            "/v1/webhook-endpoints", json=body)).status_code == 403
    assert (await system.client("notifier", "finance").get(
        "/v1/webhook-endpoints")).status_code == 403
    assert (await system.client("notifier", "auditor").get(
        "/v1/webhook-endpoints")).status_code == 200
    admin = system.client("notifier", "admin")
    for method, path in (("GET", ""), ("PATCH", ""), ("DELETE", ""), ("POST", "/rotate-secret")):
        r = await admin.request(method, f"/v1/webhook-endpoints/nope{path}",
                                json={} if method == "PATCH" else None)
        assert r.status_code == 404 and r.json()["code"] == "not_found", (method, path)
