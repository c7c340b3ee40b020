"""Reservations through the API: every rule with its reason, idempotency, changes, release,
conversion and concurrent orders racing for the last credit."""

from __future__ import annotations

import asyncio
import uuid

from tests.fixtures.credit import (
    add_guarantee,
    new_customer,
    outbox_events,
    profile,
    reserve,
    set_limit,
    yuan,
)


async def customer_with_limit(system, limit_minor: int = yuan(600_000)) -> str:
    customer_id = await new_customer(system)
    await set_limit(system, customer_id, limit_minor)
    return customer_id


async def set_policy(system, customer_id: str, **body) -> None:
    r = await system.client("credit", "credit_manager").put(
        f"/v1/customers/{customer_id}/credit-policy", json={**body, "reason": "test"})
    assert r.status_code == 200, r.text


class TestDecisions:
    async def test_within_available_is_reserved_and_holds_credit(self, system):
        customer_id = await customer_with_limit(system)
        order_id = str(uuid.uuid4())
        r = await reserve(system, customer_id, yuan(100_000), order_id=order_id)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["decision"] == "reserved" and body["status"] == "active"
        assert (body["customer_id"], body["order_id"]) == (customer_id, order_id)
        assert (body["amount_minor"], body["currency"]) == (yuan(100_000), "CNY")
        assert body["reasons"] == ["reserved 100,000.00 CNY of available 600,000.00 CNY; "
                                   "500,000.00 CNY left"]
        assert body["decided_at"] and r.headers["location"] == f"/v1/reservations/{body['id']}"
        exposure = (await profile(system, customer_id))["exposure"]
        assert exposure["reserved_minor"] == yuan(100_000)
        assert exposure["available_minor"] == yuan(500_000)

    async def test_beyond_available_is_rejected_with_the_shortfall(self, system):
        customer_id = await customer_with_limit(system)
        body = (await reserve(system, customer_id, yuan(1_000_000))).json()
        assert body["decision"] == "rejected" and body["status"] == "declined"
        assert body["reasons"][0] == ("available 600,000.00 CNY, requested 1,000,000.00 CNY; "
                                      "short by 400,000.00 CNY")
        assert "raise the credit limit" in body["reasons"][1]
        assert (await profile(system, customer_id))["exposure"]["reserved_minor"] == 0

    async def test_exactly_the_available_amount_is_reserved(self, system):
        customer_id = await customer_with_limit(system)
        assert (await reserve(system, customer_id, yuan(600_000))).json()["decision"] == "reserved"
        last = (await reserve(system, customer_id, 1)).json()
        assert last["decision"] == "rejected"
        assert last["reasons"][0] == ("available 0.00 CNY, requested 0.01 CNY; short by 0.01 CNY")

    async def test_a_guarantee_covers_a_shortfall(self, system):
        customer_id = await customer_with_limit(system)
        assert (await reserve(system, customer_id, yuan(700_000))).json()["decision"] == "rejected"
        await add_guarantee(system, customer_id, yuan(100_000))
        assert (await reserve(system, customer_id, yuan(700_000))).json()["decision"] == "reserved"

    async def test_blocked(self, system):
        customer_id = await customer_with_limit(system)
        await set_policy(system, customer_id, status="blocked")
        body = (await reserve(system, customer_id, yuan(1))).json()
        assert (body["decision"], body["reasons"]) == ("rejected", ["customer is blocked"])

    async def test_prepaid_only(self, system):
        customer_id = await customer_with_limit(system)
        await set_policy(system, customer_id, policy="prepaid_only")
        body = (await reserve(system, customer_id, yuan(1))).json()
        assert (body["decision"], body["reasons"]) == ("rejected", ["customer is prepaid only"])

    async def test_guarantee_required_without_a_guarantee(self, system):
        customer_id = await customer_with_limit(system)
        await set_policy(system, customer_id, policy="guarantee_required")
        body = (await reserve(system, customer_id, yuan(1))).json()
        assert body["decision"] == "requires_guarantee" and body["status"] == "declined"
        assert "requires a guarantee and none is active" in body["reasons"][0]

        await add_guarantee(system, customer_id, yuan(50_000))
        assert (await reserve(system, customer_id, yuan(1))).json()["decision"] == "reserved"
        over = (await reserve(system, customer_id, yuan(700_000))).json()
        assert over["decision"] == "requires_guarantee"
        assert over["reasons"] == [
            "available 649,999.00 CNY, requested 700,000.00 CNY; short by 50,001.00 CNY",
            "a further guarantee of at least 50,001.00 CNY would cover it"]

    async def test_unknown_customer_is_404(self, system):
        r = await reserve(system, str(uuid.uuid4()), yuan(1))
        assert r.status_code == 404 and r.json()["code"] == "not_found"

    async def test_currency_mismatch_is_422_naming_both(self, system):
        customer_id = await customer_with_limit(system)
        r = await reserve(system, customer_id, yuan(1), currency="USD")
        assert r.status_code == 422 and r.json()["code"] == "validation_failed"
        [error] = r.json()["errors"]
        assert error["field"] == "currency"
        assert "USD" in error["message"] and "CNY" in error["message"]

    async def test_currency_may_be_left_out(self, system):
        customer_id = await customer_with_limit(system)
        body = (await reserve(system, customer_id, yuan(1), currency=None)).json()
        assert body["currency"] == "CNY" and body["decision"] == "reserved"

    async def test_bad_input_is_422(self, system):
        r = await system.client("credit", "service").post("/v1/reservations", json={
            "customer_id": "", "order_id": "x" * 37, "amount_minor": 0, "extra": 1})
        assert r.status_code == 422
        fields = {e["field"] for e in r.json()["errors"]}
        assert fields == {"customer_id", "order_id", "amount_minor", "extra"}

    async def test_every_decision_is_an_event(self, system):
        customer_id = await customer_with_limit(system)
        ok = (await reserve(system, customer_id, yuan(1))).json()
        no = (await reserve(system, customer_id, yuan(10_000_000))).json()
        events = await outbox_events(system, "credit.reservation_decided")
        assert [e["subject"] for e in events] == [ok["id"], no["id"]]
        data = events[1]["data"]
        assert data == {"reservation_id": no["id"], "order_id": no["order_id"],
                        "customer_id": customer_id, "amount_minor": yuan(10_000_000),
                        "currency": "CNY", "decision": "rejected", "status": "declined",
                        "reasons": no["reasons"]}

    async def test_only_the_service_role_reserves(self, system):
        customer_id = await customer_with_limit(system)
        for principal in ("credit_manager", "sales", "finance"):
            r = await reserve(system, customer_id, yuan(1),
                              client=system.client("credit", principal))
            assert r.status_code == 403, principal
        assert (await reserve(system, customer_id, yuan(1),
                              client=system.client("credit", "admin"))).status_code == 201


class TestIdempotencyPerOrder:
    async def test_same_order_same_amount_returns_the_reservation(self, system):
        customer_id = await customer_with_limit(system)
        order_id = str(uuid.uuid4())
        first = await reserve(system, customer_id, yuan(100), order_id=order_id)
        second = await reserve(system, customer_id, yuan(100), order_id=order_id)
        assert (first.status_code, second.status_code) == (201, 200)
        assert second.json() == first.json()
        assert (await profile(system, customer_id))["exposure"]["reserved_minor"] == yuan(100)
        assert len(await outbox_events(system, "credit.reservation_decided")) == 1

    async def test_same_order_other_amount_is_409(self, system):
        customer_id = await customer_with_limit(system)
        order_id = str(uuid.uuid4())
        first = (await reserve(system, customer_id, yuan(100), order_id=order_id)).json()
        r = await reserve(system, customer_id, yuan(200), order_id=order_id)
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        assert r.json()["reservation_id"] == first["id"] and "PATCH" in r.json()["detail"]

    async def test_a_declined_decision_does_not_block_a_new_one(self, system):
        customer_id = await customer_with_limit(system)
        order_id = str(uuid.uuid4())
        declined = (await reserve(system, customer_id, yuan(700_000), order_id=order_id)).json()
        assert declined["status"] == "declined"
        await add_guarantee(system, customer_id, yuan(100_000))
        system.clock.advance(seconds=1)  # lists are ordered by creation time
        again = await reserve(system, customer_id, yuan(700_000), order_id=order_id)
        assert again.status_code == 201 and again.json()["id"] != declined["id"]
        assert again.json()["decision"] == "reserved"
        listed = (await system.client("credit", "service").get(
            "/v1/reservations", params={"order_id": order_id})).json()["items"]
        assert [(r["id"], r["status"]) for r in listed] == [(declined["id"], "declined"),
                                                            (again.json()["id"], "active")]

    async def test_a_released_reservation_does_not_block_a_new_one(self, system):
        customer_id = await customer_with_limit(system)
        order_id = str(uuid.uuid4())
        first = (await reserve(system, customer_id, yuan(100), order_id=order_id)).json()
        await system.client("credit", "service").delete(f"/v1/reservations/{first['id']}")
        again = await reserve(system, customer_id, yuan(300), order_id=order_id)
        assert again.status_code == 201 and again.json()["id"] != first["id"]

    async def test_idempotency_key_replays_the_response(self, system):
        customer_id = await customer_with_limit(system)
        service = system.client("credit", "service", headers={"Idempotency-Key": "order-1-submit"})
        order_id = str(uuid.uuid4())
        first = await reserve(system, customer_id, yuan(1), order_id=order_id, client=service)
        second = await reserve(system, customer_id, yuan(1), order_id=order_id, client=service)
        assert first.status_code == second.status_code == 201
        assert second.headers["idempotent-replayed"] == "true"


class TestChange:
    async def test_increase_beyond_available_is_refused_and_nothing_changes(self, system):
        customer_id = await customer_with_limit(system)
        reservation = (await reserve(system, customer_id, yuan(500_000))).json()
        service = system.client("credit", "service")
        r = await service.patch(f"/v1/reservations/{reservation['id']}",
                                json={"amount_minor": yuan(700_000)})
        assert r.status_code == 409, r.text
        problem = r.json()
        assert problem["code"] == "guard_failed" and problem["guard"] == "credit_reserved"
        assert problem["reason"].startswith(
            "increase of 200,000.00 CNY (from 500,000.00 CNY to 700,000.00 CNY) refused: "
            "available 100,000.00 CNY, requested 200,000.00 CNY; short by 100,000.00 CNY")
        unchanged = (await service.get(f"/v1/reservations/{reservation['id']}")).json()
        assert unchanged["amount_minor"] == yuan(500_000) and unchanged["version"] == 1

    async def test_increase_within_available_and_decrease(self, system):
        customer_id = await customer_with_limit(system)
        reservation = (await reserve(system, customer_id, yuan(500_000))).json()
        service = system.client("credit", "service")
        up = await service.patch(f"/v1/reservations/{reservation['id']}",
                                 json={"amount_minor": yuan(600_000)})
        assert up.status_code == 200 and up.json()["amount_minor"] == yuan(600_000)
        assert up.headers["etag"] == '"2"'
        down = await service.patch(f"/v1/reservations/{reservation['id']}",
                                   json={"amount_minor": yuan(50_000)}, headers={"If-Match": '"2"'})
        assert down.status_code == 200
        assert down.json()["reasons"] == ["reduced from 600,000.00 CNY to 50,000.00 CNY; "
                                          "550,000.00 CNY released"]
        assert (await profile(system, customer_id))["exposure"]["available_minor"] == yuan(550_000)
        events = await outbox_events(system, "credit.reservation_decided")
        assert [e["data"].get("previous_amount_minor") for e in events] == [
            None, yuan(500_000), yuan(600_000)]

    async def test_decrease_is_allowed_even_on_hold(self, system):
        customer_id = await customer_with_limit(system)
        reservation = (await reserve(system, customer_id, yuan(500))).json()
        await system.client("credit", "credit_manager").post(
            f"/v1/customers/{customer_id}/holds", json={"reason": "late payer"})
        service = system.client("credit", "service")
        up = await service.patch(f"/v1/reservations/{reservation['id']}", json={"amount_minor": yuan(600)})
        assert up.status_code == 409 and "customer on credit hold: late payer" in up.json()["reason"]
        down = await service.patch(f"/v1/reservations/{reservation['id']}",
                                   json={"amount_minor": yuan(100)})
        assert down.status_code == 200

    async def test_stale_if_match_and_declined_reservation(self, system):
        customer_id = await customer_with_limit(system)
        service = system.client("credit", "service")
        reservation = (await reserve(system, customer_id, yuan(500))).json()
        r = await service.patch(f"/v1/reservations/{reservation['id']}",
                                json={"amount_minor": yuan(400)}, headers={"If-Match": '"9"'})
        assert r.status_code == 412
        declined = (await reserve(system, customer_id, yuan(10_000_000))).json()
        r = await service.patch(f"/v1/reservations/{declined['id']}", json={"amount_minor": 1})
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
        assert r.json()["state"] == "declined"
        missing = await service.patch(f"/v1/reservations/{uuid.uuid4()}", json={"amount_minor": 1})
        assert missing.status_code == 404


class TestReleaseAndConvert:
    async def test_release_gives_the_credit_back_and_is_idempotent(self, system):
        customer_id = await customer_with_limit(system)
        reservation = (await reserve(system, customer_id, yuan(100_000))).json()
        service = system.client("credit", "service")
        r = await service.delete(f"/v1/reservations/{reservation['id']}")
        assert r.status_code == 204
        again = await service.delete(f"/v1/reservations/{reservation['id']}")
        assert again.status_code == 204
        got = (await service.get(f"/v1/reservations/{reservation['id']}")).json()
        assert got["status"] == "released" and got["released_at"]
        assert (await profile(system, customer_id))["exposure"]["available_minor"] == yuan(600_000)
        r = await service.post(f"/v1/reservations/{reservation['id']}/convert")
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"

    async def test_convert_moves_reserved_to_open_receivables(self, system):
        customer_id = await customer_with_limit(system)
        reservation = (await reserve(system, customer_id, yuan(100_000))).json()
        service = system.client("credit", "service")
        r = await service.post(f"/v1/reservations/{reservation['id']}/convert")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "converted" and r.json()["converted_at"]
        exposure = (await profile(system, customer_id))["exposure"]
        assert exposure == {"open_receivables_minor": yuan(100_000), "reserved_minor": 0,
                            "guarantees_minor": 0, "available_minor": yuan(500_000)}
        again = await service.post(f"/v1/reservations/{reservation['id']}/convert")
        assert again.status_code == 200 and again.json()["version"] == r.json()["version"]
        release = await service.delete(f"/v1/reservations/{reservation['id']}")
        assert release.status_code == 409 and release.json()["state"] == "converted"
        # the converted reservation still answers a re-post of the same order
        repost = await reserve(system, customer_id, yuan(100_000), order_id=reservation["order_id"])
        assert repost.status_code == 200 and repost.json()["id"] == reservation["id"]

    async def test_convert_for_the_invoiced_amount(self, system):
        customer_id = await customer_with_limit(system)
        reservation = (await reserve(system, customer_id, yuan(100_000))).json()
        service = system.client("credit", "service")
        too_much = await service.post(f"/v1/reservations/{reservation['id']}/convert",
                                      json={"amount_minor": yuan(100_001)})
        assert too_much.status_code == 422
        invoice_id = str(uuid.uuid4())
        r = await service.post(f"/v1/reservations/{reservation['id']}/convert",
                               json={"amount_minor": yuan(90_000), "invoice_id": invoice_id})
        assert r.json()["amount_minor"] == yuan(90_000) and r.json()["invoice_id"] == invoice_id
        exposure = (await profile(system, customer_id))["exposure"]
        assert exposure["open_receivables_minor"] == yuan(90_000)
        assert exposure["available_minor"] == yuan(510_000)


class TestReads:
    async def test_list_filters_and_readers(self, system):
        one = await customer_with_limit(system)
        two = await customer_with_limit(system)
        a = (await reserve(system, one, yuan(1))).json()
        b = (await reserve(system, two, yuan(2))).json()
        auditor = system.client("credit", "auditor")
        by_customer = (await auditor.get("/v1/reservations", params={"customer_id": two})).json()
        assert [r["id"] for r in by_customer["items"]] == [b["id"]]
        by_order = (await auditor.get("/v1/reservations", params={"order_id": a["order_id"]})).json()
        assert [r["id"] for r in by_order["items"]] == [a["id"]]
        page = (await auditor.get("/v1/reservations", params={"limit": 1})).json()
        assert len(page["items"]) == 1 and page["next_cursor"]
        assert (await system.client("credit", "alice").get("/v1/reservations")).status_code == 403
        assert (await auditor.delete(f"/v1/reservations/{a['id']}")).status_code == 403


class TestConcurrency:
    async def test_orders_racing_for_the_last_credit_never_both_win(self, system):
        customer_id = await customer_with_limit(system, yuan(1_000))
        results = await asyncio.gather(*[
            reserve(system, customer_id, yuan(300)) for _ in range(6)])
        assert all(r.status_code == 201 for r in results), [r.text for r in results]
        decisions = sorted(r.json()["decision"] for r in results)
        assert decisions == ["rejected"] * 3 + ["reserved"] * 3
        exposure = (await profile(system, customer_id))["exposure"]
        assert exposure["reserved_minor"] == yuan(900)
        assert exposure["available_minor"] == yuan(100)

    async def test_the_same_order_posted_at_once_is_reserved_once(self, system):
        customer_id = await customer_with_limit(system, yuan(1_000))
        order_id = str(uuid.uuid4())
        results = await asyncio.gather(*[
            reserve(system, customer_id, yuan(300), order_id=order_id) for _ in range(4)])
        assert sorted(r.status_code for r in results) == [200, 200, 200, 201]
        assert len({r.json()["id"] for r in results}) == 1
        assert (await profile(system, customer_id))["exposure"]["reserved_minor"] == yuan(300)

    async def test_increases_racing_for_the_last_credit(self, system):
        customer_id = await customer_with_limit(system, yuan(1_000))
        service = system.client("credit", "service")
        ids = [(await reserve(system, customer_id, yuan(100))).json()["id"] for _ in range(3)]
        results = await asyncio.gather(*[
            service.patch(f"/v1/reservations/{i}", json={"amount_minor": yuan(400)}) for i in ids])
        # 700 available: two increases of 300 fit, the third does not
        assert sorted(r.status_code for r in results) == [200, 200, 409]
        assert (await profile(system, customer_id))["exposure"]["reserved_minor"] == yuan(900)
