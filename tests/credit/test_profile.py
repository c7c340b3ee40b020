"""Credit profiles, limits, policy, holds, guarantees, inquiries and assets through the API."""

from __future__ import annotations

from datetime import timedelta

from tests.fixtures.credit import (
    add_guarantee,
    new_customer,
    outbox_events,
    profile,
    reserve,
    set_limit,
    yuan,
)


class TestDefaultProfile:
    async def test_a_new_customer_has_the_default_profile(self, system):
        customer_id = await new_customer(system)
        r = await system.client("credit", "finance").get(f"/v1/customers/{customer_id}/credit")
        assert r.status_code == 200, r.text
        assert r.headers["etag"] == '"1"'
        assert r.json() == {
            "customer_id": customer_id, "limit_minor": 0, "currency": "CNY", "terms_days": 30,
            "grade": None, "policy": "credit", "status": "active",
            "exposure": {"open_receivables_minor": 0, "reserved_minor": 0,
                         "guarantees_minor": 0, "available_minor": 0},
            "overdue_minor": 0, "max_days_overdue": 0, "holds": [], "evaluation_id": None,
            "version": 1, "updated_at": None}

    async def test_unknown_customer_is_404(self, system):
        r = await system.client("credit", "credit_manager").get("/v1/customers/nope/credit")
        assert r.status_code == 404 and r.json()["code"] == "not_found"


class TestCreditLimit:
    async def test_limit_change_updates_profile_and_emits_event(self, system):
        customer_id = await new_customer(system)
        manager = system.client("credit", "credit_manager")
        r = await manager.put(f"/v1/customers/{customer_id}/credit-limit", headers={"If-Match": '"1"'},
                              json={"limit_minor": yuan(600_000), "currency": "CNY",
                                    "terms_days": 45, "reason": "annual review"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["limit_minor"], body["terms_days"], body["version"]) == (yuan(600_000), 45, 2)
        assert body["exposure"]["available_minor"] == yuan(600_000)
        assert r.headers["etag"] == '"2"'
        events = await outbox_events(system, "credit.limit_changed")
        assert len(events) == 1
        assert events[0]["subject"] == customer_id and events[0]["source"] == "credit"
        data = events[0]["data"]
        assert data["old_limit_minor"] == 0 and data["new_limit_minor"] == yuan(600_000)
        assert data["currency"] == "CNY" and data["terms_days"] == 45
        assert data["reason"] == "annual review" and data["by"] == "credit_manager"

    async def test_same_terms_again_change_nothing(self, system):
        customer_id = await new_customer(system)
        await set_limit(system, customer_id, yuan(1000))
        again = await set_limit(system, customer_id, yuan(1000))
        assert again["version"] == 2
        assert len(await outbox_events(system, "credit.limit_changed")) == 1

    async def test_stale_if_match_is_412(self, system):
        customer_id = await new_customer(system)
        await set_limit(system, customer_id, yuan(1000))
        r = await system.client("credit", "credit_manager").put(
            f"/v1/customers/{customer_id}/credit-limit", headers={"If-Match": '"1"'},
            json={"limit_minor": 5, "currency": "CNY", "terms_days": 30, "reason": "x"})
        assert r.status_code == 412 and r.json()["code"] == "version_conflict"

    async def test_currency_is_fixed_while_credit_is_used(self, system):
        customer_id = await new_customer(system)
        await set_limit(system, customer_id, yuan(1000))
        reservation = (await reserve(system, customer_id, yuan(100))).json()
        manager = system.client("credit", "credit_manager")
        body = {"limit_minor": yuan(1000), "currency": "USD", "terms_days": 30, "reason": "usd"}
        r = await manager.put(f"/v1/customers/{customer_id}/credit-limit", json=body)
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        assert "active reservations" in r.json()["detail"]
        await system.client("credit", "service").delete(f"/v1/reservations/{reservation['id']}")
        r = await manager.put(f"/v1/customers/{customer_id}/credit-limit", json=body)
        assert r.status_code == 200 and r.json()["currency"] == "USD"

    async def test_bad_limit_input_is_422(self, system):
        customer_id = await new_customer(system)
        r = await system.client("credit", "credit_manager").put(
            f"/v1/customers/{customer_id}/credit-limit",
            json={"limit_minor": -1, "currency": "XXX", "terms_days": 1000})
        assert r.status_code == 422
        fields = {e["field"] for e in r.json()["errors"]}
        assert {"limit_minor", "currency", "terms_days", "reason"} <= fields


class TestPolicyAndStatus:
    async def test_block_and_unblock(self, system):
        customer_id = await new_customer(system)
        await set_limit(system, customer_id, yuan(1000))
        manager = system.client("credit", "credit_manager")
        r = await manager.put(f"/v1/customers/{customer_id}/credit-policy",
                              json={"status": "blocked", "reason": "fraud check"})
        assert r.status_code == 200 and r.json()["status"] == "blocked"
        event = (await outbox_events(system, "credit.limit_changed"))[-1]
        assert event["data"]["changed"] == ["status"] and event["data"]["status"] == "blocked"
        r = await manager.put(f"/v1/customers/{customer_id}/credit-policy",
                              json={"status": "active", "reason": "cleared"})
        assert r.json()["status"] == "active"

    async def test_unblocking_with_an_active_hold_leaves_the_customer_on_hold(self, system):
        customer_id = await new_customer(system)
        manager = system.client("credit", "credit_manager")
        await manager.put(f"/v1/customers/{customer_id}/credit-policy",
                          json={"status": "blocked", "reason": "fraud check"})
        await manager.post(f"/v1/customers/{customer_id}/holds", json={"reason": "disputes"})
        assert (await profile(system, customer_id))["status"] == "blocked"
        r = await manager.put(f"/v1/customers/{customer_id}/credit-policy",
                              json={"status": "active", "reason": "cleared"})
        assert r.json()["status"] == "on_hold"

    async def test_policy_needs_something_to_change_and_on_hold_is_not_settable(self, system):
        customer_id = await new_customer(system)
        manager = system.client("credit", "credit_manager")
        r = await manager.put(f"/v1/customers/{customer_id}/credit-policy", json={"reason": "x"})
        assert r.status_code == 422
        r = await manager.put(f"/v1/customers/{customer_id}/credit-policy",
                              json={"status": "on_hold", "reason": "x"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "status"


class TestHolds:
    async def test_hold_blocks_reservations_until_released(self, system):
        customer_id = await new_customer(system)
        await set_limit(system, customer_id, yuan(1000))
        manager = system.client("credit", "credit_manager")
        placed = await manager.post(f"/v1/customers/{customer_id}/holds",
                                    json={"reason": "three deliveries disputed"})
        assert placed.status_code == 201, placed.text
        hold = placed.json()
        assert (hold["kind"], hold["status"], hold["placed_by"]) == ("manual", "active",
                                                                     "credit_manager")
        current = await profile(system, customer_id)
        assert current["status"] == "on_hold"
        assert [h["id"] for h in current["holds"]] == [hold["id"]]
        [event] = await outbox_events(system, "credit.hold_placed")
        assert event["data"]["hold_id"] == hold["id"]
        assert event["data"]["reason"] == "three deliveries disputed"

        refused = (await reserve(system, customer_id, yuan(10))).json()
        assert refused["decision"] == "rejected" and refused["status"] == "declined"
        assert refused["reasons"] == ["customer on credit hold: three deliveries disputed"]

        released = await manager.delete(f"/v1/customers/{customer_id}/holds/{hold['id']}")
        assert released.status_code == 200 and released.json()["status"] == "released"
        assert (await profile(system, customer_id))["status"] == "active"
        again = await manager.delete(f"/v1/customers/{customer_id}/holds/{hold['id']}")
        assert again.status_code == 200
        assert len(await outbox_events(system, "credit.hold_released")) == 1
        assert (await reserve(system, customer_id, yuan(10))).json()["decision"] == "reserved"

    async def test_status_returns_to_active_only_when_the_last_hold_goes(self, system):
        customer_id = await new_customer(system)
        manager = system.client("credit", "credit_manager")
        first = (await manager.post(f"/v1/customers/{customer_id}/holds",
                                    json={"reason": "a"})).json()
        second = (await manager.post(f"/v1/customers/{customer_id}/holds",
                                     json={"reason": "b"})).json()
        await manager.delete(f"/v1/customers/{customer_id}/holds/{first['id']}")
        assert (await profile(system, customer_id))["status"] == "on_hold"
        listed = (await manager.get(f"/v1/customers/{customer_id}/holds",
                                    params={"status": "active"})).json()["items"]
        assert [h["id"] for h in listed] == [second["id"]]
        await manager.delete(f"/v1/customers/{customer_id}/holds/{second['id']}")
        assert (await profile(system, customer_id))["status"] == "active"

    async def test_hold_of_another_customer_is_404(self, system):
        one, two = await new_customer(system), await new_customer(system)
        manager = system.client("credit", "credit_manager")
        hold = (await manager.post(f"/v1/customers/{one}/holds", json={"reason": "a"})).json()
        r = await manager.delete(f"/v1/customers/{two}/holds/{hold['id']}")
        assert r.status_code == 404


class TestGuarantees:
    async def test_active_guarantees_add_to_available(self, system):
        customer_id = await new_customer(system)
        await set_limit(system, customer_id, yuan(600_000))
        r = await add_guarantee(system, customer_id, yuan(200_000), expires_on="2026-01-31")
        assert r.status_code == 201, r.text
        guarantee = r.json()
        assert guarantee["status"] == "active"
        exposure = (await profile(system, customer_id))["exposure"]
        assert exposure["guarantees_minor"] == yuan(200_000)
        assert exposure["available_minor"] == yuan(800_000)

        system.clock.advance(timedelta(days=26))  # 2026-01-31: last day it counts
        assert (await profile(system, customer_id))["exposure"]["guarantees_minor"] == yuan(200_000)
        system.clock.advance(timedelta(days=1))
        assert (await profile(system, customer_id))["exposure"]["available_minor"] == yuan(600_000)
        listed = (await system.client("credit", "auditor").get(
            f"/v1/customers/{customer_id}/guarantees")).json()["items"]
        assert [g["status"] for g in listed] == ["expired"]

    async def test_released_guarantee_stops_counting(self, system):
        customer_id = await new_customer(system)
        guarantee = (await add_guarantee(system, customer_id, yuan(50_000))).json()
        assert (await profile(system, customer_id))["exposure"]["available_minor"] == yuan(50_000)
        manager = system.client("credit", "credit_manager")
        r = await manager.delete(f"/v1/customers/{customer_id}/guarantees/{guarantee['id']}")
        assert r.status_code == 200 and r.json()["status"] == "released"
        assert r.json()["released_by"] == "credit_manager"
        assert (await profile(system, customer_id))["exposure"]["available_minor"] == 0
        again = await manager.delete(f"/v1/customers/{customer_id}/guarantees/{guarantee['id']}")
        assert again.status_code == 200

    async def test_guarantee_in_another_currency_or_expired_is_422(self, system):
        customer_id = await new_customer(system)
        r = await add_guarantee(system, customer_id, yuan(10), currency="USD")
        assert r.status_code == 422
        assert r.json()["errors"][0]["field"] == "currency"
        assert "USD" in r.json()["detail"] and "CNY" in r.json()["detail"]
        r = await add_guarantee(system, customer_id, yuan(10), expires_on="2026-01-04")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "expires_on"
        r = await system.client("credit", "credit_manager").post(
            f"/v1/customers/{customer_id}/guarantees",
            json={"kind": "handshake", "amount_minor": 0, "currency": "CNY", "issuer": "",
                  "expires_on": "soon"})
        assert {e["field"] for e in r.json()["errors"]} == {"kind", "amount_minor", "issuer",
                                                           "expires_on"}


class TestInquiriesAndAssets:
    async def test_record_and_list(self, system):
        customer_id = await new_customer(system)
        manager = system.client("credit", "credit_manager")
        inquiry = {"source": "NECIPS", "reference": "R-1", "inquired_on": "2026-01-04",
                   "rating": "AA", "defaults_count": 0, "lawsuits_count": 1,
                   "summary": "one closed dispute"}
        r = await manager.post(f"/v1/customers/{customer_id}/credit-inquiries", json=inquiry)
        assert r.status_code == 201, r.text
        assert r.json()["created_by"] == "credit_manager"
        asset = {"kind": "building", "description": "Factory", "value_minor": yuan(3_000_000),
                 "currency": "CNY", "encumbered": True}
        r = await manager.post(f"/v1/customers/{customer_id}/assets", json=asset)
        assert r.status_code == 201, r.text
        finance = system.client("credit", "finance")
        inquiries = (await finance.get(f"/v1/customers/{customer_id}/credit-inquiries")).json()
        assert [i["reference"] for i in inquiries["items"]] == ["R-1"]
        assets = (await finance.get(f"/v1/customers/{customer_id}/assets")).json()
        assert assets["items"][0]["encumbered"] is True

    async def test_future_inquiry_and_bad_asset_are_422(self, system):
        customer_id = await new_customer(system)
        manager = system.client("credit", "credit_manager")
        r = await manager.post(f"/v1/customers/{customer_id}/credit-inquiries", json={
            "source": "NECIPS", "reference": "R-1", "inquired_on": "2026-02-01"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "inquired_on"
        r = await manager.post(f"/v1/customers/{customer_id}/assets", json={
            "kind": "spaceship", "description": "x", "value_minor": -5, "currency": "CNY"})
        assert {e["field"] for e in r.json()["errors"]} == {"kind", "value_minor"}


class TestVisibilityAndRoles:
    async def test_sales_see_only_their_own_customers_credit(self, system):
        alice_customer = await new_customer(system, salesperson_id="S-ALICE")
        bob_customer = await new_customer(system, salesperson_id="S-BOB")
        alice = system.client("credit", "alice")
        assert (await alice.get(f"/v1/customers/{alice_customer}/credit")).status_code == 200
        for path in ("credit", "guarantees", "holds", "assets", "credit-inquiries", "evaluations"):
            hidden = await alice.get(f"/v1/customers/{bob_customer}/{path}")
            assert hidden.status_code == 404, path

    async def test_auditor_reads_but_cannot_write(self, system):
        customer_id = await new_customer(system)
        auditor = system.client("credit", "auditor")
        base = f"/v1/customers/{customer_id}"
        assert (await auditor.get(f"{base}/credit")).status_code == 200
        writes = [
            auditor.put(f"{base}/credit-limit", json={"limit_minor": 1, "currency": "CNY",
                                                      "terms_days": 1, "reason": "x"}),
            auditor.put(f"{base}/credit-policy", json={"status": "blocked", "reason": "x"}),
            auditor.post(f"{base}/holds", json={"reason": "x"}),
            auditor.post(f"{base}/guarantees", json={}),
            auditor.post(f"{base}/credit-inquiries", json={}),
            auditor.post(f"{base}/assets", json={}),
            auditor.post(f"{base}/evaluations", json={}),
            auditor.post("/v1/reservations", json={}),
        ]
        for write in writes:
            r = await write
            assert r.status_code == 403 and r.json()["code"] == "forbidden", r.request.url

    async def test_sales_cannot_set_limits(self, system):
        customer_id = await new_customer(system)
        r = await system.client("credit", "alice").put(
            f"/v1/customers/{customer_id}/credit-limit",
            json={"limit_minor": 1, "currency": "CNY", "terms_days": 1, "reason": "x"})
        assert r.status_code == 403
