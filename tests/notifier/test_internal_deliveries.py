"""Internal endpoints (the services' own inboxes, DESIGN.md §9): who makes one, the short retry
schedule that never gives up, no auto-disable, and credit catching up within a minute of an
outage. Time moves only with the frozen clock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from services.notifier.config import NotifierSettings
from services.notifier.delivery import Job, retry_delay
from tests.fixtures.notifier import deliveries, envelope, ingest, subscribe
from tests.harness import HOOKS_URL

INTERNAL = [1, 2, 5, 10, 30, 60]
EXTERNAL = [5, 300, 1800, 7200, 18000, 36000, 36000]  # DESIGN.md §7


async def _endpoint(system, endpoint_id: str) -> dict[str, Any]:
    r = await system.client("notifier").get(f"/v1/webhook-endpoints/{endpoint_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def _delivery(system, endpoint_id: str) -> dict[str, Any]:
    (delivery,) = await deliveries(system, endpoint_id=endpoint_id)
    return delivery


def _delay(delivery: dict[str, Any]) -> float:
    """Seconds from the delivery's last attempt to its next one."""
    last = datetime.fromisoformat(delivery["attempts"][-1]["at"])
    return (datetime.fromisoformat(delivery["next_attempt_at"]) - last).total_seconds()


class TestWhoIsInternal:
    async def test_the_services_own_subscriptions_are_internal(self, system):
        items = (await system.client("notifier", "auditor").get(
            "/v1/webhook-endpoints")).json()["items"]
        inboxes = {e["url"]: e["internal"] for e in items}
        assert inboxes == {"http://credit.test/v1/inbox": True, "http://orders.test/v1/inbox": True}

    async def test_endpoints_of_the_service_principal_only(self, system):
        theirs = await subscribe(system, "/ops", principal="admin")
        ours = await subscribe(system, "/inbox", principal="service")
        assert theirs["internal"] is False and ours["internal"] is True

    async def test_nobody_can_set_it(self, system):
        admin = system.client("notifier", "admin")
        made = await admin.post("/v1/webhook-endpoints",
                                json={"url": HOOKS_URL + "/x", "internal": True})
        assert made.status_code == 422 and made.json()["code"] == "validation_failed"
        endpoint = await subscribe(system, "/x")
        patched = await admin.patch(f"/v1/webhook-endpoints/{endpoint['id']}",
                                    json={"internal": True})
        assert patched.status_code == 422
        assert (await _endpoint(system, endpoint["id"]))["internal"] is False

    async def test_later_edits_do_not_change_it(self, system):
        ours = await subscribe(system, "/inbox", principal="service")
        theirs = await subscribe(system, "/ops", principal="admin")
        by_admin = await system.client("notifier", "admin").patch(
            f"/v1/webhook-endpoints/{ours['id']}", json={"description": "renamed", "enabled": True})
        by_service = await system.client("notifier", "service").patch(
            f"/v1/webhook-endpoints/{theirs['id']}", json={"url": HOOKS_URL + "/moved"})
        assert by_admin.status_code == 200 and by_admin.json()["internal"] is True
        assert by_service.status_code == 200 and by_service.json()["internal"] is False

    async def test_only_the_service_moves_its_inbox(self, system):
        """An internal endpoint retries for ever: pointed elsewhere by a user it would hammer
        that address, so its URL is the service's to change."""
        ours = await subscribe(system, "/inbox", principal="service")
        moved = await system.client("notifier", "admin").patch(
            f"/v1/webhook-endpoints/{ours['id']}", json={"url": HOOKS_URL + "/elsewhere"})
        assert moved.status_code == 403 and moved.json()["code"] == "forbidden"
        by_service = await system.client("notifier", "service").patch(
            f"/v1/webhook-endpoints/{ours['id']}", json={"url": HOOKS_URL + "/inbox2"})
        assert by_service.status_code == 200 and by_service.json()["internal"] is True


class TestInternalSchedule:
    async def test_retries_after_1_2_5_10_30_then_every_60_seconds(self, system):
        endpoint = await subscribe(system, "/inbox", principal="service")
        system.receiver.status = 503
        await ingest(system, envelope(system))
        assert await system.pump() == 1
        delivery = await _delivery(system, endpoint["id"])
        assert delivery["status"] == "pending" and _delay(delivery) == 1

        system.clock.advance(seconds=0.5)
        assert await system.pump() == 0  # not due yet
        system.clock.advance(seconds=0.5)
        delays = []
        for _ in range(10):
            assert await system.pump() == 1
            delivery = await _delivery(system, endpoint["id"])
            assert delivery["status"] == "pending"
            delays.append(_delay(delivery))
            system.clock.advance(seconds=delays[-1])
        assert delays == [2, 5, 10, 30, 60, 60, 60, 60, 60, 60]
        assert delivery["attempt_count"] == 11 and len(system.receiver.requests) == 11

        system.receiver.status = 204
        assert await system.pump() == 1
        delivery = await _delivery(system, endpoint["id"])
        assert delivery["status"] == "succeeded" and delivery["next_attempt_at"] is None

    async def test_never_fails_and_is_never_disabled(self, system):
        endpoint = await subscribe(system, "/inbox", principal="service")
        system.receiver.status = 500
        await ingest(system, envelope(system))
        await system.pump()
        started = system.clock.now()
        for day in range(1, 11):  # ten days down, a new event every day
            system.clock.set(started + timedelta(days=day))
            await ingest(system, envelope(system))
            await system.pump()
        got = await _endpoint(system, endpoint["id"])
        assert got["enabled"] is True and got["disabled_reason"] is None
        assert datetime.fromisoformat(got["failing_since"]) == started
        pending = await deliveries(system, endpoint_id=endpoint["id"])
        assert len(pending) == 11 and {d["status"] for d in pending} == {"pending"}
        assert {_delay(d) for d in pending if d["attempt_count"] > 5} == {60}

        system.receiver.status = 200
        system.clock.advance(seconds=60)
        assert await system.pump() == 11
        assert {d["status"] for d in await deliveries(system, endpoint_id=endpoint["id"])} == {
            "succeeded"}
        assert (await _endpoint(system, endpoint["id"]))["failing_since"] is None

    async def test_an_external_endpoint_keeps_the_webhook_schedule(self, system):
        external = await subscribe(system, "/ops", principal="admin")
        internal = await subscribe(system, "/inbox", principal="service")
        system.receiver.status = 503
        await ingest(system, envelope(system))
        await system.pump()
        external_delays = []
        while (delivery := await _delivery(system, external["id"]))["status"] == "pending":
            external_delays.append(_delay(delivery))
            system.clock.set(datetime.fromisoformat(delivery["next_attempt_at"]))
            await system.pump()
        assert external_delays == EXTERNAL
        assert delivery["status"] == "failed" and delivery["attempt_count"] == 8
        assert (await _delivery(system, internal["id"]))["status"] == "pending"


@pytest.mark.parametrize(("attempt", "internal", "delay"), [
    (1, True, 1), (5, True, 30), (6, True, 60), (7, True, 60), (500, True, 60),
    (1, False, 5), (7, False, 36000), (8, False, None),
])
def test_retry_delay(attempt, internal, delay):
    job = Job(delivery_id="d", attempt=attempt, endpoint_id="e", url=HOOKS_URL,
              allow_private=True, internal=internal, secrets=("whsec_x",), msg_id="m", body=b"")
    assert retry_delay(NotifierSettings(), job) == delay


def test_the_internal_schedule_is_a_setting(monkeypatch):
    monkeypatch.setenv("O2C_INTERNAL_RETRY_SCHEDULE_SECONDS", "[0.5, 3]")
    settings = NotifierSettings()
    assert settings.internal_retry_schedule_seconds == [0.5, 3]
    job = Job(delivery_id="d", attempt=9, endpoint_id="e", url=HOOKS_URL, allow_private=True,
              internal=True, secrets=("whsec_x",), msg_id="m", body=b"")
    assert retry_delay(settings, job) == 3
    monkeypatch.setenv("O2C_INTERNAL_RETRY_SCHEDULE_SECONDS", "[]")
    with pytest.raises(ValueError):
        NotifierSettings()


class TestCreditCatchesUp:
    """Credit's inbox answers 503 for ten minutes; a minute after it recovers its figures are
    ledger's again (the external schedule would have waited until the 30-minute retry)."""

    async def _customer(self, system) -> str:
        credit = system.client("credit", "credit_manager")
        r = await credit.post("/v1/customers", json={"name": "Brightway", "salesperson_id": "S-ALICE"})
        assert r.status_code == 201, r.text
        customer_id = r.json()["id"]
        r = await credit.put(f"/v1/customers/{customer_id}/credit-limit", json={
            "limit_minor": 600_000_00, "currency": "CNY", "terms_days": 30, "reason": "test"})
        assert r.status_code == 200, r.text
        return customer_id

    async def _open_receivables(self, system, customer_id: str) -> int:
        r = await system.client("credit", "credit_manager").get(
            f"/v1/customers/{customer_id}/credit")
        assert r.status_code == 200, r.text
        return r.json()["exposure"]["open_receivables_minor"]

    async def test_within_a_minute_of_the_outage_ending(self, system):
        customer_id = await self._customer(system)
        r = await system.client("ledger", "finance").post("/v1/invoices", json={
            "order_id": str(uuid.uuid4()), "customer_id": customer_id, "salesperson_id": "S-ALICE",
            "currency": "CNY", "amount_minor": 40_000_00,
            "due_date": (system.clock.today() + timedelta(days=30)).isoformat()})
        assert r.status_code == 201, r.text

        credit = system.mounts["http://credit.test"]
        system.mounts["http://credit.test"] = httpx.MockTransport(
            lambda request: httpx.Response(503, json={"code": "dependency_unavailable"}))
        try:
            await system.pump()
            for _ in range(60):  # ten minutes down
                system.clock.advance(seconds=10)
                await system.pump()
        finally:
            system.mounts["http://credit.test"] = credit
        assert await self._open_receivables(system, customer_id) == 0
        inbox = [e for e in (await system.client("notifier").get(
            "/v1/webhook-endpoints")).json()["items"] if e["url"] == "http://credit.test/v1/inbox"]
        (delivery,) = await deliveries(system, endpoint_id=inbox[0]["id"])
        assert delivery["status"] == "pending" and delivery["attempt_count"] > 10

        waited = 0
        while await self._open_receivables(system, customer_id) == 0 and waited < 60:
            system.clock.advance(seconds=5)
            waited += 5
            await system.pump()
        assert await self._open_receivables(system, customer_id) == 40_000_00
        assert waited <= 60
