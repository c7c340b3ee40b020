"""Automatic credit holds: real ledger and notifier in-process, events pumped through.

Invoices are issued and paid in ledger; `invoice.overdue` is posted to notifier as ledger's
overdue scan posts it (so each case controls days and levels exactly), delivered to credit's
inbox by `system.pump()`; `TestWithLedgersOverdueScan` runs ledger's real scan
instead. See services/credit/holds.py for the rules under test.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures.credit import new_customer, profile, reserve, set_limit, yuan
from tests.fixtures.credit import outbox_events as credit_outbox
from tests.fixtures.ledger import issue, pay, scan

LEDGER = "http://ledger.test"


async def _customer(system) -> str:
    customer_id = await new_customer(system)
    await set_limit(system, customer_id, yuan(600_000))
    return customer_id


async def _invoice(system, customer_id: str, amount_minor: int = yuan(40_000)) -> dict[str, Any]:
    """An invoice due today: `_overdue(days=n)` moves the clock n days on first."""
    invoice = await issue(system, amount=amount_minor, customer=customer_id, due_in_days=0)
    await system.pump()
    return invoice


async def _overdue(system, invoice: dict[str, Any], days: int, *, level: int | None = None,
                   advance: bool = True, with_number: bool = True) -> dict[str, Any]:
    """Post the `invoice.overdue` ledger's scan emits for `invoice` at `days`, and deliver it."""
    due = date.fromisoformat(invoice["due_date"])
    if advance:
        now = system.clock.today()
        if (now - due).days < days:
            system.clock.advance(timedelta(days=days - (now - due).days))
    event = {
        "id": str(uuid.uuid4()), "type": "invoice.overdue",
        "occurred_at": system.clock.now().isoformat(), "source": "ledger",
        "subject": invoice["id"], "data": {
            "invoice_id": invoice["id"], "order_id": invoice["order_id"],
            "customer_id": invoice["customer_id"], "salesperson_id": invoice["salesperson_id"],
            "days_overdue": days, "level": level if level is not None else days,
            "outstanding_minor": invoice["outstanding_minor"], "currency": invoice["currency"],
            "due_date": invoice["due_date"]}}
    if with_number:
        event["data"]["invoice_number"] = invoice["number"]
    r = await system.client("notifier", "service").post("/v1/events", json=event)
    assert r.status_code == 201, r.text
    await system.pump()
    return event


async def _pay(system, invoice: dict[str, Any], amount_minor: int | None = None) -> None:
    amount = amount_minor or invoice["outstanding_minor"]
    await pay(system, amount, customer=invoice["customer_id"],
              allocations=[{"invoice_id": invoice["id"], "amount_minor": amount}])
    await system.pump()


async def _credit_note(system, invoice: dict[str, Any]) -> None:
    r = await system.client("ledger", "finance").post("/v1/credit-notes", json={
        "invoice_id": invoice["id"], "amount_minor": invoice["outstanding_minor"],
        "reason": "goods returned"})
    assert r.status_code == 201, r.text
    await system.pump()


async def _holds(system, customer_id: str, status: str | None = None) -> list[dict[str, Any]]:
    params = {"status": status} if status else {}
    r = await system.client("credit", "credit_manager").get(
        f"/v1/customers/{customer_id}/holds", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def _events(system, type_: str, customer_id: str) -> list[dict[str, Any]]:
    """Events of `type_` about the customer that reached notifier."""
    r = await system.client("notifier").get("/v1/events", params={"type": type_})
    assert r.status_code == 200, r.text
    return [e for e in r.json()["items"] if e["data"].get("customer_id") == customer_id]


async def _decision(system, customer_id: str, amount_minor: int = yuan(1_000)) -> dict[str, Any]:
    r = await reserve(system, customer_id, amount_minor)
    assert r.status_code == 201, r.text
    return r.json()


async def _credit_hears_nothing(system) -> None:
    """Switch credit's subscription off at notifier: ledger's events no longer reach credit."""
    endpoints = (await system.client("notifier").get("/v1/webhook-endpoints")).json()["items"]
    [credit] = [e for e in endpoints if e["url"] == "http://credit.test/v1/inbox"]
    r = await system.client("notifier").patch(f"/v1/webhook-endpoints/{credit['id']}",
                                              json={"enabled": False})
    assert r.status_code == 200, r.text


class LedgerDown(httpx.AsyncBaseTransport):
    """Ledger does not answer anyone calling through the routing transport (credit)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("ledger is down", request=request)


class TestPlacing:
    async def test_29_days_overdue_is_no_hold(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 29)
        got = await profile(system, customer_id)
        assert got["status"] == "active" and got["holds"] == []
        assert await _holds(system, customer_id) == []
        assert await _events(system, "credit.hold_placed", customer_id) == []
        assert (await _decision(system, customer_id))["decision"] == "reserved"

    async def test_30_days_overdue_holds_the_customer_and_refuses_reservations(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 30)

        got = await profile(system, customer_id)
        reason = f"invoice {invoice['number']} 30 days overdue"
        assert got["status"] == "on_hold"
        [hold] = got["holds"]
        assert hold["kind"] == "automatic" and hold["reason"] == reason
        assert hold["source_ref"] == invoice["id"] and hold["status"] == "active"
        # invoice.overdue refreshed the receivables snapshot too.
        assert got["overdue_minor"] == yuan(40_000) and got["max_days_overdue"] == 30

        [placed] = await _events(system, "credit.hold_placed", customer_id)
        assert placed["source"] == "credit" and placed["subject"] == customer_id
        assert placed["data"]["kind"] == "automatic"
        assert placed["data"]["invoice_id"] == invoice["id"]
        assert placed["data"]["reason"] == reason and placed["data"]["hold_id"] == hold["id"]
        assert placed["data"]["days_overdue"] == 30

        decision = await _decision(system, customer_id)
        assert decision["decision"] == "rejected"
        assert decision["reasons"] == [f"customer on credit hold: {reason}"]

    async def test_a_redelivery_or_a_higher_level_places_no_second_hold(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        event = await _overdue(system, invoice, 31, level=30)
        # notifier delivers the same event again (a retry from the deliveries log) ...
        r = await system.client("notifier").get("/v1/deliveries", params={"event_id": event["id"]})
        delivered = [d for d in r.json()["items"] if d["status"] == "succeeded"]
        assert delivered, r.text
        for delivery in delivered:
            retried = await system.client("notifier").post(f"/v1/deliveries/{delivery['id']}/retry")
            assert retried.status_code == 200, retried.text
        await system.pump()
        # ... the scan reports the same crossing in a new event, then the next level.
        await _overdue(system, invoice, 31, level=30, advance=False)
        await _overdue(system, invoice, 61, level=60)

        holds = await _holds(system, customer_id)
        assert len(holds) == 1 and holds[0]["status"] == "active"
        assert holds[0]["reason"] == f"invoice {invoice['number']} 31 days overdue"
        assert len(await _events(system, "credit.hold_placed", customer_id)) == 1
        assert (await profile(system, customer_id))["max_days_overdue"] == 61

    async def test_overdue_event_arriving_after_payment_holds_nobody(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        system.clock.advance(timedelta(days=30))
        await _pay(system, invoice)
        await _overdue(system, invoice, 30, advance=False)  # delivered late
        assert await _holds(system, customer_id) == []
        assert (await profile(system, customer_id))["status"] == "active"
        assert await _events(system, "credit.hold_placed", customer_id) == []

    async def test_ledger_down_at_placing_fails_closed(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        other = await _invoice(system, customer_id)
        healthy = system.mounts[LEDGER]
        system.mounts[LEDGER] = LedgerDown()
        try:
            await _overdue(system, invoice, 30)
            # without invoice_number in the event, the reason names the invoice by its id
            system.clock.advance(seconds=1)
            await _overdue(system, other, 30, with_number=False)
            first, second = await _holds(system, customer_id, "active")
            assert first["kind"] == "automatic" and first["source_ref"] == invoice["id"]
            assert first["reason"] == f"invoice {invoice['number']} 30 days overdue"
            assert second["reason"] == f"invoice {other['id']} 30 days overdue"
            assert (await profile(system, customer_id))["status"] == "on_hold"
        finally:
            system.mounts[LEDGER] = healthy
        # the first invoice is still outstanding: the recheck keeps its hold
        await _pay(system, other)
        assert await system.state("credit").jobs["hold-recheck"]() == 0
        [kept] = await _holds(system, customer_id, "active")
        assert kept["source_ref"] == invoice["id"]

    async def test_a_customer_credit_does_not_know_is_ignored(self, system):
        invoice = await _invoice(system, "c-not-in-credit")
        await _overdue(system, invoice, 45)
        r = await system.client("notifier").get("/v1/deliveries", params={"status": "pending"})
        assert r.status_code == 200 and r.json()["items"] == []

    async def test_blocked_customer_stays_blocked_with_the_hold_recorded(self, system):
        customer_id = await _customer(system)
        r = await system.client("credit", "credit_manager").put(
            f"/v1/customers/{customer_id}/credit-policy",
            json={"status": "blocked", "reason": "fraud investigation"})
        assert r.status_code == 200, r.text
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 30)
        got = await profile(system, customer_id)
        assert got["status"] == "blocked" and len(got["holds"]) == 1
        await _pay(system, invoice)
        got = await profile(system, customer_id)
        assert got["status"] == "blocked" and got["holds"] == []


class TestReleasing:
    async def test_payment_releases_the_hold(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 30)
        await _pay(system, invoice, yuan(10_000))  # part payment: still held
        assert (await profile(system, customer_id))["status"] == "on_hold"
        assert await _events(system, "credit.hold_released", customer_id) == []

        await _pay(system, invoice, yuan(30_000))
        got = await profile(system, customer_id)
        assert got["status"] == "active" and got["holds"] == []
        [hold] = await _holds(system, customer_id)
        assert hold["status"] == "released" and hold["released_at"] is not None
        [released] = await _events(system, "credit.hold_released", customer_id)
        assert released["data"]["kind"] == "automatic"
        assert released["data"]["invoice_id"] == invoice["id"]
        assert released["data"]["hold_id"] == hold["id"]
        assert released["data"]["released_because"] == f"invoice {invoice['number']} paid"
        assert (await _decision(system, customer_id))["decision"] == "reserved"

    async def test_two_overdue_invoices_release_only_when_both_are_cleared(self, system):
        customer_id = await _customer(system)
        first = await _invoice(system, customer_id, yuan(40_000))
        second = await _invoice(system, customer_id, yuan(25_000))
        await _overdue(system, first, 30)
        system.clock.advance(seconds=1)  # holds list oldest first
        await _overdue(system, second, 30, advance=False)
        assert len(await _holds(system, customer_id, "active")) == 2
        r = await system.client("credit", "auditor").get(
            f"/v1/customers/{customer_id}/holds", params={"kind": "manual"})
        assert r.status_code == 200 and r.json()["items"] == []
        both = await _decision(system, customer_id)
        assert both["decision"] == "rejected"
        assert both["reasons"] == [
            f"customer on credit hold: invoice {first['number']} 30 days overdue; "
            f"invoice {second['number']} 30 days overdue"]

        await _pay(system, first)
        got = await profile(system, customer_id)
        assert got["status"] == "on_hold"
        assert [h["source_ref"] for h in got["holds"]] == [second["id"]]
        assert (await _decision(system, customer_id))["reasons"] == [
            f"customer on credit hold: invoice {second['number']} 30 days overdue"]

        await _credit_note(system, second)  # credited in full
        got = await profile(system, customer_id)
        assert got["status"] == "active" and got["holds"] == []
        released = await _events(system, "credit.hold_released", customer_id)
        assert sorted(e["data"]["invoice_id"] for e in released) == sorted(
            [first["id"], second["id"]])

    async def test_write_off_releases_the_hold(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 95)
        r = await system.client("ledger", "finance").post("/v1/write-offs", json={
            "invoice_id": invoice["id"], "reason": "Customer insolvent",
            "responsible": ["S-ALICE", "finance.zhang"]})
        assert r.status_code == 201, r.text
        await system.pump()
        assert (await profile(system, customer_id))["status"] == "on_hold"  # only proposed
        r = await system.client("ledger", "finance2").post(
            f"/v1/write-offs/{r.json()['id']}/approve")
        assert r.status_code == 200, r.text
        await system.pump()
        got = await profile(system, customer_id)
        assert got["status"] == "active" and got["holds"] == []
        assert got["exposure"]["open_receivables_minor"] == 0 and got["overdue_minor"] == 0
        [released] = await _events(system, "credit.hold_released", customer_id)
        assert released["data"]["released_because"] == f"invoice {invoice['number']} written off"

    async def test_a_reversed_payment_holds_again_at_once(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        young = await _invoice(system, customer_id, yuan(5_000))
        await _overdue(system, invoice, 30)
        payment = await pay(system, yuan(40_000), customer=customer_id, allocations=[
            {"invoice_id": invoice["id"], "amount_minor": yuan(40_000)}])
        await system.pump()
        assert (await profile(system, customer_id))["status"] == "active"

        system.clock.advance(timedelta(days=3))
        r = await system.client("ledger", "finance").post(
            f"/v1/payments/{payment['id']}/reverse", json={"reason": "cheque bounced"})
        assert r.status_code == 200, r.text
        await system.pump()
        got = await profile(system, customer_id)
        assert got["status"] == "on_hold"
        [hold] = got["holds"]
        assert hold["source_ref"] == invoice["id"]
        assert hold["reason"] == f"invoice {invoice['number']} 33 days overdue"
        assert len(await _events(system, "credit.hold_placed", customer_id)) == 2
        assert young["id"] not in [h["source_ref"] for h in await _holds(system, customer_id)]

    async def test_a_reversed_payment_on_a_disputed_invoice_does_not_hold(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 30)
        payment = await pay(system, yuan(40_000), customer=customer_id, allocations=[
            {"invoice_id": invoice["id"], "amount_minor": yuan(40_000)}])
        await system.pump()
        assert (await profile(system, customer_id))["status"] == "active"
        r = await system.client("ledger", "finance").post(
            f"/v1/payments/{payment['id']}/reverse", json={"reason": "paid against the wrong goods"})
        assert r.status_code == 200, r.text
        r = await system.client("ledger", "finance").post(
            f"/v1/invoices/{invoice['id']}/disputes", json={"reason": "short delivery"})
        assert r.status_code == 201, r.text
        await system.pump()  # payment.reversed arrives after the dispute was opened
        got = await profile(system, customer_id)
        assert got["status"] == "active" and got["holds"] == []

    async def test_manual_hold_stays_when_the_automatic_one_is_released(self, system):
        customer_id = await _customer(system)
        manager = system.client("credit", "credit_manager")
        r = await manager.post(f"/v1/customers/{customer_id}/holds",
                               json={"reason": "disputed deliveries under review"})
        assert r.status_code == 201, r.text
        manual = r.json()
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 30)
        assert len((await profile(system, customer_id))["holds"]) == 2

        await _pay(system, invoice)
        assert await system.state("credit").jobs["hold-recheck"]() == 0
        got = await profile(system, customer_id)
        assert got["status"] == "on_hold"
        assert [h["id"] for h in got["holds"]] == [manual["id"]]
        assert (await _decision(system, customer_id))["reasons"] == [
            "customer on credit hold: disputed deliveries under review"]

        r = await manager.delete(f"/v1/customers/{customer_id}/holds/{manual['id']}")
        assert r.status_code == 200, r.text
        assert (await profile(system, customer_id))["status"] == "active"

    async def test_ledger_down_at_recheck_keeps_the_hold_until_it_answers(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 30)
        await pay(system, invoice["outstanding_minor"], customer=customer_id)  # not pumped yet
        healthy = system.mounts[LEDGER]
        system.mounts[LEDGER] = LedgerDown()
        try:
            # ledger's payment events reach credit while it cannot ask ledger: not handled yet ...
            await system.pump()
            r = await system.client("notifier").get("/v1/deliveries", params={"status": "pending"})
            assert {d["event_type"] for d in r.json()["items"]} == {"payment.received",
                                                                     "invoice.paid"}
            assert (await profile(system, customer_id))["status"] == "on_hold"
            # ... and the periodic recheck releases nothing while ledger is down,
            assert await system.state("credit").jobs["hold-recheck"]() == 0
            assert len(await _holds(system, customer_id, "active")) == 1
            # nor does one asked for by a credit manager, who is told why.
            r = await system.client("credit", "credit_manager").post("/v1/hold-rechecks")
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "dependency_unavailable"
            assert len(await _holds(system, customer_id, "active")) == 1
        finally:
            system.mounts[LEDGER] = healthy
        r = await system.client("credit", "sales").post("/v1/hold-rechecks")
        assert r.status_code == 403, r.text
        r = await system.client("credit", "credit_manager").post("/v1/hold-rechecks")
        assert r.status_code == 200 and r.json() == {"released": 1}, r.text
        got = await profile(system, customer_id)
        assert got["status"] == "active" and got["holds"] == []
        # the events delivered again later find nothing more to release
        system.clock.advance(timedelta(hours=1))
        await system.pump()
        assert len(await _events(system, "credit.hold_released", customer_id)) == 1
        r = await system.client("notifier").get("/v1/deliveries", params={"status": "pending"})
        assert r.json()["items"] == []

    async def test_a_lost_payment_event_is_caught_by_the_periodic_recheck(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 30)
        await _credit_hears_nothing(system)
        await _pay(system, invoice)
        assert (await profile(system, customer_id))["status"] == "on_hold"
        assert await system.state("credit").jobs["hold-recheck"]() == 1
        assert (await profile(system, customer_id))["status"] == "active"
        assert await system.state("credit").jobs["hold-recheck"]() == 0


class TestSetting:
    @pytest.fixture
    def system_overrides(self) -> dict[str, dict]:
        return {"credit": {"credit_hold_days_overdue": 60}}

    async def test_with_60_days_set_30_days_overdue_is_no_hold(self, system):
        assert system.state("credit").settings.credit_hold_days_overdue == 60
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        await _overdue(system, invoice, 30)
        assert await _holds(system, customer_id) == []
        await _overdue(system, invoice, 60)
        [hold] = await _holds(system, customer_id, "active")
        assert hold["reason"] == f"invoice {invoice['number']} 60 days overdue"


def test_the_setting_reads_its_environment_variable(monkeypatch):
    from services.credit.config import CreditSettings

    assert CreditSettings().credit_hold_days_overdue == 30
    monkeypatch.setenv("O2C_CREDIT_HOLD_DAYS_OVERDUE", "45")
    assert CreditSettings().credit_hold_days_overdue == 45
    monkeypatch.setenv("O2C_CREDIT_HOLD_DAYS_OVERDUE", "0")
    with pytest.raises(ValueError):
        CreditSettings()


def test_the_hold_reason_and_what_counts_as_settled():
    from services.credit.clients import LedgerInvoice
    from services.credit.holds import overdue_reason

    assert overdue_reason("INV-000045", 31) == "invoice INV-000045 31 days overdue"
    assert overdue_reason("INV-000046", 1) == "invoice INV-000046 1 day overdue"

    def invoice(status: str, outstanding: int) -> LedgerInvoice:
        return LedgerInvoice(id="i", number="INV-1", customer_id="c", status=status,
                             outstanding_minor=outstanding)

    assert not invoice("open", 100).settled and not invoice("partially_paid", 1).settled
    assert not invoice("disputed", 100).settled
    assert invoice("paid", 0).settled and invoice("paid", 0).how_settled == "paid"
    assert invoice("written_off", 0).how_settled == "written off"
    assert invoice("open", 0).settled and invoice("open", 0).how_settled == "settled"


class TestConcurrencyAndPaging:
    async def test_two_deliveries_for_one_invoice_at_once_place_one_hold(self, system):
        from services.credit import holds
        from shared.events import Event

        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        system.clock.advance(timedelta(days=61))
        app = system.apps["credit"]

        def event(days: int, level: int) -> Event:
            return Event.model_validate({
                "id": str(uuid.uuid4()), "type": "invoice.overdue",
                "occurred_at": system.clock.now().isoformat(), "source": "ledger",
                "subject": invoice["id"], "data": {
                    "invoice_id": invoice["id"], "invoice_number": invoice["number"],
                    "customer_id": customer_id, "days_overdue": days, "level": level,
                    "currency": "CNY"}})

        async def deliver(e: Event) -> None:  # what the inbox does: ask ledger, then write
            wanted = await holds.overdue_hold(app, e)
            assert wanted is not None
            async with app.state.db.session() as session, session.begin():
                await holds.place(session, app, wanted)

        await asyncio.gather(deliver(event(61, 30)), deliver(event(61, 60)))
        assert len(await _holds(system, customer_id)) == 1
        assert len([e for e in await credit_outbox(system, "credit.hold_placed")
                    if e["data"]["customer_id"] == customer_id]) == 1

    async def test_the_periodic_recheck_pages_through_held_customers(self, system):
        from services.credit import holds

        invoices = []
        for name in ("Alpha", "Beta", "Gamma"):
            customer_id = await new_customer(system, name=name)
            invoices.append(await _invoice(system, customer_id))
        for invoice in invoices:
            await _overdue(system, invoice, 30)
        await _credit_hears_nothing(system)  # two of three pay meanwhile
        for invoice in invoices[:2]:
            await _pay(system, invoice)
        assert await holds.recheck_all(system.apps["credit"], page=1) == 2
        statuses = [(await profile(system, i["customer_id"]))["status"] for i in invoices]
        assert statuses == ["active", "active", "on_hold"]

    async def test_the_periodic_recheck_asks_about_every_hold_of_a_customer(self, system):
        from services.credit import holds

        two = await new_customer(system, name="Two Holds")
        one = await new_customer(system, name="One Hold")
        first, second, other = (await _invoice(system, two), await _invoice(system, two),
                                await _invoice(system, one))
        for invoice in (first, second, other):
            await _overdue(system, invoice, 30)
        await _credit_hears_nothing(system)
        for invoice in (first, second, other):
            await _pay(system, invoice)
        assert await holds.recheck_all(system.apps["credit"], page=1) == 3
        for customer_id in (two, one):
            got = await profile(system, customer_id)
            assert got["status"] == "active" and got["holds"] == []


class TestWithLedgersOverdueScan:
    """Ledger's real overdue scan (`POST /v1/overdue-scans`) drives the holds, day by day."""

    async def test_scan_days_hold_at_30_and_payment_releases(self, system):
        customer_id = await _customer(system)
        first = await _invoice(system, customer_id, yuan(40_000))
        second = await _invoice(system, customer_id, yuan(10_000))
        for _ in range(29):  # a daily scan: levels 1 and 15 cross, no hold
            system.clock.advance(timedelta(days=1))
            await scan(system)
            await system.pump()
        got = await profile(system, customer_id)
        # the figures are as of the last ledger event: level 15's refresh
        assert got["status"] == "active" and got["max_days_overdue"] == 15
        assert got["overdue_minor"] == yuan(50_000)

        system.clock.advance(timedelta(days=1))
        assert (await scan(system))["crossings_emitted"] == 2  # level 30 of each invoice
        await system.pump()
        got = await profile(system, customer_id)
        assert got["status"] == "on_hold"
        assert sorted(h["reason"] for h in got["holds"]) == sorted(
            [f"invoice {first['number']} 30 days overdue",
             f"invoice {second['number']} 30 days overdue"])
        assert (await _decision(system, customer_id))["decision"] == "rejected"

        await _pay(system, first)
        await _pay(system, second)
        system.clock.advance(timedelta(days=30))  # level 60 of nothing: all paid
        assert (await scan(system))["crossings_emitted"] == 0
        await system.pump()
        got = await profile(system, customer_id)
        assert got["status"] == "active" and got["holds"] == []
        assert len(await _events(system, "credit.hold_placed", customer_id)) == 2
        assert len(await _events(system, "credit.hold_released", customer_id)) == 2

    async def test_catching_up_holds_once_at_the_days_of_the_scan(self, system):
        customer_id = await _customer(system)
        invoice = await _invoice(system, customer_id)
        system.clock.advance(timedelta(days=45))
        assert (await scan(system))["crossings_emitted"] == 3  # levels 1, 15, 30 at 45 days
        await system.pump()
        [hold] = await _holds(system, customer_id)
        assert hold["reason"] == f"invoice {invoice['number']} 45 days overdue"
        system.clock.advance(timedelta(days=15))
        await scan(system)  # level 60: still the one hold
        await system.pump()
        assert len(await _holds(system, customer_id)) == 1
