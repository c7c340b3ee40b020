"""Change requests across orders, credit and the event outbox, through the HTTP API.

An approved order's terms change through a change request: the departments review it, sales
applies it with the signed change agreement, credit's reservation follows the new total first,
the order works to the new terms as the next revision and the old terms stay readable.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from services.orders.models import OrderChangeRequest
from tests.fixtures import flows

DEPARTMENTS = flows.DEPARTMENTS
MORE = {"lines": [], "delivery_date": "2026-02-15"}


@pytest.fixture
async def customer_id(system) -> str:
    return await flows.make_customer(system)


def more_and_dearer(order: dict[str, Any]) -> dict[str, Any]:
    """150 boards at 19.00 instead of 100 at 18.50, a fortnight later."""
    return {"lines": [{"line_id": order["lines"][0]["id"], "quantity": "150",
                       "unit_price_minor": 1900}], "delivery_date": "2026-02-15"}


def fewer(order: dict[str, Any], quantity: str = "60") -> dict[str, Any]:
    return {"lines": [{"line_id": order["lines"][0]["id"], "quantity": quantity}]}


async def change_requests(system: Any, order_id: str, principal: str = "auditor") -> list[dict[str, Any]]:
    r = await system.client("orders", principal).get(f"/v1/orders/{order_id}/change-requests")
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def reserved_minor(system: Any, customer_id: str) -> int:
    return (await flows.profile(system, customer_id))["exposure"]["reserved_minor"]


async def force_open_change_request(system: Any, order_id: str) -> str:
    """An open change request put straight into orders' table: the API opens them only before
    delivery, so this is how settle and close meet one."""
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    async with system.state("orders").db.session() as session, session.begin():
        cr = OrderChangeRequest(number="CR-TEST01", order_id=order_id, base_revision=1, changes={},
                                reason="test", requested_by="sales", requested_at=now,
                                updated_at=now)
        session.add(cr)
    return cr.id


async def close_forced(system: Any, cr_id: str) -> None:
    async with system.state("orders").db.session() as session, session.begin():
        await session.execute(update(OrderChangeRequest).where(OrderChangeRequest.id == cr_id)
                              .values(state="withdrawn"))


class TestApproveAndApply:
    async def test_an_increase_within_credit(self, system, customer_id):
        order = await flows.contracted_order(system, customer_id)
        oid, line_id = order["id"], order["lines"][0]["id"]
        reservation_id = order["credit"]["reservation_id"]
        r = await flows.request_change(system, oid, more_and_dearer(order))
        assert r.status_code == 201, r.text
        cr = r.json()
        assert r.headers["Location"] == f"/v1/orders/{oid}/change-requests/{cr['id']}"
        assert r.headers["ETag"] == '"1"'
        assert cr["state"] == "in_review" and cr["number"].startswith("CR-")
        assert cr["base_revision"] == 1 and cr["requested_by"] == "sales"
        assert cr["impact"] == "One more shift in week 6"
        assert {"field": "total_minor", "from": 185_000, "to": 285_000} in cr["differences"]

        for department in DEPARTMENTS[:-1]:
            r = await flows.review_change(system, oid, cr["id"], department, comment="fine")
            assert r.status_code == 200 and r.json()["state"] == "in_review", r.text
        r = await flows.review_change(system, oid, cr["id"], "finance", comment="fine")
        assert r.status_code == 200 and r.json()["state"] == "approved", r.text
        assert sorted(v["department"] for v in r.json()["reviews"]) == sorted(DEPARTMENTS)
        # approved but not applied: the order still works to its old terms
        assert (await flows.get_order(system, oid))["total_minor"] == flows.ORDER_TOTAL

        r = await flows.apply_change(system, oid, cr["id"])
        assert r.status_code == 200, r.text
        applied = r.json()
        assert applied["state"] == "applied" and applied["applied_revision"] == 2
        assert applied["agreement_number"] == "CT-2026-0042-A1" and applied["closed_by"] == "sales"
        assert applied["credit_adjustment"] == {"reservation_id": reservation_id, "from_minor": 185_000,
                                                "to_minor": 285_000, "action": "increased"}
        assert sorted(v["department"] for v in applied["reviews"]) == sorted(DEPARTMENTS)

        now = await flows.get_order(system, oid)
        assert (now["state"], now["revision"], now["total_minor"]) == ("contracted", 2, 285_000)
        assert now["delivery_date"] == "2026-02-15"
        [line] = now["lines"]
        assert (line["id"], line["quantity"], line["unit_price_minor"], line["total_minor"]) == (
            line_id, "150.000", 1900, 285_000)
        assert now["version"] > order["version"]
        assert sorted(v["department"] for v in now["reviews"]) == sorted(DEPARTMENTS)

        held = await flows.reservation(system, reservation_id)
        assert (held["amount_minor"], held["status"]) == (285_000, "active")
        assert await reserved_minor(system, customer_id) == 285_000

        old = (await system.client("orders", "auditor").get(f"/v1/orders/{oid}/revisions/1")).json()
        assert old["current"] is False and old["replaced_by_change_request_id"] == cr["id"]
        assert old["replaced_by_trigger"] == "change-request-apply"
        assert old["terms"]["total_minor"] == 185_000 and old["terms"]["delivery_date"] == "2026-02-01"
        assert old["terms"]["lines"][0]["quantity"] == "100.000"
        assert old["terms"]["lines"][0]["unit_price_minor"] == 1850
        current = (await system.client("orders", "auditor").get(f"/v1/orders/{oid}/revisions/2")).json()
        assert current["current"] is True and current["terms"]["total_minor"] == 285_000
        assert current["made_by_change_request_id"] == cr["id"]
        r = await system.client("orders", "auditor").get(f"/v1/orders/{oid}/revisions/3")
        assert r.status_code == 404 and r.json()["code"] == "not_found"

        [changed] = await flows.order_events(system, "order.changed")
        data = changed["data"]
        assert (changed["subject"], data["revision"], data["previous_revision"]) == (oid, 2, 1)
        assert data["change_request_id"] == cr["id"] and data["agreement_number"] == "CT-2026-0042-A1"
        diffs = data["differences"]
        assert {"line_id": line_id, "position": 1, "field": "quantity", "from": "100.000",
                "to": "150.000"} in diffs
        assert {"line_id": line_id, "position": 1, "field": "unit_price_minor", "from": 1850,
                "to": 1900} in diffs
        assert {"field": "delivery_date", "from": "2026-02-01", "to": "2026-02-15"} in diffs
        assert {"field": "total_minor", "from": 185_000, "to": 285_000} in diffs
        assert data["total_minor"] == 285_000
        [requested] = await flows.order_events(system, "order.change_requested")
        assert requested["data"]["change_request_id"] == cr["id"]
        assert requested["data"]["departments"] == list(DEPARTMENTS)
        assert len(await flows.order_events(system, "order.change_request_approved")) == 1
        await system.pump()
        r = await system.client("notifier").get("/v1/events", params={"type": "order.changed"})
        [delivered] = r.json()["items"]
        assert delivered["id"] == changed["id"] and delivered["data"]["differences"] == diffs

    async def test_history_records_every_step(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        oid = order["id"]
        cr = await flows.approved_change(system, oid, fewer(order))
        r = await flows.apply_change(system, oid, cr["id"], principal="admin")
        assert r.status_code == 200, r.text
        steps = [h for h in await flows.history(system, oid) if h["change_request_id"]]
        assert [(h["trigger"], h["change_request_from"], h["change_request_to"]) for h in steps] == [
            ("change-request", None, "in_review"),
            *[("change-request-review", "in_review", "in_review")] * 4,
            ("change-request-review", "in_review", "approved"),
            ("change-request-apply", "approved", "applied")]
        assert {(h["from"], h["to"]) for h in steps} == {("approved", "approved")}
        assert [h["actor"] for h in steps] == ["sales", *DEPARTMENTS, "admin"]
        assert all(h["request_id"] and h["at"] for h in steps)
        assert steps[0]["reason"] == f"{cr['number']} requested: Customer asked for more boards"
        assert steps[-1]["reason"] == (f"{cr['number']} applied as revision 2 under change "
                                       "agreement CT-2026-0042-A1")
        assert steps[-1]["revision"] == 2

    async def test_listing_and_one(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = await flows.approved_change(system, order["id"], MORE)
        [listed] = await change_requests(system, order["id"])
        assert listed["id"] == cr["id"] and len(listed["reviews"]) == 5
        assert listed["reviews"][0]["by"] and listed["reviews"][0]["at"]
        r = await system.client("orders", "finance").get(
            f"/v1/orders/{order['id']}/change-requests/{cr['id']}")
        assert r.status_code == 200 and r.json() == listed and r.headers["ETag"] == f'"{cr["version"]}"'
        r = await system.client("orders", "finance").get(
            f"/v1/orders/{order['id']}/change-requests/not-a-change")
        assert r.status_code == 404 and r.json()["code"] == "not_found"

    async def test_add_and_remove_lines(self, system, customer_id):
        second = {**flows.LINE, "sku": "PCB-6L", "name": "6-layer PCB", "quantity": "10",
                  "unit_price_minor": 5000}
        order = await flows.approved_order(system, customer_id, lines=[flows.LINE, second])
        oid = order["id"]
        kept, dropped = order["lines"]
        added = {"sku": "STENCIL", "name": "SMT stencil", "quantity": "2", "unit_price_minor": 30_000}
        cr = await flows.approved_change(system, oid, {"remove_lines": [dropped["id"]],
                                                       "add_lines": [added]})
        r = await flows.apply_change(system, oid, cr["id"])
        assert r.status_code == 200, r.text
        now = await flows.get_order(system, oid)
        assert [line["sku"] for line in now["lines"]] == ["PCB-4L", "STENCIL"]
        assert now["lines"][0]["id"] == kept["id"]
        assert now["total_minor"] == 185_000 + 60_000
        diffs = r.json()["differences"]
        assert {"line_id": dropped["id"], "position": 2, "field": "line", "to": None,
                "from": {"sku": "PCB-6L", "name": "6-layer PCB", "specification": "FR-4, 1.6 mm",
                         "quantity": "10.000", "unit_price_minor": 5000,
                         "quality_standard": "IPC-A-600 Class 2", "total_minor": 50_000}} in diffs
        [new_line] = [d for d in diffs if d["field"] == "line" and d["from"] is None]
        assert new_line["line_id"] == now["lines"][1]["id"] and new_line["position"] == 3
        assert new_line["to"]["total_minor"] == 60_000
        old = (await system.client("orders", "auditor").get(f"/v1/orders/{oid}/revisions/1")).json()
        assert [line["sku"] for line in old["terms"]["lines"]] == ["PCB-4L", "PCB-6L"]

    async def test_terms_only_change_keeps_the_reservation(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = await flows.approved_change(system, order["id"], {
            "delivery_place": "Dock 7, Guangzhou", "payment_terms_days": 30,
            "lines": [{"line_id": order["lines"][0]["id"], "specification": "FR-4, 2.0 mm"}]})
        r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 200, r.text
        assert r.json()["credit_adjustment"]["action"] == "none"
        now = await flows.get_order(system, order["id"])
        assert (now["delivery_place"], now["payment_terms_days"]) == ("Dock 7, Guangzhou", 30)
        assert now["lines"][0]["specification"] == "FR-4, 2.0 mm"
        assert (await flows.reservation(system, order["credit"]["reservation_id"]))["amount_minor"] == 185_000


class TestReject:
    async def test_any_rejection_rejects_with_reasons(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        oid = order["id"]
        r = await flows.request_change(system, oid, more_and_dearer(order))
        cr = r.json()
        await flows.review_change(system, oid, cr["id"], "sales", comment="ok")
        r = await flows.review_change(system, oid, cr["id"], "production", "reject",
                                      "No capacity for 50 more boards before March")
        assert r.status_code == 200, r.text
        rejected = r.json()
        assert rejected["state"] == "rejected" and rejected["decided_at"]
        assert rejected["rejection_reasons"] == [
            {"source": "production", "reason": "No capacity for 50 more boards before March"}]
        [event] = await flows.order_events(system, "order.change_request_rejected")
        assert event["data"]["reasons"] == rejected["rejection_reasons"]
        now = await flows.get_order(system, oid)
        assert (now["revision"], now["total_minor"]) == (1, flows.ORDER_TOTAL)
        for late in (flows.review_change(system, oid, cr["id"], "quality"),
                     flows.apply_change(system, oid, cr["id"])):
            r = await late
            assert r.status_code == 409 and r.json()["code"] == "invalid_transition", r.text
            assert r.json()["state"] == "rejected" and r.json()["allowed"] == []
        # a rejected change is closed: another may be asked for
        r = await flows.request_change(system, oid, fewer(order))
        assert r.status_code == 201, r.text

    async def test_a_rejection_needs_a_comment(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = (await flows.request_change(system, order["id"], MORE)).json()
        r = await flows.review_change(system, order["id"], cr["id"], "quality", "reject")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "comment"


class TestWithdraw:
    @pytest.mark.parametrize("approve", [False, True])
    async def test_withdraw_an_open_change(self, system, customer_id, approve):
        order = await flows.approved_order(system, customer_id)
        oid = order["id"]
        if approve:
            cr = await flows.approved_change(system, oid, MORE)
        else:
            cr = (await flows.request_change(system, oid, MORE)).json()
        r = await system.client("orders", "alice").post(
            f"/v1/orders/{oid}/change-requests/{cr['id']}/withdraw",
            json={"reason": "Customer keeps the original date"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "withdrawn"
        assert r.json()["withdrawn_reason"] == "Customer keeps the original date"
        assert r.json()["closed_by"] == "alice"
        assert len(r.json()["reviews"]) == (len(DEPARTMENTS) if approve else 0)
        [event] = await flows.order_events(system, "order.change_request_withdrawn")
        assert event["data"]["reason"] == "Customer keeps the original date"
        assert (await flows.get_order(system, oid))["delivery_date"] == "2026-02-01"
        r = await flows.apply_change(system, oid, cr["id"])
        assert r.status_code == 409 and r.json()["state"] == "withdrawn"
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{oid}/change-requests/{cr['id']}/withdraw", json={"reason": "again"})
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"

    async def test_an_applied_change_cannot_be_withdrawn(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = await flows.approved_change(system, order["id"], MORE)
        assert (await flows.apply_change(system, order["id"], cr["id"])).status_code == 200
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/change-requests/{cr['id']}/withdraw", json={"reason": "late"})
        assert r.status_code == 409 and r.json()["state"] == "applied"

    async def test_cancelling_the_order_withdraws_its_open_change(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = (await flows.request_change(system, order["id"], MORE)).json()
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/cancel",
                                                        json={"reason": "Customer went bankrupt"})
        assert r.status_code == 200, r.text
        [listed] = await change_requests(system, order["id"])
        assert listed["id"] == cr["id"] and listed["state"] == "withdrawn"
        assert "Customer went bankrupt" in listed["withdrawn_reason"]


class TestCredit:
    async def test_a_refused_increase_changes_nothing(self, system):
        customer = await flows.make_customer(system, limit_minor=200_000)
        order = await flows.approved_order(system, customer)
        oid = order["id"]
        cr = await flows.approved_change(system, oid, more_and_dearer(order))
        events_before = len(await flows.order_events(system))
        r = await flows.apply_change(system, oid, cr["id"])
        assert r.status_code == 409, r.text
        problem = r.json()
        assert (problem["code"], problem["guard"]) == ("guard_failed", "credit_reserved")
        assert "refused" in problem["reason"] and problem["reason"] == problem["detail"]
        now = await flows.get_order(system, oid)
        assert (now["revision"], now["total_minor"], now["version"]) == (1, 185_000, order["version"])
        assert now["lines"][0]["quantity"] == "100.000"
        still = (await system.client("orders", "auditor").get(
            f"/v1/orders/{oid}/change-requests/{cr['id']}")).json()
        assert still["state"] == "approved" and still["version"] == cr["version"]
        assert (await flows.reservation(system, order["credit"]["reservation_id"]))["amount_minor"] == 185_000
        assert len(await flows.order_events(system)) == events_before
        r = await system.client("orders", "auditor").get(f"/v1/orders/{oid}/revisions/1")
        assert r.json()["current"] is True
        # once credit allows it, the same change applies
        r = await system.client("credit", "credit_manager").put(
            f"/v1/customers/{customer}/credit-limit", json={
                "limit_minor": 1_000_000, "currency": "CNY", "terms_days": 60, "reason": "raised"})
        assert r.status_code == 200, r.text
        r = await flows.apply_change(system, oid, cr["id"])
        assert r.status_code == 200 and r.json()["state"] == "applied", r.text

    async def test_a_decrease_releases_credit(self, system, customer_id):
        order = await flows.contracted_order(system, customer_id)
        available = (await flows.profile(system, customer_id))["exposure"]["available_minor"]
        cr = await flows.approved_change(system, order["id"], fewer(order, "60"))
        r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 200, r.text
        assert r.json()["credit_adjustment"]["action"] == "decreased"
        exposure = (await flows.profile(system, customer_id))["exposure"]
        assert exposure["reserved_minor"] == 111_000
        assert exposure["available_minor"] == available + 74_000
        assert (await flows.get_order(system, order["id"]))["total_minor"] == 111_000

    async def test_credit_down_at_apply_changes_nothing(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = await flows.approved_change(system, order["id"], more_and_dearer(order))
        with flows.credit_down(system):
            r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 503 and r.json()["code"] == "dependency_unavailable", r.text
        now = await flows.get_order(system, order["id"])
        assert (now["revision"], now["total_minor"]) == (1, 185_000)
        assert (await change_requests(system, order["id"]))[0]["state"] == "approved"
        r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 200, r.text
        assert await reserved_minor(system, customer_id) == 285_000

    async def test_a_prepaid_order_needs_no_credit(self, system, customer_id):
        order = await flows.approved_order(system, customer_id, payment_method="prepaid")
        cr = await flows.approved_change(system, order["id"], more_and_dearer(order))
        r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 200, r.text
        assert r.json()["credit_adjustment"]["action"] == "none"
        assert (await flows.get_order(system, order["id"]))["total_minor"] == 285_000

    async def test_a_prepaid_order_invoiced_at_contract_keeps_its_amount(self, system, customer_id):
        order = await flows.contracted_order(system, customer_id, payment_method="prepaid")
        assert order["invoice_id"]
        r = await flows.request_change(system, order["id"], more_and_dearer(order))
        assert r.status_code == 409, r.text
        assert r.json()["guard"] == "prepaid_invoice_unchanged"
        cr = await flows.approved_change(system, order["id"], {"delivery_place": "Dock 7"})
        assert (await flows.apply_change(system, order["id"], cr["id"])).status_code == 200

    async def test_prepaid_invoiced_between_request_and_apply(self, system, customer_id):
        order = await flows.approved_order(system, customer_id, payment_method="prepaid")
        cr = await flows.approved_change(system, order["id"], more_and_dearer(order))
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/contract", json={
            "contract_number": "CT-9", "signed_at": "2026-01-05T08:30:00+00:00"})
        assert r.status_code == 200, r.text
        r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 409 and r.json()["guard"] == "prepaid_invoice_unchanged", r.text
        assert (await flows.get_order(system, order["id"]))["total_minor"] == 185_000


class TestOpenChangeRequestGuard:
    async def test_full_delivery_waits_partial_does_not(self, system, customer_id):
        order = await flows.in_fulfillment(system, customer_id)
        oid = order["id"]
        cr = (await flows.request_change(system, oid, MORE)).json()
        r = await flows.deliver(system, order, "40")
        assert r.status_code == 200 and r.json()["state"] == "in_fulfillment", r.text
        r = await flows.deliver(system, order, "60")
        assert r.status_code == 409, r.text
        assert (r.json()["code"], r.json()["guard"]) == ("guard_failed", "open_change_request")
        assert cr["number"] in r.json()["reason"]
        now = await flows.get_order(system, oid)
        assert now["lines"][0]["delivered_quantity"] == "40.000"  # the refused delivery left nothing
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{oid}/change-requests/{cr['id']}/withdraw", json={"reason": "dropped"})
        assert r.status_code == 200
        r = await flows.deliver(system, order, "60")
        assert r.status_code == 200 and r.json()["state"] == "delivered", r.text

    async def test_an_approved_change_blocks_too_until_applied(self, system, customer_id):
        order = await flows.in_fulfillment(system, customer_id)
        cr = await flows.approved_change(system, order["id"], MORE)
        r = await flows.deliver(system, order, "100")
        assert r.status_code == 409 and r.json()["guard"] == "open_change_request"
        assert (await flows.apply_change(system, order["id"], cr["id"])).status_code == 200
        r = await flows.deliver(system, order, "100")
        assert r.status_code == 200 and r.json()["state"] == "delivered", r.text

    async def test_settle_waits(self, system, customer_id):
        order = await flows.in_fulfillment(system, customer_id)
        assert (await flows.deliver(system, order, "100")).json()["state"] == "delivered"
        cr_id = await force_open_change_request(system, order["id"])
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/settle")
        assert r.status_code == 409 and r.json()["guard"] == "open_change_request", r.text
        assert "CR-TEST01" in r.json()["reason"]
        await close_forced(system, cr_id)
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/settle")
        assert r.status_code == 200 and r.json()["state"] == "invoiced", r.text

    async def test_close_waits(self, system, customer_id):
        order = await flows.in_fulfillment(system, customer_id)
        await flows.deliver(system, order, "100")
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/settle")
        assert r.status_code == 200, r.text
        r = await system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": customer_id, "amount_minor": flows.ORDER_TOTAL, "currency": "CNY",
            "method": "bank_transfer"})
        assert r.status_code == 201, r.text
        cr_id = await force_open_change_request(system, order["id"])
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/close")
        assert r.status_code == 409 and r.json()["guard"] == "open_change_request", r.text
        await close_forced(system, cr_id)
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/close")
        assert r.status_code == 200 and r.json()["state"] == "closed", r.text

    async def test_a_change_that_completes_the_deliveries_delivers_the_order(self, system, customer_id):
        order = await flows.in_fulfillment(system, customer_id)
        await flows.deliver(system, order, "60")
        cr = await flows.approved_change(system, order["id"], fewer(order, "60"))
        r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 200, r.text
        now = await flows.get_order(system, order["id"])
        assert (now["state"], now["total_minor"]) == ("delivered", 111_000)
        last = (await flows.history(system, order["id"]))[-1]
        assert (last["trigger"], last["to"], last["actor"]) == ("deliver", "delivered", "system")

    async def test_a_change_overtaken_by_deliveries_is_refused(self, system, customer_id):
        order = await flows.in_fulfillment(system, customer_id)
        cr = await flows.approved_change(system, order["id"], fewer(order, "50"))
        assert (await flows.deliver(system, order, "70")).status_code == 200
        r = await flows.apply_change(system, order["id"], cr["id"])
        assert r.status_code == 409 and r.json()["guard"] == "change_fits_deliveries", r.text
        assert "70.000 already delivered" in r.json()["reason"]
        assert (await flows.get_order(system, order["id"]))["lines"][0]["quantity"] == "100.000"


class TestConcurrentApplies:
    async def test_exactly_one_apply_takes_effect(self, system, customer_id):
        """Two applies at once: the second either finds the first's step pending and finishes
        it with it (200, the same applied change), or finds it applied (409)."""
        order = await flows.contracted_order(system, customer_id)
        cr = await flows.approved_change(system, order["id"], more_and_dearer(order))
        results = await asyncio.gather(flows.apply_change(system, order["id"], cr["id"]),
                                       flows.apply_change(system, order["id"], cr["id"], "admin"))
        statuses = sorted(r.status_code for r in results)
        assert statuses in ([200, 200], [200, 409]), [r.text for r in results]
        for r in results:
            body = r.json()
            assert body["state"] == "applied" if r.status_code == 200 else (
                body["code"] == "invalid_transition" and body["state"] == "applied")
        now = await flows.get_order(system, order["id"])
        assert (now["revision"], now["total_minor"]) == (2, 285_000)
        assert len(await flows.order_events(system, "order.changed")) == 1
        assert await reserved_minor(system, customer_id) == 285_000

    async def test_two_requests_at_once_open_one(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        results = await asyncio.gather(flows.request_change(system, order["id"], MORE),
                                       flows.request_change(system, order["id"], fewer(order)))
        assert sorted(r.status_code for r in results) == [201, 409], [r.text for r in results]
        assert len(await change_requests(system, order["id"])) == 1

    async def test_apply_racing_withdraw(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = await flows.approved_change(system, order["id"], more_and_dearer(order))
        results = await asyncio.gather(
            flows.apply_change(system, order["id"], cr["id"]),
            system.client("orders", "sales").post(
                f"/v1/orders/{order['id']}/change-requests/{cr['id']}/withdraw", json={"reason": "x"}))
        assert sorted(r.status_code for r in results) == [200, 409]
        state = (await change_requests(system, order["id"]))[0]["state"]
        total = (await flows.get_order(system, order["id"]))["total_minor"]
        assert (state, total) in {("applied", 285_000), ("withdrawn", 185_000)}
        assert await reserved_minor(system, customer_id) == total


class TestBadChanges:
    async def test_quantity_below_delivered_and_removing_a_delivered_line(self, system, customer_id):
        second = {**flows.LINE, "sku": "PCB-6L", "name": "6-layer PCB"}
        order = await flows.in_fulfillment(system, customer_id, lines=[flows.LINE, second])
        assert (await flows.deliver(system, order, "40")).status_code == 200
        assert (await flows.deliver(system, order, "5", line=1)).status_code == 200
        r = await flows.request_change(system, order["id"], {
            "lines": [{"line_id": order["lines"][0]["id"], "quantity": "30"}],
            "remove_lines": [order["lines"][1]["id"]]})
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {"field": "changes.remove_lines[0]",
             "message": "line 2 was delivered (5.000); it cannot be removed"},
            {"field": "changes.lines[0].quantity",
             "message": "must be at least the 40.000 already delivered"}]

    @pytest.mark.parametrize(("changes", "field", "words"), [
        (lambda line: {}, "changes", "changes nothing"),
        (lambda line: {"delivery_date": "2026-02-01"}, "changes", "changes nothing"),
        (lambda line: {"lines": [{"line_id": "no-such-line", "quantity": "5"}]},
         "changes.lines[0].line_id", "not a line of this order"),
        (lambda line: {"remove_lines": ["no-such-line"]}, "changes.remove_lines[0]",
         "not a line of this order"),
        (lambda line: {"delivery_date": "2026-01-04"}, "changes.delivery_date",
         "must be 2026-01-05 or later"),
        (lambda line: {"payment_method": "prepaid"}, "changes.payment_method",
         "cannot change after approval"),
        (lambda line: {"lines": [{"line_id": line}]}, "changes.lines[0]", "changes nothing"),
        (lambda line: {"lines": [{"line_id": line, "quantity": None}]}, "changes.lines[0].quantity",
         "may not be null"),
        (lambda line: {"lines": [{"line_id": line, "quantity": "0"}]}, "changes.lines[0].quantity",
         "greater than 0"),
        (lambda line: {"remove_lines": [line]}, "changes.remove_lines", "at least one line"),
        (lambda line: {"delivery_place": None}, "changes.delivery_place", "may not be null"),
        (lambda line: {"currency": "USD"}, "changes.currency", ""),
    ], ids=["empty", "same-values", "unknown-line", "remove-unknown", "date-in-past",
            "payment-method", "line-without-fields", "null-quantity", "zero-quantity",
            "no-line-left", "null-place", "unknown-field"])
    async def test_each_is_a_422(self, system, customer_id, changes, field, words):
        order = await flows.approved_order(system, customer_id)
        r = await flows.request_change(system, order["id"], changes(order["lines"][0]["id"]))
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["code"] == "validation_failed"
        matching = [e for e in problem["errors"] if e["field"] == field]
        assert matching and words in matching[0]["message"], problem["errors"]
        assert await change_requests(system, order["id"]) == []

    async def test_every_problem_at_once(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        line_id = order["lines"][0]["id"]
        r = await flows.request_change(system, order["id"], {
            "lines": [{"line_id": line_id, "quantity": "5"}, {"line_id": line_id, "quantity": "6"}],
            "remove_lines": ["ghost"], "delivery_date": "2025-12-31", "payment_method": "prepaid"})
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {
            "changes.payment_method", "changes.remove_lines[0]", "changes.lines[1].line_id",
            "changes.delivery_date"}

    async def test_reason_is_required(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/change-requests", json={"changes": MORE})
        assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("reason")

    async def test_agreement_signed_in_the_future(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = await flows.approved_change(system, order["id"], MORE)
        r = await flows.apply_change(system, order["id"], cr["id"], signed_at="2026-01-06T09:00:00+00:00")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "signed_at"

    @pytest.mark.parametrize("state", ["draft", "in_review", "delivered"])
    async def test_only_while_approved_contracted_or_in_fulfillment(self, system, customer_id, state):
        if state == "draft":
            order = await flows.create_order(system, customer_id)
        elif state == "in_review":
            order = await flows.submitted_order(system, customer_id)
        else:
            order = await flows.in_fulfillment(system, customer_id)
            order = (await flows.deliver(system, order, "100")).json()
        r = await flows.request_change(system, order["id"], MORE)
        assert r.status_code == 409, r.text
        assert (r.json()["code"], r.json()["state"]) == ("invalid_transition", state)


class TestOneOpenPerOrder:
    async def test_a_second_open_change_is_a_conflict(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        first = (await flows.request_change(system, order["id"], MORE)).json()
        r = await flows.request_change(system, order["id"], fewer(order))
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        assert first["number"] in r.json()["detail"]
        # approved, it is still open and still blocks
        for department in DEPARTMENTS:
            await flows.review_change(system, order["id"], first["id"], department)
        r = await flows.request_change(system, order["id"], fewer(order))
        assert r.status_code == 409 and r.json()["code"] == "conflict"
        assert (await flows.apply_change(system, order["id"], first["id"])).status_code == 200
        r = await flows.request_change(system, order["id"], fewer(order))
        assert r.status_code == 201, r.text
        assert r.json()["base_revision"] == 2


class TestRolesAndVisibility:
    async def test_who_may_do_what(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        oid = order["id"]
        for principal in ("production", "finance", "auditor", "credit_manager"):
            r = await flows.request_change(system, oid, MORE, principal=principal)
            assert r.status_code == 403, (principal, r.text)
        r = await flows.request_change(system, oid, MORE, principal="bob")
        assert r.status_code == 404
        r = await flows.request_change(system, oid, MORE, principal="alice")
        assert r.status_code == 201, r.text
        cr = r.json()
        r = await flows.review_change(system, oid, cr["id"], "quality", principal="production")
        assert r.status_code == 403
        r = await flows.review_change(system, oid, cr["id"], "legal", principal="admin")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "department"
        r = await flows.review_change(system, oid, cr["id"], "quality", principal="admin")
        assert r.status_code == 200
        for department in DEPARTMENTS:
            await flows.review_change(system, oid, cr["id"], department)
        for principal in ("finance", "production", "auditor"):
            r = await flows.apply_change(system, oid, cr["id"], principal=principal)
            assert r.status_code == 403, (principal, r.text)
        r = await flows.apply_change(system, oid, cr["id"], principal="bob")
        assert r.status_code == 404
        for principal in ("bob",):
            r = await system.client("orders", principal).get(f"/v1/orders/{oid}/change-requests")
            assert r.status_code == 404
            r = await system.client("orders", principal).get(f"/v1/orders/{oid}/revisions/1")
            assert r.status_code == 404
        assert (await change_requests(system, oid, "alice"))[0]["id"] == cr["id"]
        r = await flows.apply_change(system, oid, cr["id"], principal="alice")
        assert r.status_code == 200, r.text

    async def test_if_match_on_a_change_request(self, system, customer_id):
        order = await flows.approved_order(system, customer_id)
        cr = (await flows.request_change(system, order["id"], MORE)).json()
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/change-requests/{cr['id']}/withdraw",
            json={"reason": "stale"}, headers={"If-Match": '"7"'})
        assert r.status_code == 412 and r.json()["code"] == "version_conflict"
        r = await system.client("orders", "sales").post(
            f"/v1/orders/{order['id']}/change-requests/{cr['id']}/withdraw",
            json={"reason": "fresh"}, headers={"If-Match": f'"{cr["version"]}"'})
        assert r.status_code == 200


class TestStateMachine:
    async def test_the_change_request_machine_is_described(self, system):
        r = await system.client("orders", "auditor").get("/v1/state-machine")
        machine = r.json()["change_request_machine"]
        assert machine["initial"] == "in_review"
        assert machine["states"] == ["in_review", "approved", "applied", "rejected", "withdrawn"]
        [apply] = [t for t in machine["transitions"] if t["trigger"] == "apply"]
        assert apply["source"] == ["approved"] and apply["dest"] == "applied"
        assert apply["event"] == "order.changed"
        assert [g["name"] for g in apply["guards"]] == [
            "order_accepts_changes", "change_fits_deliveries", "prepaid_invoice_unchanged",
            "credit_reserved"]


class TestRevisions:
    async def test_a_revise_keeps_the_rejected_terms_too(self, system, customer_id):
        order = await flows.submitted_order(system, customer_id)
        r = await flows.review(system, order["id"], "quality", "reject", "Class 3 needed")
        assert r.json()["state"] == "rejected"
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/revise",
                                                        json={"reason": "Class 3"})
        assert r.status_code == 200 and r.json()["revision"] == 2, r.text
        r = await system.client("orders", "sales").patch(f"/v1/orders/{order['id']}", json={
            "lines": [{**flows.LINE, "quality_standard": "IPC-A-600 Class 3"}]})
        assert r.status_code == 200, r.text
        old = (await system.client("orders", "alice").get(f"/v1/orders/{order['id']}/revisions/1")).json()
        assert old["current"] is False and old["replaced_by_trigger"] == "revise"
        assert old["replaced_by_change_request_id"] is None and old["made_by_change_request_id"] is None
        assert old["terms"]["lines"][0]["quality_standard"] == "IPC-A-600 Class 2"
        current = (await system.client("orders", "alice").get(
            f"/v1/orders/{order['id']}/revisions/2")).json()
        assert current["current"] and current["terms"]["lines"][0]["quality_standard"] == "IPC-A-600 Class 3"

    async def test_revision_numbers_are_checked(self, system, customer_id):
        order = await flows.create_order(system, customer_id)
        r = await system.client("orders", "auditor").get(f"/v1/orders/{order['id']}/revisions/0")
        assert r.status_code == 422
        r = await system.client("orders", "auditor").get(f"/v1/orders/{order['id']}/revisions/1")
        assert r.status_code == 200 and r.json()["terms"]["total_minor"] == flows.ORDER_TOTAL
