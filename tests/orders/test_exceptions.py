"""Exceptions on an order: opened by any department, resolved, listed; open ones block close."""

from __future__ import annotations

import pytest

from tests.fixtures import flows
from tests.fixtures.flows import contracted_order, invoiced_order

EXCEPTION = {"kind": "production_delay", "description": "Laminator down; boards slip a week.",
             "owner_department": "production", "due_at": "2026-01-12T10:00:00+00:00"}


@pytest.fixture
async def customer_id(system) -> str:
    return await flows.make_customer(system)


class TestExceptions:
    async def test_open_list_and_resolve(self, system, customer_id):
        order = await contracted_order(system, customer_id)
        path = f"/v1/orders/{order['id']}/exceptions"
        r = await system.client("orders", "quality").post(path, json=EXCEPTION)
        assert r.status_code == 201, r.text
        opened = r.json()
        assert opened["status"] == "open" and opened["opened_by"] == "quality"
        assert r.headers["Location"] == f"{path}/{opened['id']}"
        [event] = await flows.order_events(system, "order.exception_opened")
        assert event["data"]["exception_id"] == opened["id"]
        assert event["data"]["kind"] == "production_delay"

        r = await system.client("orders", "production").post(
            f"{path}/{opened['id']}/resolve", json={"resolution": "Repaired."})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "resolved" and r.json()["resolved_by"] == "production"
        again = await system.client("orders", "production").post(
            f"{path}/{opened['id']}/resolve", json={"resolution": "Again."})
        assert again.status_code == 409 and again.json()["code"] == "conflict"
        assert len(await flows.order_events(system, "order.exception_resolved")) == 1

        listed = await system.client("orders", "auditor").get(path)
        assert [(e["id"], e["status"]) for e in listed.json()] == [(opened["id"], "resolved")]

    async def test_an_open_exception_blocks_close(self, system, customer_id):
        order = await invoiced_order(system, customer_id)
        path = f"/v1/orders/{order['id']}/exceptions"
        opened = (await system.client("orders", "finance").post(path, json={
            **EXCEPTION, "kind": "quality_issue", "owner_department": "quality"})).json()
        r = await system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": customer_id, "amount_minor": flows.ORDER_TOTAL, "currency": "CNY",
            "method": "bank_transfer"})
        assert r.status_code == 201, r.text
        await system.pump()  # invoice.paid arrives; the exception keeps the order invoiced
        sales = system.client("orders", "sales")
        assert (await sales.get(f"/v1/orders/{order['id']}")).json()["state"] == "invoiced"
        r = await sales.post(f"/v1/orders/{order['id']}/close")
        assert r.status_code == 409, r.text
        assert (r.json()["guard"], r.json()["reason"]) == ("no_open_exception",
                                                           "1 exception(s) are open.")
        await system.client("orders", "quality").post(f"{path}/{opened['id']}/resolve",
                                                      json={"resolution": "Reworked."})
        r = await sales.post(f"/v1/orders/{order['id']}/close")
        assert r.status_code == 200 and r.json()["state"] == "closed", r.text

    @pytest.mark.parametrize(("body", "field"), [
        ({**EXCEPTION, "kind": "alien_invasion"}, "kind"),
        ({**EXCEPTION, "owner_department": "marketing"}, "owner_department"),
        ({**EXCEPTION, "due_at": "2026-01-12T10:00:00"}, "due_at"),
        ({k: v for k, v in EXCEPTION.items() if k != "description"}, "description"),
    ])
    async def test_bad_input(self, system, customer_id, body, field):
        order = await contracted_order(system, customer_id)
        r = await system.client("orders", "production").post(
            f"/v1/orders/{order['id']}/exceptions", json=body)
        assert r.status_code == 422, r.text
        assert field in r.json()["errors"][0]["field"]

    async def test_not_on_a_cancelled_order_nor_by_an_auditor(self, system, customer_id):
        order = await contracted_order(system, customer_id)
        path = f"/v1/orders/{order['id']}/exceptions"
        assert (await system.client("orders", "auditor").post(path, json=EXCEPTION)).status_code == 403
        await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/cancel",
                                                    json={"reason": "Withdrawn"})
        r = await system.client("orders", "production").post(path, json=EXCEPTION)
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition", r.text

    async def test_resolving_an_unknown_exception(self, system, customer_id):
        order = await contracted_order(system, customer_id)
        r = await system.client("orders", "production").post(
            f"/v1/orders/{order['id']}/exceptions/nope/resolve", json={"resolution": "x"})
        assert r.status_code == 404, r.text


class TestExceptionScan:
    async def test_late_open_exceptions_are_reported_once(self, system, customer_id):
        order = await contracted_order(system, customer_id)
        path = f"/v1/orders/{order['id']}/exceptions"
        late = (await system.client("orders", "production").post(path, json=EXCEPTION)).json()
        resolved = (await system.client("orders", "production").post(path, json=EXCEPTION)).json()
        await system.client("orders", "production").post(f"{path}/{resolved['id']}/resolve",
                                                         json={"resolution": "Done."})
        await system.client("orders", "production").post(path, json={
            **EXCEPTION, "due_at": "2026-02-01T10:00:00+00:00"})
        admin = system.client("orders", "admin")
        r = await admin.post("/v1/exception-scans", json={"as_of": "2026-01-13T09:00:00+00:00"})
        assert r.status_code == 200, r.text
        assert r.json()["exceptions"] == [late["id"]]
        r = await admin.post("/v1/exception-scans", json={"as_of": "2026-01-14T09:00:00+00:00"})
        assert r.json()["exceptions"] == []
        [event] = await flows.order_events(system, "order.exception_overdue")
        assert event["data"]["exception_id"] == late["id"]
        assert event["data"]["as_of"] == "2026-01-13T09:00:00+00:00"

    async def test_admin_only(self, system):
        r = await system.client("orders", "production").post("/v1/exception-scans")
        assert r.status_code == 403
