"""Credit's exposure follows ledger: real ledger and notifier in-process, events pumped through.

Credit subscribes (through notifier) to ledger's receivable events and refreshes its
receivables snapshot from ledger's exposure endpoint on each; `invoice.issued` converts the
order's reservation, so the amount moves from reserved to open receivables.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx

from tests.fixtures.credit import new_customer, profile, reserve, set_limit, yuan


async def _customer(system, limit_minor: int = yuan(600_000)) -> str:
    customer_id = await new_customer(system)
    await set_limit(system, customer_id, limit_minor)
    return customer_id


async def _invoice(system, customer_id: str, order_id: str, amount_minor: int, *,
                   due_in_days: int = 30) -> dict[str, Any]:
    due = system.clock.today() + timedelta(days=due_in_days)
    r = await system.client("ledger", "finance").post("/v1/invoices", json={
        "order_id": order_id, "customer_id": customer_id, "salesperson_id": "S-ALICE",
        "currency": "CNY", "amount_minor": amount_minor, "due_date": due.isoformat()})
    assert r.status_code == 201, r.text
    return r.json()


async def _pay(system, customer_id: str, invoice_id: str, amount_minor: int) -> dict[str, Any]:
    r = await system.client("ledger", "finance").post("/v1/payments", json={
        "customer_id": customer_id, "amount_minor": amount_minor, "currency": "CNY",
        "method": "bank_transfer",
        "allocations": [{"invoice_id": invoice_id, "amount_minor": amount_minor}]})
    assert r.status_code == 201, r.text
    return r.json()


async def _credit_note(system, invoice_id: str, amount_minor: int) -> dict[str, Any]:
    r = await system.client("ledger", "finance").post("/v1/credit-notes", json={
        "invoice_id": invoice_id, "amount_minor": amount_minor, "reason": "return of 2 units"})
    assert r.status_code == 201, r.text
    return r.json()


async def _reservation(system, reservation_id: str) -> dict[str, Any]:
    r = await system.client("credit", "service").get(f"/v1/reservations/{reservation_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def _exposure(system, customer_id: str) -> dict[str, int]:
    return (await profile(system, customer_id))["exposure"]


async def _deliveries_to_credit(system, event_type: str) -> list[dict[str, Any]]:
    notifier = system.client("notifier")
    events = (await notifier.get("/v1/events", params={"type": event_type})).json()["items"]
    found = []
    for event in events:
        items = (await notifier.get("/v1/deliveries", params={"event_id": event["id"]})
                 ).json()["items"]
        found += items
    return found


async def test_credit_subscribes_to_ledger_receivable_events(system):
    endpoints = (await system.client("notifier").get("/v1/webhook-endpoints")).json()["items"]
    credit = [e for e in endpoints if e["url"] == "http://credit.test/v1/inbox"]
    assert len(credit) == 1
    assert credit[0]["event_types"] == sorted([
        "credit_note.issued", "debit_note.issued", "invoice.imported", "invoice.issued",
        "payment.received",
        "payment.reversed", "unapplied_cash.applied",
        # automatic credit holds (tests/credit/test_overdue_holds.py)
        "invoice.overdue", "invoice.paid", "writeoff.approved"])


async def test_invoice_moves_reserved_to_open_and_payments_and_notes_bring_it_down(system):
    customer_id = await _customer(system)
    order_id = str(uuid.uuid4())
    reservation = (await reserve(system, customer_id, yuan(100_000), order_id=order_id)).json()
    assert await _exposure(system, customer_id) == {
        "open_receivables_minor": 0, "reserved_minor": yuan(100_000), "guarantees_minor": 0,
        "available_minor": yuan(500_000)}

    invoice = await _invoice(system, customer_id, order_id, yuan(100_000))
    await system.pump()
    assert await _exposure(system, customer_id) == {
        "open_receivables_minor": yuan(100_000), "reserved_minor": 0, "guarantees_minor": 0,
        "available_minor": yuan(500_000)}
    converted = await _reservation(system, reservation["id"])
    assert converted["status"] == "converted" and converted["invoice_id"] == invoice["id"]

    await _pay(system, customer_id, invoice["id"], yuan(30_000))
    await system.pump()
    exposure = await _exposure(system, customer_id)
    assert exposure["open_receivables_minor"] == yuan(70_000)
    assert exposure["reserved_minor"] == 0 and exposure["available_minor"] == yuan(530_000)

    await _credit_note(system, invoice["id"], yuan(20_000))
    await system.pump()
    exposure = await _exposure(system, customer_id)
    assert exposure["open_receivables_minor"] == yuan(50_000)
    assert exposure["available_minor"] == yuan(550_000)

    # A redelivery of invoice.issued is acknowledged and changes nothing.
    [delivery] = await _deliveries_to_credit(system, "invoice.issued")
    retried = await system.client("notifier").post(f"/v1/deliveries/{delivery['id']}/retry")
    assert retried.status_code == 200, retried.text
    await system.pump()
    assert await _exposure(system, customer_id) == exposure
    assert (await _reservation(system, reservation["id"]))["version"] == converted["version"]

    # A new order reserved now draws on what payments and notes freed.
    more = await reserve(system, customer_id, yuan(550_000))
    assert more.status_code == 201 and more.json()["decision"] == "reserved", more.text


async def test_invoice_for_less_than_reserved_releases_the_rest(system):
    customer_id = await _customer(system)
    order_id = str(uuid.uuid4())
    reservation = (await reserve(system, customer_id, yuan(100_000), order_id=order_id)).json()
    await _invoice(system, customer_id, order_id, yuan(90_000))
    await system.pump()
    assert await _exposure(system, customer_id) == {
        "open_receivables_minor": yuan(90_000), "reserved_minor": 0, "guarantees_minor": 0,
        "available_minor": yuan(510_000)}
    assert (await _reservation(system, reservation["id"]))["amount_minor"] == yuan(90_000)


async def test_invoices_without_reservation_debit_notes_and_overdue_come_from_ledger(system):
    customer_id = await _customer(system)
    overdue = await _invoice(system, customer_id, str(uuid.uuid4()), yuan(40_000),
                             due_in_days=0)
    await system.pump()
    got = await profile(system, customer_id)
    assert got["exposure"]["open_receivables_minor"] == yuan(40_000)
    assert got["overdue_minor"] == 0 and got["max_days_overdue"] == 0
    system.clock.advance(timedelta(days=12))
    await _invoice(system, customer_id, str(uuid.uuid4()), yuan(10_000))
    await system.pump()
    got = await profile(system, customer_id)
    assert got["exposure"]["open_receivables_minor"] == yuan(50_000)
    assert got["exposure"]["available_minor"] == yuan(550_000)
    assert got["overdue_minor"] == yuan(40_000) and got["max_days_overdue"] == 12

    r = await system.client("ledger", "finance").post("/v1/debit-notes", json={
        "invoice_id": overdue["id"], "amount_minor": yuan(500), "kind": "interest",
        "reason": "late payment interest"})
    assert r.status_code == 201, r.text
    await system.pump()
    got = await profile(system, customer_id)
    assert got["exposure"]["open_receivables_minor"] == yuan(50_500)
    assert got["overdue_minor"] == yuan(40_500)

    payment = await _pay(system, customer_id, overdue["id"], yuan(40_500))
    await system.pump()
    got = await profile(system, customer_id)
    assert got["exposure"]["open_receivables_minor"] == yuan(10_000)
    assert got["overdue_minor"] == 0 and got["max_days_overdue"] == 0

    r = await system.client("ledger", "finance").post(
        f"/v1/payments/{payment['id']}/reverse", json={"reason": "the cheque bounced"})
    assert r.status_code == 200, r.text
    await system.pump()
    got = await profile(system, customer_id)
    assert got["exposure"]["open_receivables_minor"] == yuan(50_500)
    assert got["overdue_minor"] == yuan(40_500)


def _ledger_down(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("ledger is down", request=request)


async def test_ledger_down_during_delivery_is_retried_and_catches_up(system):
    customer_id = await _customer(system)
    order_id = str(uuid.uuid4())
    reservation = (await reserve(system, customer_id, yuan(100_000), order_id=order_id)).json()
    invoice = await _invoice(system, customer_id, order_id, yuan(100_000))

    ledger = system.mounts["http://ledger.test"]
    await system.state("ledger").relay.dispatch_once()  # the event reaches notifier first
    system.mounts["http://ledger.test"] = httpx.MockTransport(_ledger_down)
    try:
        await system.pump()
        # nothing half-done: not converted, no snapshot, the delivery waits for a retry
        assert await _exposure(system, customer_id) == {
            "open_receivables_minor": 0, "reserved_minor": yuan(100_000), "guarantees_minor": 0,
            "available_minor": yuan(500_000)}
        assert (await _reservation(system, reservation["id"]))["status"] == "active"
        [delivery] = await _deliveries_to_credit(system, "invoice.issued")
        assert delivery["status"] == "pending" and delivery["attempt_count"] == 1
        assert delivery["attempts"][0]["response_status"] == 503
    finally:
        system.mounts["http://ledger.test"] = ledger

    await system.pump()  # not due yet: still waiting
    assert (await _exposure(system, customer_id))["reserved_minor"] == yuan(100_000)

    system.clock.advance(seconds=5)
    await system.pump()
    assert await _exposure(system, customer_id) == {
        "open_receivables_minor": yuan(100_000), "reserved_minor": 0, "guarantees_minor": 0,
        "available_minor": yuan(500_000)}
    got = await _reservation(system, reservation["id"])
    assert got["status"] == "converted" and got["invoice_id"] == invoice["id"]
    [delivery] = await _deliveries_to_credit(system, "invoice.issued")
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 2


async def test_events_out_of_order_end_at_ledgers_figure(system):
    """The payment's event may arrive before the invoice's: each refresh asks ledger for now."""
    customer_id = await _customer(system)
    order_id = str(uuid.uuid4())
    await reserve(system, customer_id, yuan(100_000), order_id=order_id)
    invoice = await _invoice(system, customer_id, order_id, yuan(100_000))
    await _pay(system, customer_id, invoice["id"], yuan(60_000))
    await system.pump()
    assert await _exposure(system, customer_id) == {
        "open_receivables_minor": yuan(40_000), "reserved_minor": 0, "guarantees_minor": 0,
        "available_minor": yuan(560_000)}


async def test_converted_by_hand_before_the_event_is_counted_once(system):
    """Orders converts on settle; until invoice.issued arrives the reservation counts as
    open receivable, after it ledger's figure replaces it — never both, never neither."""
    customer_id = await _customer(system)
    order_id = str(uuid.uuid4())
    reservation = (await reserve(system, customer_id, yuan(100_000), order_id=order_id)).json()
    invoice = await _invoice(system, customer_id, order_id, yuan(100_000))
    r = await system.client("credit", "service").post(
        f"/v1/reservations/{reservation['id']}/convert", json={"invoice_id": invoice["id"]})
    assert r.status_code == 200, r.text
    expected = {"open_receivables_minor": yuan(100_000), "reserved_minor": 0,
                "guarantees_minor": 0, "available_minor": yuan(500_000)}
    assert await _exposure(system, customer_id) == expected  # in transit
    await system.pump()
    assert await _exposure(system, customer_id) == expected  # ledger's figure
    await _pay(system, customer_id, invoice["id"], yuan(100_000))
    await system.pump()
    assert (await _exposure(system, customer_id))["open_receivables_minor"] == 0
