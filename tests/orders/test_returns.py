"""Returns after delivery: never more than delivered; on an invoiced order, a ledger credit note."""

from __future__ import annotations

import pytest

from tests.fixtures import flows
from tests.fixtures.flows import (
    balance,
    contracted_order,
    delivered_order,
    invoiced_order,
    ledger_down,
)

REASON = "Delamination found at incoming inspection, QC-88"


@pytest.fixture
async def customer_id(system) -> str:
    return await flows.make_customer(system)


async def return_goods(system, order, quantity: str, line_id: str | None = None):
    return await system.client("orders", "sales").post(f"/v1/orders/{order['id']}/returns", json={
        "lines": [{"line_id": line_id or order["lines"][0]["id"], "quantity": quantity}],
        "reason": REASON})


class TestReturns:
    async def test_before_settlement_the_invoice_is_smaller(self, system, customer_id):
        order = await delivered_order(system, customer_id)
        r = await return_goods(system, order, "10")
        assert r.status_code == 201, r.text
        assert (r.json()["amount_minor"], r.json()["credit_note_id"]) == (18_500, None)
        current = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert current["lines"][0]["returned_quantity"] == "10.000"
        r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/settle")
        assert r.status_code == 200, r.text
        assert (await balance(system, order["id"])).json()["invoiced_minor"] == 185_000 - 18_500

    async def test_after_invoicing_ledger_credits_the_value(self, system, customer_id):
        order = await invoiced_order(system, customer_id)
        r = await return_goods(system, order, "4.5")
        assert r.status_code == 201, r.text
        returned = r.json()
        assert returned["amount_minor"] == 8_325 and returned["credit_note_id"]
        note = await system.client("ledger", "finance").get(
            f"/v1/credit-notes/{returned['credit_note_id']}")
        assert note.status_code == 200, note.text
        assert (note.json()["invoice_id"], note.json()["amount_minor"]) == (order["invoice_id"], 8_325)
        assert (await balance(system, order["id"])).json()["outstanding_minor"] == 185_000 - 8_325
        [event] = await flows.order_events(system, "order.returned")
        assert event["data"]["return_id"] == returned["id"]

    async def test_never_more_than_delivered(self, system, customer_id):
        order = await delivered_order(system, customer_id)
        assert (await return_goods(system, order, "99")).status_code == 201
        r = await return_goods(system, order, "1.001")
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == [{"field": "lines[0].quantity",
                                       "message": "only 1.000 delivered and not returned"}]
        r = await return_goods(system, order, "1", line_id="no-such-line")
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "lines[0].line_id"

    async def test_not_before_delivery(self, system, customer_id):
        order = await contracted_order(system, customer_id)
        r = await return_goods(system, order, "1")
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition", r.text

    async def test_ledger_down_changes_nothing_and_a_retry_credits_once(self, system, customer_id):
        order = await invoiced_order(system, customer_id)
        with ledger_down(system):
            r = await return_goods(system, order, "10")
        assert r.status_code == 503, r.text
        current = (await system.client("orders", "sales").get(f"/v1/orders/{order['id']}")).json()
        assert current["lines"][0]["returned_quantity"] == "0.000"
        r = await return_goods(system, order, "10")
        assert r.status_code == 201, r.text
        assert (await balance(system, order["id"])).json()["credited_minor"] == 18_500
