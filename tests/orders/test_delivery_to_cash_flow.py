"""From contract to close across orders, credit, ledger and notifier in one process.

The order is delivered in two parts, settled (ledger issues the invoice, credit converts the
reservation), paid in ledger, and closed by `invoice.paid` arriving through notifier. Then the
faults (ledger down at settle and at close) and the bad input of each step.
"""

from __future__ import annotations

import pytest

from tests.fixtures import flows
from tests.fixtures.flows import (
    DELIVERED_AT,
    balance,
    contracted_order,
    deliver,
    delivered_order,
    in_fulfillment,
    invoiced_order,
    ledger_down,
)


@pytest.fixture
async def customer_id(system) -> str:
    return await flows.make_customer(system)


class TestDeliveryToCash:
    async def test_contract_to_close(self, system, customer_id):
        orders = system.client("orders", "production")
        order = await contracted_order(system, customer_id)
        oid = order["id"]
        reservation_id = order["credit"]["reservation_id"]
        assert (await flows.profile(system, customer_id))["exposure"]["reserved_minor"] == \
            flows.ORDER_TOTAL

        r = await orders.post(f"/v1/orders/{oid}/start-fulfillment")
        assert r.status_code == 200 and r.json()["state"] == "in_fulfillment", r.text

        first = await deliver(system, order, "60")
        assert first.status_code == 200, first.text
        assert first.json()["state"] == "in_fulfillment"
        assert first.json()["lines"][0]["delivered_quantity"] == "60.000"
        assert await flows.order_events(system, "order.delivered") == []
        second = await deliver(system, order, "40")
        assert second.status_code == 200 and second.json()["state"] == "delivered", second.text
        assert second.json()["lines"][0]["delivered_quantity"] == "100.000"
        [delivered_event] = await flows.order_events(system, "order.delivered")
        assert delivered_event["subject"] == oid

        r = await system.client("orders", "finance").post(f"/v1/orders/{oid}/settle")
        assert r.status_code == 200, r.text
        settled = r.json()
        assert settled["state"] == "invoiced" and settled["invoice_id"]
        assert settled["credit"]["status"] == "converted"
        r = await system.client("ledger", "finance").get(f"/v1/invoices/{settled['invoice_id']}")
        assert r.status_code == 200, r.text
        invoice = r.json()
        assert (invoice["order_id"], invoice["customer_id"], invoice["amount_minor"]) == (
            oid, customer_id, flows.ORDER_TOTAL)
        assert invoice["due_date"] == "2026-03-06"  # 2026-01-05 + 60 days of terms
        [invoiced_event] = await flows.order_events(system, "order.invoiced")
        assert invoiced_event["data"]["invoice_id"] == invoice["id"]
        converted = await flows.reservation(system, reservation_id)
        assert converted["status"] == "converted" and converted["invoice_id"] == invoice["id"]
        exposure = (await flows.profile(system, customer_id))["exposure"]
        assert exposure["reserved_minor"] == 0
        assert exposure["open_receivables_minor"] == flows.ORDER_TOTAL

        r = await system.client("orders", "sales").post(f"/v1/orders/{oid}/close")
        assert r.status_code == 409 and r.json()["guard"] == "nothing_outstanding", r.text

        r = await system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": customer_id, "amount_minor": flows.ORDER_TOTAL, "currency": "CNY",
            "method": "bank_transfer", "reference": "BANK-1",
            "allocations": [{"invoice_id": invoice["id"], "amount_minor": flows.ORDER_TOTAL}]})
        assert r.status_code == 201, r.text
        await system.pump()

        r = await system.client("orders", "auditor").get(f"/v1/orders/{oid}")
        assert r.json()["state"] == "closed", r.json()
        last = (await flows.history(system, oid))[-1]
        assert (last["trigger"], last["to"], last["actor"], last["reason"]) == (
            "close", "closed", "system", "invoice paid")
        assert [e["subject"] for e in await flows.order_events(system, "order.closed")] == [oid]
        assert (await balance(system, oid)).json()["outstanding_minor"] == 0

    async def test_closing_by_hand_once_paid(self, system, customer_id):
        order = await invoiced_order(system, customer_id)
        r = await system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": customer_id, "amount_minor": flows.ORDER_TOTAL, "currency": "CNY",
            "method": "bank_transfer"})
        assert r.status_code == 201, r.text
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/close")
        assert r.status_code == 200 and r.json()["state"] == "closed", r.text
        await system.pump()  # invoice.paid arrives for a closed order: nothing to do
        r = await system.client("orders", "auditor").get(f"/v1/orders/{order['id']}")
        assert r.json()["state"] == "closed"
        assert len(await flows.order_events(system, "order.closed")) == 1

    async def test_settle_with_an_explicit_due_date(self, system, customer_id):
        order = await delivered_order(system, customer_id)
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/settle",
                                                          json={"due_date": "2026-02-15"})
        assert r.status_code == 200, r.text
        assert (await balance(system, order["id"])).json()["invoiced_minor"] == flows.ORDER_TOTAL
        r = await system.client("ledger", "finance").get(f"/v1/invoices/{r.json()['invoice_id']}")
        assert r.json()["due_date"] == "2026-02-15"


class TestFaults:
    async def test_ledger_down_at_settle_then_back(self, system, customer_id):
        order = await delivered_order(system, customer_id)
        finance = system.client("orders", "finance")
        key = {"Idempotency-Key": "settle-1"}
        with ledger_down(system):
            r = await finance.post(f"/v1/orders/{order['id']}/settle", headers=key)
        assert r.status_code == 503 and r.json()["code"] == "dependency_unavailable", r.text
        current = (await finance.get(f"/v1/orders/{order['id']}")).json()
        assert current["state"] == "delivered" and current["invoice_id"] is None
        assert current["version"] == order["version"]
        assert await flows.order_events(system, "order.invoiced") == []

        r = await finance.post(f"/v1/orders/{order['id']}/settle", headers=key)
        assert r.status_code == 200 and r.json()["state"] == "invoiced", r.text
        again = await finance.post(f"/v1/orders/{order['id']}/settle", headers=key)
        assert again.status_code == 200 and again.json() == r.json()
        assert len(await flows.order_events(system, "order.invoiced")) == 1
        invoices = await system.client("ledger", "finance").get(
            "/v1/invoices", params={"order_id": order["id"]})
        assert [i["id"] for i in invoices.json()["items"]] == [r.json()["invoice_id"]]

    async def test_ledger_down_at_close(self, system, customer_id):
        order = await invoiced_order(system, customer_id)
        with ledger_down(system):
            r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/close")
        assert r.status_code == 503, r.text
        r = await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")
        assert r.json()["state"] == "invoiced" and r.json()["version"] == order["version"]


class TestBadInput:
    async def test_over_delivery(self, system, customer_id):
        order = await in_fulfillment(system, customer_id)
        assert (await deliver(system, order, "70")).status_code == 200
        r = await deliver(system, order, "30.001")
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [
            {"field": "lines[0].quantity", "message": "only 30.000 left to deliver"}]
        current = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert current["lines"][0]["delivered_quantity"] == "70.000"
        assert current["state"] == "in_fulfillment"

    async def test_unknown_line(self, system, customer_id):
        order = await in_fulfillment(system, customer_id)
        r = await system.client("orders", "production").post(
            f"/v1/orders/{order['id']}/deliveries", json={
                "lines": [{"line_id": "no-such-line", "quantity": "1"}],
                "delivered_at": DELIVERED_AT})
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["field"] == "lines[0].line_id"

    async def test_delivery_cannot_be_in_the_future(self, system, customer_id):
        order = await in_fulfillment(system, customer_id)
        r = await system.client("orders", "production").post(
            f"/v1/orders/{order['id']}/deliveries", json={
                "lines": [{"line_id": order["lines"][0]["id"], "quantity": "1"}],
                "delivered_at": "2026-01-06T08:00:00+00:00"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "delivered_at", r.text

    async def test_deliver_before_fulfilment_starts(self, system, customer_id):
        order = await contracted_order(system, customer_id)
        r = await deliver(system, order, "1")
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition", r.text

    async def test_deliver_to_a_cancelled_order(self, system, customer_id):
        order = await contracted_order(system, customer_id)
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/cancel",
                                                        json={"reason": "Customer withdrew"})
        assert r.status_code == 200, r.text
        r = await deliver(system, order, "1")
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "invalid_transition" and r.json()["state"] == "cancelled"

    async def test_settle_twice(self, system, customer_id):
        order = await invoiced_order(system, customer_id)
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/settle")
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "invalid_transition" and r.json()["allowed"] == ["close"]

    async def test_close_with_money_outstanding(self, system, customer_id):
        order = await invoiced_order(system, customer_id)
        r = await system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": customer_id, "amount_minor": 85_000, "currency": "CNY",
            "method": "bank_transfer"})
        assert r.status_code == 201, r.text
        await system.pump()
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/close")
        assert r.status_code == 409, r.text
        assert (r.json()["code"], r.json()["guard"]) == ("guard_failed", "nothing_outstanding")
        assert r.json()["reason"] == "1,000.00 CNY is still outstanding."

    @pytest.mark.parametrize(("path", "principal"), [
        ("start-fulfillment", "sales"), ("settle", "production"), ("close", "production")])
    async def test_roles(self, system, customer_id, path, principal):
        order = await contracted_order(system, customer_id)
        r = await system.client("orders", principal).post(f"/v1/orders/{order['id']}/{path}")
        assert r.status_code == 403, r.text


class TestPrepaid:
    async def test_invoiced_at_contract_produced_once_paid(self, system, customer_id):
        order = await contracted_order(system, customer_id, payment_method="prepaid",
                                       payment_terms_days=None)
        oid = order["id"]
        assert order["invoice_id"]
        r = await system.client("ledger", "finance").get(f"/v1/invoices/{order['invoice_id']}")
        assert (r.json()["amount_minor"], r.json()["due_date"]) == (flows.ORDER_TOTAL, "2026-01-05")
        production = system.client("orders", "production")
        r = await production.post(f"/v1/orders/{oid}/start-fulfillment")
        assert r.status_code == 409, r.text
        assert (r.json()["guard"], r.json()["reason"]) == (
            "prepaid_received", "Ledger does not show the prepaid order as paid.")

        r = await system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": customer_id, "amount_minor": flows.ORDER_TOTAL, "currency": "CNY",
            "method": "bank_transfer"})
        assert r.status_code == 201, r.text
        await system.pump()  # invoice.paid for a contracted order: nothing to close yet
        r = await production.post(f"/v1/orders/{oid}/start-fulfillment")
        assert r.status_code == 200 and r.json()["state"] == "in_fulfillment", r.text
        assert (await deliver(system, order, "100")).json()["state"] == "delivered"
        r = await system.client("orders", "finance").post(f"/v1/orders/{oid}/settle")
        assert r.status_code == 200, r.text
        assert r.json()["invoice_id"] == order["invoice_id"]
        # Paid before it was invoiced: it closes with its settlement (nothing else would close it).
        assert r.json()["state"] == "closed", r.text

    async def test_cancelled_before_payment_its_invoice_is_credited(self, system, customer_id):
        order = await contracted_order(system, customer_id, payment_method="prepaid",
                                       payment_terms_days=None)
        r = await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/cancel",
                                                         json={"reason": "customer withdrew"})
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
        got = (await balance(system, order["id"])).json()
        assert (got["credited_minor"], got["outstanding_minor"]) == (flows.ORDER_TOTAL, 0)
        notes = (await system.client("ledger", "finance").get(
            "/v1/credit-notes", params={"invoice_id": order["invoice_id"]})).json()["items"]
        assert [n["amount_minor"] for n in notes] == [flows.ORDER_TOTAL]
        assert "customer withdrew" in notes[0]["reason"]
        system.clock.advance(days=40)  # nothing owed: the overdue scan has nothing to say
        scan = await system.client("ledger", "finance").post("/v1/overdue-scans", json={})
        assert scan.status_code == 201 and scan.json()["crossings_emitted"] == 0, scan.text

    async def test_cancelled_after_payment_the_money_is_refundable(self, system, customer_id):
        order = await contracted_order(system, customer_id, payment_method="prepaid",
                                       payment_terms_days=None)
        sales = system.client("orders", "sales")
        with ledger_down(system):
            r = await sales.post(f"/v1/orders/{order['id']}/cancel", json={"reason": "x"})
        assert r.status_code == 503, r.text
        assert (await sales.get(f"/v1/orders/{order['id']}")).json()["state"] == "contracted"
        finance = system.client("ledger", "finance")
        r = await finance.post("/v1/payments", json={
            "customer_id": customer_id, "amount_minor": 50_000, "currency": "CNY",
            "method": "bank_transfer"})
        assert r.status_code == 201, r.text
        r = await sales.post(f"/v1/orders/{order['id']}/cancel",
                             json={"reason": "customer withdrew"})
        assert r.status_code == 200 and r.json()["state"] == "cancelled", r.text
        got = (await balance(system, order["id"])).json()
        assert (got["credited_minor"], got["paid_minor"], got["outstanding_minor"]) == (
            flows.ORDER_TOTAL, 0, 0)
        [note] = (await finance.get("/v1/credit-notes",
                                    params={"invoice_id": order["invoice_id"]})).json()["items"]
        assert (note["amount_minor"], note["returned_to_unapplied_minor"]) == (
            flows.ORDER_TOTAL, 50_000)
        held = (await finance.get(f"/v1/customers/{customer_id}/unapplied")).json()["balances"]
        assert held == [{"currency": "CNY", "unapplied_minor": 50_000}]
        refund = await finance.post("/v1/refunds", json={
            "customer_id": customer_id, "currency": "CNY", "amount_minor": 50_000,
            "method": "bank_transfer", "reason": "Cancelled prepaid order"})
        assert refund.status_code == 201 and refund.json()["status"] == "posted", refund.text
        check = (await finance.get("/v1/ledger-check")).json()
        assert check["balanced"] is True, check["problems"]
        again = await sales.post(f"/v1/orders/{order['id']}/cancel", json={"reason": "x"})
        assert again.status_code == 409 and again.json()["code"] == "invalid_transition"

    async def test_ledger_down_at_contract(self, system, customer_id):
        order = await flows.approved_order(system, customer_id, payment_method="prepaid",
                                           payment_terms_days=None)
        with ledger_down(system):
            r = await system.client("orders", "sales").post(
                f"/v1/orders/{order['id']}/contract",
                json={"contract_number": "CT-1", "signed_at": "2026-01-05T08:30:00+00:00"})
        assert r.status_code == 503, r.text
        r = await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")
        assert r.json()["state"] == "approved" and r.json()["invoice_id"] is None
