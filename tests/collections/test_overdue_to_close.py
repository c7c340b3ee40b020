"""From an unpaid invoice to cash, across all four services, over nine weeks of simulated time.

One order is settled into a ledger invoice; then only the clock moves and the daily scan runs:
ledger emits `invoice.overdue` once per threshold, notifier dunns the right people by email and
`dunning.escalated`, a broken promise is reported, credit holds the customer at 30 days (a new
order is refused with the reason), a dispute pauses the escalation, the aging report shows the
debt in the right bucket for any past date, and the payment releases the hold and closes the
order. The internal tool subscribed to the events is down for a day and still gets every step
once.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared.webhooks import verify
from tests.fixtures import flows
from tests.fixtures.dunning import (
    LEGAL_EMAIL,
    SmtpServer,
    by_role,
    customer,
    notifications,
    overrides,
    salesperson,
    settle,
)
from tests.fixtures.notifier import subscribe
from tests.harness import HOOKS_URL

WATCHED = ["invoice.overdue", "promise.broken", "dunning.escalated", "credit.hold_placed",
           "credit.hold_released", "invoice.paid"]


@pytest.fixture
def smtp():
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def system_overrides(smtp):
    return overrides(smtp)


async def invoiced_order(system: Any, customer_id: str) -> dict[str, Any]:
    """An order walked from draft to invoiced: 100 × 18.50 CNY, 60 days of terms."""
    order = await flows.in_fulfillment(system, customer_id)
    r = await flows.deliver(system, order, "100")
    assert r.status_code == 200, r.text
    r = await system.client("orders", "finance").post(f"/v1/orders/{order['id']}/settle")
    assert r.status_code == 200 and r.json()["state"] == "invoiced", r.text
    return r.json()


async def on_day(system: Any, due: date, days: int) -> dict[str, Any]:
    """Move the clock to `days` after the due date, run ledger's daily scan, let events flow."""
    at = due + timedelta(days=days)
    system.clock.set(datetime(at.year, at.month, at.day, 10, 0, tzinfo=UTC))
    r = await system.client("ledger", "finance").post("/v1/overdue-scans", json={})
    assert r.status_code == 201, r.text
    await settle(system)
    return r.json()


def received(system: Any, secret: str) -> list[dict[str, Any]]:
    """Events the internal tool received, each signature checked (as of when it was sent)."""
    events = []
    for request in system.receiver.requests:
        if request["path"] == "/tool":
            sent_at = datetime.fromtimestamp(int(request["headers"]["webhook-timestamp"]), UTC)
            verify(secret, request["headers"], request["body"], now=sent_at)
            events.append(json.loads(request["body"]))
    return events


def _unavailable(request: httpx.Request) -> httpx.Response:
    return httpx.Response(503, text="maintenance")


async def test_overdue_invoice_from_first_reminder_to_cash(system, smtp):
    tool = await subscribe(system, "/tool", WATCHED)
    await salesperson(system)  # Alice Chen <alice.chen@o2c.example>
    customer_id = await customer(system)  # finance, key person, general manager, decision-maker
    r = await system.client("credit", "credit_manager").put(
        f"/v1/customers/{customer_id}/credit-limit", json={
            "limit_minor": 1_000_000, "currency": "CNY", "terms_days": 60, "reason": "2026"})
    assert r.status_code == 200, r.text
    order = await invoiced_order(system, customer_id)
    invoice = (await system.client("ledger", "finance").get(
        f"/v1/invoices/{order['invoice_id']}")).json()
    assert invoice["amount_minor"] == flows.ORDER_TOTAL == 185_000
    due = date.fromisoformat(invoice["due_date"])
    await settle(system)

    # Day 0: due today, nothing is late.
    assert (await on_day(system, due, 0))["crossings_emitted"] == 0
    assert await notifications(system) == []

    # Day 1: the tool is down for the day; the salesperson and the customer's finance are told.
    healthy = system.mounts[HOOKS_URL]
    system.mounts[HOOKS_URL] = httpx.MockTransport(_unavailable)
    await on_day(system, due, 1)
    first = by_role(await notifications(system, invoice_id=invoice["id"], level=1))
    assert set(first) == {"salesperson", "finance"}
    assert {n["status"] for n in first.values()} == {"sent"}
    assert len(smtp.to("alice.chen@o2c.example")) == len(smtp.to("li.na@brightway.example")) == 1
    assert received(system, tool["secret"]) == []
    system.mounts[HOOKS_URL] = healthy

    # Day 2: the tool is back; the retries bring day 1's events.
    await on_day(system, due, 2)
    day1 = Counter(e["type"] for e in received(system, tool["secret"]))
    assert day1["invoice.overdue"] == 1 and day1["dunning.escalated"] == 1

    # Day 15 (dunning level 2 of the default policy): the key person is added.
    await on_day(system, due, 15)
    assert set(by_role(await notifications(system, level=2))) == {"salesperson", "finance",
                                                                   "key_person"}

    # Day 20: the customer's finance promises half by day 25, and does not pay.
    r = await system.client("ledger", "finance").post(f"/v1/invoices/{invoice['id']}/promises", json={
        "promised_date": (due + timedelta(days=25)).isoformat(), "amount_minor": 92_500,
        "contact_role": "finance"})
    assert r.status_code == 201, r.text
    promise_id = r.json()["id"]
    await on_day(system, due, 25)
    assert (await on_day(system, due, 26))["promises_broken"] == 1
    broken = [e for e in received(system, tool["secret"]) if e["type"] == "promise.broken"]
    assert [e["data"]["promise_id"] for e in broken] == [promise_id]

    # Day 30: escalation — the general manager gets the letter, credit holds the customer.
    await on_day(system, due, 30)
    thirty = by_role(await notifications(system, level=3))
    assert "general_manager" in thirty
    assert smtp.to("wang.wei@brightway.example")
    profile = (await system.client("credit", "credit_manager").get(
        f"/v1/customers/{customer_id}/credit")).json()
    assert profile["status"] == "on_hold"
    assert profile["max_days_overdue"] == 30
    new_order = await flows.create_order(
        system, customer_id, delivery_date=(due + timedelta(days=60)).isoformat())
    r = await flows.submit(system, new_order["id"])
    assert r.status_code == 200, r.text
    assert r.json()["credit"]["status"] == "rejected"
    assert any("credit hold" in reason and invoice["number"] in reason
               for reason in r.json()["credit"]["reasons"]), r.json()["credit"]

    # Day 35: the customer's quality department disputes the goods; escalation pauses.
    r = await system.client("ledger", "finance").post(f"/v1/invoices/{invoice['id']}/disputes", json={
        "reason": "Boards fail the IPC-A-600 class 2 visual check", "contact_role": "barrier"})
    assert r.status_code == 201, r.text
    dispute_id = r.json()["id"]
    await on_day(system, due, 35)
    assert (await on_day(system, due, 61))["crossings_emitted"] == 0
    assert await notifications(system, level=4) == []
    aging = await system.client("ledger", "finance").get("/v1/reports/aging", params={
        "as_of": (due + timedelta(days=61)).isoformat(), "group_by": "customer"})
    assert aging.status_code == 200, aging.text
    [row] = [row for row in aging.json()["rows"] if row["customer_id"] == customer_id]
    assert row["buckets"]["61-90"] == 185_000 and row["disputed_minor"] == 185_000

    # Day 62: after-sales fixed it; the dispute is resolved and the scan catches up: legal.
    r = await system.client("ledger", "finance").post(
        f"/v1/invoices/{invoice['id']}/disputes/{dispute_id}/resolve",
        json={"resolution": "Replacement boards accepted"})
    assert r.status_code == 200, r.text
    await on_day(system, due, 62)
    sixty = by_role(await notifications(system, level=4))
    assert "legal" in sixty and sixty["legal"]["address"] == LEGAL_EMAIL
    assert sixty["legal"]["days_overdue"] == 62

    # Day 63: the customer pays in full; the hold is released and the order closes itself.
    system.clock.advance(days=1)
    r = await system.client("ledger", "finance").post("/v1/payments", json={
        "customer_id": customer_id, "amount_minor": 185_000, "currency": "CNY",
        "method": "bank_transfer", "reference": "BANK-20260509-1"})
    assert r.status_code == 201, r.text
    await settle(system)
    profile = (await system.client("credit", "credit_manager").get(
        f"/v1/customers/{customer_id}/credit")).json()
    assert profile["status"] == "active"
    assert (await system.client("orders", "finance").get(
        f"/v1/orders/{order['id']}")).json()["state"] == "closed"

    # The tool got every step exactly once, signed, in spite of its day off.
    events = received(system, tool["secret"])
    assert len({e["id"] for e in events}) == len(events)
    levels = sorted(e["data"]["level"] for e in events if e["type"] == "invoice.overdue")
    assert levels == [1, 15, 30, 60]
    kinds = Counter(e["type"] for e in events)
    assert kinds["credit.hold_placed"] == kinds["credit.hold_released"] == 1
    assert kinds["invoice.paid"] == 1 and kinds["promise.broken"] == 1

    # Finance can still see who owed what at any past date: 31-60 on day 40, nothing today.
    report = system.client("ledger", "auditor")
    then = (await report.get("/v1/reports/aging", params={
        "as_of": (due + timedelta(days=40)).isoformat()})).json()
    [row] = [row for row in then["rows"] if row["customer_id"] == customer_id]
    assert row["buckets"]["31-60"] == 185_000 and row["total_minor"] == 185_000
    now = (await report.get("/v1/reports/aging")).json()
    assert [row for row in now["rows"] if row["customer_id"] == customer_id] == []
