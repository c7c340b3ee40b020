"""Intake to contract across orders and credit (and notifier) in one process.

Nothing is mocked but the network faults: credit is the real credit app; when a test takes
it down it swaps the credit route of the harness for a transport that refuses connections.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from services.orders.models import OrderHistory, OrderReview
from tests.fixtures import flows
from tests.fixtures.flows import DEPARTMENTS, ORDER_TOTAL


@pytest.fixture
async def customer_id(system) -> str:
    return await flows.make_customer(system)


async def count(system, model) -> int:
    async with system.state("orders").db.session(read_only=True) as session:
        return (await session.execute(select(func.count()).select_from(model))).scalar_one()


async def reservations_of(system, order_id: str) -> list[dict[str, Any]]:
    r = await system.client("credit", "credit_manager").get("/v1/reservations",
                                                            params={"order_id": order_id})
    assert r.status_code == 200, r.text
    return r.json()["items"]


class ReservationsFail(httpx.AsyncBaseTransport):
    """Credit answers reads but its reservation endpoint does not answer (or, with
    `lose_answer`, reserves and the answer is lost on the way back)."""

    def __init__(self, healthy: httpx.AsyncBaseTransport, *, lose_answer: bool = False) -> None:
        self.healthy = healthy
        self.lose_answer = lose_answer
        self.calls = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/reservations":
            self.calls += 1
            if self.lose_answer:
                await self.healthy.handle_async_request(request)
            raise httpx.ReadTimeout("credit did not answer in time", request=request)
        return await self.healthy.handle_async_request(request)


class TestIntakeToContract:
    async def test_the_whole_flow(self, system, customer_id):
        sales = system.client("orders", "sales")
        order = await flows.create_order(system, customer_id)
        oid = order["id"]

        r = await flows.submit(system, oid)
        assert r.status_code == 200, r.text
        submitted = r.json()
        assert submitted["state"] == "in_review" and submitted["version"] == 2
        assert submitted["review_due_at"] == "2026-01-08T09:00:00Z"  # Mon + 3 working days
        assert submitted["credit"]["status"] == "reserved"
        reservation_id = submitted["credit"]["reservation_id"]
        held = await flows.reservation(system, reservation_id)
        assert (held["status"], held["amount_minor"], held["order_id"]) == ("active", ORDER_TOTAL, oid)
        assert (await flows.profile(system, customer_id))["exposure"]["reserved_minor"] == ORDER_TOTAL

        for i, department in enumerate(DEPARTMENTS):
            r = await flows.review(system, oid, department, comment=f"{department}: fine")
            assert r.status_code == 200, r.text
            assert r.json()["state"] == ("approved" if i == len(DEPARTMENTS) - 1 else "in_review")
        approved = r.json()
        assert [(v["department"], v["decision"], v["by"]) for v in approved["reviews"]] == sorted(
            (d, "approve", d) for d in DEPARTMENTS)

        r = await sales.post(f"/v1/orders/{oid}/contract", json={
            "contract_number": "CT-2026-0042", "signed_at": "2026-01-05T08:30:00+00:00"})
        assert r.status_code == 200, r.text
        contracted = r.json()
        assert contracted["state"] == "contracted"
        assert contracted["contract_number"] == "CT-2026-0042"
        assert contracted["contract_signed_at"] == "2026-01-05T08:30:00Z"
        assert contracted["credit"]["reservation_id"] == reservation_id
        assert (await flows.reservation(system, reservation_id))["status"] == "active"

        steps = await flows.history(system, oid)
        assert [(h["trigger"], h["from"], h["to"]) for h in steps] == [
            ("submit", "draft", "in_review"),
            *[("review", "in_review", "in_review")] * 4,
            ("review", "in_review", "approved"),
            ("sign-contract", "approved", "contracted")]
        assert [h["actor"] for h in steps] == ["sales", *DEPARTMENTS, "sales"]
        # DESIGN §4 names the fields exactly.
        assert {"from", "to", "trigger", "actor", "at", "reason", "request_id"} <= set(steps[0])
        assert not {"from_state", "to_state"} & set(steps[0])
        assert all(h["request_id"] and h["at"] == "2026-01-05T09:00:00Z" for h in steps)

        events = await flows.order_events(system)
        assert [e["type"] for e in events] == [
            "order.created", "order.submitted", "order.approved", "order.contracted"]
        assert {e["subject"] for e in events} == {oid}
        assert events[1]["data"]["credit"] == {"status": "reserved", "reservation_id": reservation_id}

        await system.pump()
        notifier = system.client("notifier", "admin")
        for type_ in ("order.submitted", "order.approved", "order.contracted"):
            stored = (await notifier.get("/v1/events", params={"type": type_})).json()["items"]
            assert [e["subject"] for e in stored] == [oid], type_

    async def test_prepaid_order_needs_no_reservation(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id, payment_method="prepaid",
                                            payment_terms_days=None)
        assert order["credit"] == {"status": "not_required", "reservation_id": None, "reasons": []}
        approved = await flows.approve_by_all(system, order["id"])
        assert approved["state"] == "approved"
        assert await reservations_of(system, order["id"]) == []

    async def test_idempotent_submit_replays(self, system, customer_id):
        order = await flows.create_order(system, customer_id)
        sales = system.client("orders", "sales")
        headers = {"Idempotency-Key": "submit-1"}
        first = await sales.post(f"/v1/orders/{order['id']}/submit", headers=headers)
        again = await sales.post(f"/v1/orders/{order['id']}/submit", headers=headers)
        assert first.status_code == again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
        assert len(await reservations_of(system, order["id"])) == 1


class TestSubmitChecks:
    async def test_every_missing_field_at_once(self, system, customer_id):
        r = await system.client("orders", "sales").post(
            "/v1/orders", json={"customer_id": customer_id, "currency": "USD"})
        oid = r.json()["id"]
        r = await flows.submit(system, oid)
        assert r.status_code == 422
        body = r.json()
        assert body["code"] == "validation_failed"
        assert body["errors"] == [
            {"field": "lines", "message": "at least one line is required"},
            {"field": "delivery_date", "message": "required"},
            {"field": "delivery_place", "message": "required"},
            {"field": "payment_method", "message": "required"},
            {"field": "currency", "message": "must be the customer's credit currency CNY"}]
        after = (await system.client("orders", "sales").get(f"/v1/orders/{oid}")).json()
        assert after["state"] == "draft" and after["version"] == 1
        assert await flows.history(system, oid) == []

    async def test_currency_mismatch_is_422(self, system, customer_id):
        order = await flows.create_order(system, customer_id, currency="EUR")
        r = await flows.submit(system, order["id"])
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"field": "currency", "message": "must be the customer's credit currency CNY"}]
        assert await reservations_of(system, order["id"]) == []

    async def test_credit_order_needs_payment_terms(self, system, customer_id):
        order = await flows.create_order(system, customer_id, payment_terms_days=None)
        r = await flows.submit(system, order["id"])
        assert [e["field"] for e in r.json()["errors"]] == ["payment_terms_days"]

    async def test_delivery_date_passed_while_in_draft(self, system, customer_id):
        order = await flows.create_order(system, customer_id, delivery_date="2026-01-06")
        system.clock.advance(days=2)
        r = await flows.submit(system, order["id"])
        assert r.json()["errors"] == [{"field": "delivery_date", "message": "must be 2026-01-07 or later"}]

    async def test_blocked_customer_is_refused_at_submit(self, system, customer_id):
        order = await flows.create_order(system, customer_id)
        r = await system.client("credit", "credit_manager").put(
            f"/v1/customers/{customer_id}/credit-policy",
            json={"status": "blocked", "reason": "Fraud investigation opened"})
        assert r.status_code == 200, r.text
        r = await flows.submit(system, order["id"])
        assert r.status_code == 409
        body = r.json()
        assert body["code"] == "guard_failed" and body["guard"] == "customer_not_blocked"
        assert "blocked" in body["reason"]
        after = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert after["state"] == "draft" and after["credit"]["status"] == "pending"
        assert await reservations_of(system, order["id"]) == []

    async def test_customer_on_prepaid_only_policy(self, system, customer_id):
        await system.client("credit", "credit_manager").put(
            f"/v1/customers/{customer_id}/credit-policy",
            json={"policy": "prepaid_only", "reason": "Late payer"})
        order = await flows.create_order(system, customer_id)
        r = await flows.submit(system, order["id"])
        assert r.status_code == 422
        assert r.json()["errors"] == [
            {"field": "payment_method", "message": "the customer's credit policy is prepaid_only"}]
        prepaid = await flows.create_order(system, customer_id, payment_method="prepaid")
        assert (await flows.submit(system, prepaid["id"])).status_code == 200


class TestCreditUnavailable:
    async def test_credit_down_at_submit_refuses_and_changes_nothing(self, system, customer_id):
        order = await flows.create_order(system, customer_id)
        with flows.credit_down(system):
            r = await flows.submit(system, order["id"])
        assert r.status_code == 503 and r.json()["code"] == "dependency_unavailable"
        after = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert after["state"] == "draft" and after["version"] == 1
        assert await flows.order_events(system, "order.submitted") == []
        assert await flows.history(system, order["id"]) == []

    async def test_unanswered_reservation_waits_then_the_worker_gets_it(self, system, customer_id):
        healthy = system.mounts["http://credit.test"]
        system.mounts["http://credit.test"] = ReservationsFail(healthy)
        order = await flows.create_order(system, customer_id)
        oid = order["id"]
        r = await flows.submit(system, oid)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "in_review"
        assert r.json()["credit"] == {"status": "pending", "reservation_id": None, "reasons": []}

        # every department approves; approval still waits for credit
        waiting = await flows.approve_by_all(system, oid)
        assert waiting["state"] == "in_review"
        refused = await system.client("orders", "sales").post(f"/v1/orders/{oid}/approve")
        assert refused.status_code == 409
        assert refused.json()["guard"] == "credit_reserved"
        assert refused.json()["reason"].startswith(
            "Credit is pending: the credit service has not answered yet")

        # still down: the worker asks and leaves everything as it was
        with flows.credit_down(system):
            assert await system.state("orders").jobs["credit-retry"]() == 0
        still = (await system.client("orders", "sales").get(f"/v1/orders/{oid}")).json()
        assert still["state"] == "in_review" and still["credit"]["status"] == "pending"

        system.mounts["http://credit.test"] = healthy
        assert await system.state("orders").jobs["credit-retry"]() == 1
        after = (await system.client("orders", "sales").get(f"/v1/orders/{oid}")).json()
        assert after["state"] == "approved"
        assert after["credit"]["status"] == "reserved"
        [held] = await reservations_of(system, oid)
        assert held["id"] == after["credit"]["reservation_id"] and held["status"] == "active"
        steps = await flows.history(system, oid)
        assert (steps[-1]["trigger"], steps[-1]["to"], steps[-1]["actor"]) == (
            "approve", "approved", "system")
        assert len(await flows.order_events(system, "order.approved")) == 1

        assert await system.state("orders").jobs["credit-retry"]() == 0
        assert len(await reservations_of(system, oid)) == 1

    async def test_a_lost_answer_is_never_reserved_twice(self, system, customer_id):
        healthy = system.mounts["http://credit.test"]
        lossy = ReservationsFail(healthy, lose_answer=True)
        system.mounts["http://credit.test"] = lossy
        order = await flows.submitted_order(system, customer_id)
        assert order["credit"]["status"] == "pending"
        assert lossy.calls == 1
        [held] = await reservations_of(system, order["id"])  # credit did reserve
        assert await system.state("orders").jobs["credit-retry"]() == 0  # the answer is lost again
        system.mounts["http://credit.test"] = healthy
        assert await system.state("orders").jobs["credit-retry"]() == 1
        after = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert after["credit"]["reservation_id"] == held["id"]
        assert [r["id"] for r in await reservations_of(system, order["id"])] == [held["id"]]
        assert (await flows.profile(system, customer_id))["exposure"]["reserved_minor"] == ORDER_TOTAL

    async def test_cancel_of_an_unanswered_reservation_releases_what_credit_holds(self, system, customer_id):
        healthy = system.mounts["http://credit.test"]
        system.mounts["http://credit.test"] = ReservationsFail(healthy, lose_answer=True)
        order = await flows.submitted_order(system, customer_id)
        system.mounts["http://credit.test"] = healthy
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/cancel",
                                                        json={"reason": "Customer withdrew"})
        assert r.status_code == 200, r.text
        [held] = await reservations_of(system, order["id"])
        assert held["status"] == "released"
        assert (await flows.profile(system, customer_id))["exposure"]["reserved_minor"] == 0


class TestConcurrentReviews:
    async def test_five_reviews_at_once_approve_exactly_once(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        oid = order["id"]
        results = await asyncio.gather(*[
            flows.review(system, oid, d, comment=f"{d} ok") for d in DEPARTMENTS])
        assert [r.status_code for r in results] == [200] * 5, [r.text for r in results]
        assert sum(r.json()["state"] == "approved" for r in results) == 1
        final = (await system.client("orders", "sales").get(f"/v1/orders/{oid}")).json()
        assert final["state"] == "approved" and final["version"] == 2 + 5
        assert sorted(v["department"] for v in final["reviews"]) == sorted(DEPARTMENTS)
        assert await count(system, OrderReview) == 5
        steps = await flows.history(system, oid)
        assert [h["to"] for h in steps].count("approved") == 1
        assert len(steps) == 6
        assert len(await flows.order_events(system, "order.approved")) == 1

    async def test_one_department_twice_at_once_keeps_one_opinion(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        results = await asyncio.gather(
            flows.review(system, order["id"], "quality", comment="first"),
            flows.review(system, order["id"], "quality", comment="second"))
        assert {r.status_code for r in results} == {200}
        assert await count(system, OrderReview) == 1
        final = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert final["reviews"][0]["comment"] in {"first", "second"}

    async def test_a_reject_racing_the_last_approvals(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        await flows.approve_by_all(system, order["id"], DEPARTMENTS[:3])
        results = await asyncio.gather(
            flows.review(system, order["id"], "quality", "reject", "Class 3 needed"),
            flows.review(system, order["id"], "finance"))
        statuses = sorted(r.status_code for r in results)
        final = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert final["state"] == "rejected"
        # finance either reviewed first (200) or found the order already rejected (409)
        assert statuses in ([200, 200], [200, 409])
        assert [h["to"] for h in await flows.history(system, order["id"])].count("rejected") == 1

    async def test_two_orders_racing_for_the_last_credit(self, system):
        customer = await flows.make_customer(system, limit_minor=ORDER_TOTAL + 1000)
        first = await flows.create_order(system, customer)
        second = await flows.create_order(system, customer)
        results = await asyncio.gather(flows.submit(system, first["id"]), flows.submit(system, second["id"]))
        assert [r.status_code for r in results] == [200, 200]
        decisions = sorted(r.json()["credit"]["status"] for r in results)
        assert decisions == ["rejected", "reserved"]
        refused = next(r.json() for r in results if r.json()["credit"]["status"] == "rejected")
        assert refused["credit"]["reasons"] and refused["state"] == "in_review"


class TestRejectReviseResubmit:
    async def test_rejection_with_reasons_then_revision_two(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        oid, first_reservation = order["id"], order["credit"]["reservation_id"]
        await flows.review(system, oid, "production")
        r = await flows.review(system, oid, "quality", "reject", "IPC-A-600 Class 3 is needed")
        assert r.json()["state"] == "rejected"
        late = await flows.review(system, oid, "technical", "reject", "too late")
        assert late.status_code == 409 and late.json()["allowed"] == ["revise", "cancel"]
        [rejected] = await flows.order_events(system, "order.rejected")
        assert rejected["data"]["reasons"] == [{"source": "quality", "reason": "IPC-A-600 Class 3 is needed"}]
        assert (await flows.history(system, oid))[-1]["reason"] == "quality: IPC-A-600 Class 3 is needed"

        sales = system.client("orders", "sales")
        r = await sales.post(f"/v1/orders/{oid}/revise", json={"reason": "Class 3 agreed"})
        assert r.status_code == 200, r.text
        revised = r.json()
        assert revised["state"] == "draft" and revised["revision"] == 2
        assert revised["reviews"] == [] and revised["review_due_at"] is None
        assert revised["credit"] == {"status": "pending", "reservation_id": None, "reasons": []}
        assert (await flows.reservation(system, first_reservation))["status"] == "released"

        r = await sales.patch(f"/v1/orders/{oid}", json={"lines": [
            {**flows.LINE, "quality_standard": "IPC-A-600 Class 3", "unit_price_minor": 2100}]})
        assert r.status_code == 200, r.text
        system.clock.advance(days=1)
        r = await flows.submit(system, oid)
        assert r.status_code == 200, r.text
        resubmitted = r.json()
        assert resubmitted["state"] == "in_review" and resubmitted["credit"]["status"] == "reserved"
        assert resubmitted["credit"]["reservation_id"] != first_reservation
        assert resubmitted["review_due_at"] == "2026-01-09T09:00:00Z"
        new_reservation = await flows.reservation(system, resubmitted["credit"]["reservation_id"])
        assert new_reservation["amount_minor"] == 210_000
        approved = await flows.approve_by_all(system, oid)
        assert approved["state"] == "approved" and len(approved["reviews"]) == 5
        assert await count(system, OrderReview) == 2 + 5  # revision 1's opinions are kept
        assert [h["revision"] for h in await flows.history(system, oid)][-1] == 2

    async def test_revise_fails_closed_when_credit_is_down(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        await flows.review(system, order["id"], "quality", "reject", "no")
        with flows.credit_down(system):
            r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/revise")
        assert r.status_code == 503 and r.json()["code"] == "dependency_unavailable"
        after = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert after["state"] == "rejected" and after["revision"] == 1
        assert (await flows.reservation(system, order["credit"]["reservation_id"]))["status"] == "active"


class TestCreditRecheck:
    async def test_over_the_limit_then_the_limit_is_raised(self, system):
        customer = await flows.make_customer(system, limit_minor=100_000)
        order = await flows.submitted_order(system, customer)
        assert order["state"] == "in_review" and order["credit"]["status"] == "rejected"
        assert order["credit"]["reasons"]
        waiting = await flows.approve_by_all(system, order["id"])
        assert waiting["state"] == "in_review"
        refused = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/approve")
        assert refused.json()["guard"] == "credit_reserved"
        assert refused.json()["reason"].startswith("Credit refused the reservation: ")

        r = await system.client("credit", "credit_manager").put(
            f"/v1/customers/{customer}/credit-limit",
            json={"limit_minor": 1_000_000, "currency": "CNY", "terms_days": 60, "reason": "Guarantor found"})
        assert r.status_code == 200
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/credit-recheck")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "approved" and r.json()["credit"]["status"] == "reserved"
        assert (await flows.history(system, order["id"]))[-1]["trigger"] == "credit-recheck"

    async def test_still_refused_rejects_the_order(self, system):
        customer = await flows.make_customer(system, limit_minor=100_000)
        order = await flows.submitted_order(system, customer)
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/credit-recheck")
        assert r.status_code == 200
        assert r.json()["state"] == "rejected"
        [event] = await flows.order_events(system, "order.rejected")
        assert event["data"]["reasons"][0]["source"] == "credit"

    async def test_recheck_with_credit_down_changes_nothing(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        with flows.credit_down(system):
            r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/credit-recheck")
        assert r.status_code == 503
        after = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert after["version"] == order["version"] and after["credit"] == order["credit"]

    async def test_recheck_keeps_the_active_reservation(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/credit-recheck")
        assert r.json()["credit"]["reservation_id"] == order["credit"]["reservation_id"]
        assert len(await reservations_of(system, order["id"])) == 1


class TestCancel:
    async def test_cancel_releases_the_reservation(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        reservation_id = order["credit"]["reservation_id"]
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/cancel", json={"reason": "Customer withdrew the enquiry"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "cancelled" and r.json()["credit"]["status"] == "released"
        assert (await flows.reservation(system, reservation_id))["status"] == "released"
        assert (await flows.profile(system, customer_id))["exposure"]["reserved_minor"] == 0
        [event] = await flows.order_events(system, "order.cancelled")
        assert event["data"]["reason"] == "Customer withdrew the enquiry"
        again = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/cancel", json={"reason": "again"})
        assert again.status_code == 409 and again.json()["allowed"] == []

    async def test_cancel_a_contracted_order(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        sales = system.client("orders", "sales")
        await sales.post(f"/v1/orders/{order['id']}/contract", json={
            "contract_number": "CT-9", "signed_at": "2026-01-05T09:00:00+00:00"})
        r = await sales.post(f"/v1/orders/{order['id']}/cancel", json={"reason": "Contract annulled"})
        assert r.json()["state"] == "cancelled"
        assert (await flows.reservation(system, order["credit"]["reservation_id"]))["status"] == "released"

    async def test_cancel_fails_closed_when_credit_is_down(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        with flows.credit_down(system):
            r = await system.client("orders", "sales").post(
                f"/v1/orders/{order['id']}/cancel", json={"reason": "x"})
        assert r.status_code == 503
        after = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert after["state"] == "in_review"
        assert (await flows.reservation(system, order["credit"]["reservation_id"]))["status"] == "active"


class TestWhoMayAct:
    async def test_sales_see_and_move_only_their_own_orders(self, system):
        alices = await flows.make_customer(system, salesperson_id="S-ALICE")
        bobs = await flows.make_customer(system, salesperson_id="S-BOB", name="Bob's customer")
        mine = await flows.create_order(system, alices, principal="alice")
        theirs = await flows.create_order(system, bobs, principal="bob")
        alice, bob = system.client("orders", "alice"), system.client("orders", "bob")
        assert (await bob.post(f"/v1/orders/{mine['id']}/submit")).status_code == 404
        assert (await bob.get(f"/v1/orders/{mine['id']}/history")).status_code == 404
        r = await alice.post(f"/v1/orders/{theirs['id']}/cancel", json={"reason": "x"})
        assert r.status_code == 404
        r = await alice.post(f"/v1/orders/{mine['id']}/submit")
        assert r.status_code == 200, r.text
        assert (await flows.review(system, mine["id"], "sales", principal="bob")).status_code == 404
        assert (await flows.review(system, mine["id"], "sales", principal="alice")).status_code == 200
        assert (await alice.get(f"/v1/orders/{mine['id']}/history")).status_code == 200

    async def test_auditor_reads_but_cannot_act(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        auditor = system.client("orders", "auditor")
        oid = order["id"]
        for path, body in [("submit", None), ("approve", None), ("credit-recheck", None),
                           ("revise", None), ("cancel", {"reason": "x"}),
                           ("contract", {"contract_number": "C", "signed_at": "2026-01-05T09:00:00Z"}),
                           ("reviews", {"department": "quality", "decision": "approve"})]:
            r = await auditor.post(f"/v1/orders/{oid}/{path}", json=body)
            assert r.status_code == 403, path
        assert (await auditor.post("/v1/review-sla-scans", json={})).status_code == 403
        for path in ("", "/history", "/diagram"):
            assert (await auditor.get(f"/v1/orders/{oid}{path}")).status_code == 200
        assert (await auditor.get("/v1/state-machine")).status_code == 200

    async def test_departments_cannot_submit_or_cancel(self, system, customer_id):
        order = await flows.create_order(system, customer_id)
        for principal in ("production", "finance", "credit_manager", "service"):
            r = await flows.submit(system, order["id"], principal=principal)
            assert r.status_code == 403, principal


class TestReviewDeadlineScan:
    async def test_overdue_is_reported_once(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        done = await flows.approved_order(system, customer_id)
        assert order["review_due_at"] == "2026-01-08T09:00:00Z"
        await flows.review(system, order["id"], "sales")
        admin = system.client("orders", "admin")

        r = await admin.post("/v1/review-sla-scans", json={"as_of": "2026-01-08T08:59:00+00:00"})
        assert r.status_code == 200 and r.json()["orders"] == []
        system.clock.set(datetime(2026, 1, 8, 9, 1, tzinfo=UTC))
        r = await admin.post("/v1/review-sla-scans", json={})
        assert r.json() == {"as_of": "2026-01-08T09:01:00Z", "orders": [order["id"]]}
        assert (await admin.post("/v1/review-sla-scans")).json()["orders"] == []
        system.clock.advance(days=3)
        assert await system.state("orders").jobs["review-sla-scan"]() == []

        [event] = await flows.order_events(system, "order.review_overdue")
        assert event["subject"] == order["id"]
        assert event["data"]["review_due_at"] == "2026-01-08T09:00:00+00:00"
        assert event["data"]["waiting_for"] == ["production", "technical", "quality", "finance"]
        overdue = await flows.order_events(system, "order.review_overdue")
        assert done["id"] not in {e["subject"] for e in overdue}

    async def test_each_revision_has_its_own_deadline(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        system.clock.set(datetime(2026, 1, 9, 9, 0, tzinfo=UTC))
        assert await system.state("orders").jobs["review-sla-scan"]() == [order["id"]]
        await flows.review(system, order["id"], "quality", "reject", "no")
        sales = system.client("orders", "sales")
        await sales.post(f"/v1/orders/{order['id']}/revise")
        await sales.patch(f"/v1/orders/{order['id']}", json={"delivery_date": "2026-02-02"})
        resubmitted = (await flows.submit(system, order["id"])).json()
        assert resubmitted["review_due_at"] == "2026-01-14T09:00:00Z"  # Fri + 3 → Wed
        assert await system.state("orders").jobs["review-sla-scan"]() == []
        system.clock.set(datetime(2026, 1, 14, 9, 30, tzinfo=UTC))
        assert await system.state("orders").jobs["review-sla-scan"]() == [order["id"]]
        assert len(await flows.order_events(system, "order.review_overdue")) == 2

    async def test_only_admin_scans(self, system):
        r = await system.client("orders", "sales").post("/v1/review-sla-scans", json={})
        assert r.status_code == 403
        bad = await system.client("orders", "admin").post("/v1/review-sla-scans",
                                                          json={"as_of": "2026-01-08T09:00:00"})
        assert bad.status_code == 422


class TestHolidays:
    @pytest.fixture
    def system_overrides(self):
        return {"orders": {"holidays": ["2026-01-06", "2026-01-07"], "review_sla_working_days": 2}}

    async def test_deadline_skips_configured_holidays(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        assert order["review_due_at"] == "2026-01-09T09:00:00Z"  # Mon + 2, Tue and Wed off
        assert await count(system, OrderHistory) == 1
