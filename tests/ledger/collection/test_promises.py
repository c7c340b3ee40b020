"""Promises to pay: recorded on an invoice, kept or broken by the overdue scan on the right day."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fixtures.ledger import CUSTOMER, OTHER_CUSTOMER, issue, outbox_events, pay, problem_fields, scan


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


async def promise(system, invoice_id: str, promised_date: str, amount: int, *,
                  who: str = "finance", expect: int = 201, **extra) -> dict:
    r = await system.client("ledger", who).post(f"/v1/invoices/{invoice_id}/promises", json={
        "promised_date": promised_date, "amount_minor": amount, "contact_role": "finance", **extra})
    assert r.status_code == expect, r.text
    system.clock.advance(seconds=1)
    return r.json()


async def promises_of(system, invoice_id: str, who: str = "finance") -> list[dict]:
    r = await system.client("ledger", who).get(f"/v1/invoices/{invoice_id}/promises")
    assert r.status_code == 200, r.text
    return r.json()["items"]


class TestKeptAndBroken:
    async def test_kept_once_the_promised_money_is_paid(self, system):
        clock = system.clock
        inv = await issue(system, amount=10_000, due_in_days=0)  # due 2026-01-05
        clock.set(at("2026-01-06"))
        p = await promise(system, inv["id"], "2026-01-20", 6_000, note="Ms Wang, by letter")
        assert (p["status"], p["paid_since_minor"], p["currency"], p["created_by"]) == (
            "open", 0, "CNY", "finance")
        assert (p["invoice_number"], p["customer_id"], p["contact_role"]) == (
            inv["number"], CUSTOMER, "finance")
        clock.set(at("2026-01-10"))
        await pay(system, 3_000)
        assert (await scan(system))["promises_kept"] == 0
        [shown] = await promises_of(system, inv["id"])
        assert (shown["status"], shown["paid_since_minor"]) == ("open", 3_000)
        clock.set(at("2026-01-15"))
        await pay(system, 3_000)
        done = await scan(system)
        assert (done["promises_kept"], done["promises_broken"]) == (1, 0)
        [kept] = await promises_of(system, inv["id"])
        assert (kept["status"], kept["paid_since_minor"], kept["resolved_as_of"]) == (
            "kept", 6_000, "2026-01-15")
        clock.set(at("2026-01-25"))
        assert (await scan(system))["promises_broken"] == 0
        assert await outbox_events(system, "promise.broken") == []

    async def test_broken_the_day_after_the_promised_date(self, system):
        clock = system.clock
        inv = await issue(system, amount=10_000, due_in_days=0, customer=OTHER_CUSTOMER,
                          salesperson="S-BOB")
        clock.set(at("2026-01-06"))
        p = await promise(system, inv["id"], "2026-01-20", 5_000)
        clock.set(at("2026-01-12"))
        await pay(system, 1_000, customer=OTHER_CUSTOMER)
        clock.set(at("2026-01-20"))
        assert (await scan(system))["promises_broken"] == 0  # the promised day itself: still open
        clock.set(at("2026-01-21"))
        done = await scan(system)
        assert (done["promises_broken"], done["promises_kept"]) == (1, 0)
        [event] = await outbox_events(system, "promise.broken")
        assert (event["subject"], event["source"]) == (p["id"], "ledger")
        assert event["data"] == {
            "promise_id": p["id"], "invoice_id": inv["id"], "invoice_number": inv["number"],
            "customer_id": OTHER_CUSTOMER, "salesperson_id": "S-BOB",
            "promised_date": "2026-01-20", "amount_minor": 5_000, "paid_since_minor": 1_000,
            "currency": "CNY"}
        [broken] = await promises_of(system, inv["id"])
        assert (broken["status"], broken["resolved_as_of"]) == ("broken", "2026-01-21")
        clock.set(at("2026-01-22"))
        await pay(system, 9_000, customer=OTHER_CUSTOMER)  # too late: stays broken
        await scan(system)
        assert len(await outbox_events(system, "promise.broken")) == 1
        assert (await promises_of(system, inv["id"]))[0]["status"] == "broken"
        await system.pump()
        r = await system.client("notifier", "admin").get("/v1/events", params={"type": "promise.broken"})
        assert [e["id"] for e in r.json()["items"]] == [event["id"]]
        assert r.json()["items"][0]["data"]["promise_id"] == p["id"]

    async def test_a_catch_up_scan_counts_only_money_dated_by_its_date(self, system):
        clock = system.clock
        late = await issue(system, amount=10_000, due_in_days=0)
        early = await issue(system, amount=10_000, due_in_days=0)
        clock.set(at("2026-01-06"))
        p_late = await promise(system, late["id"], "2026-01-20", 4_000)
        p_early = await promise(system, early["id"], "2026-01-20", 4_000)
        clock.set(at("2026-01-30"))  # the scanner was down; the bank file is posted now
        await pay(system, 4_000, received_at=at("2026-01-25").isoformat(),
                  allocations=[{"invoice_id": late["id"], "amount_minor": 4_000}])
        await pay(system, 4_000, received_at=at("2026-01-19").isoformat(),
                  allocations=[{"invoice_id": early["id"], "amount_minor": 4_000}])
        done = await scan(system, "2026-01-21")
        assert (done["promises_kept"], done["promises_broken"]) == (1, 1)
        assert (await promises_of(system, late["id"]))[0]["status"] == "broken"
        assert (await promises_of(system, early["id"]))[0]["status"] == "kept"
        [event] = await outbox_events(system, "promise.broken")
        assert event["data"]["promise_id"] == p_late["id"]
        assert p_early["id"] != p_late["id"]

    async def test_a_settling_credit_note_keeps_the_promise(self, system):
        clock = system.clock
        inv = await issue(system, amount=3_000, due_in_days=0)
        clock.set(at("2026-01-06"))
        await promise(system, inv["id"], "2026-01-08", 3_000)
        r = await system.client("ledger", "finance").post("/v1/credit-notes", json={
            "invoice_id": inv["id"], "amount_minor": 3_000, "reason": "goods returned"})
        assert r.status_code == 201, r.text
        clock.set(at("2026-01-12"))
        assert (await scan(system))["promises_kept"] == 1
        [kept] = await promises_of(system, inv["id"])
        assert (kept["status"], kept["paid_since_minor"]) == ("kept", 3_000)

    async def test_reversed_payment_does_not_keep_it(self, system):
        clock, finance = system.clock, system.client("ledger", "finance")
        inv = await issue(system, amount=5_000, due_in_days=0)
        clock.set(at("2026-01-06"))
        await promise(system, inv["id"], "2026-01-10", 5_000)
        paid = await pay(system, 5_000)
        r = await finance.post(f"/v1/payments/{paid['id']}/reverse", json={"reason": "bounced"})
        assert r.status_code == 200, r.text
        clock.set(at("2026-01-11"))
        assert (await scan(system))["promises_broken"] == 1


class TestRecording:
    async def test_bad_promises_are_refused(self, system):
        inv = await issue(system, amount=1_000, due_in_days=10)
        today = system.clock.today().isoformat()
        r = await promise(system, inv["id"], "2026-01-04", 2_000, expect=422)
        assert r["code"] == "validation_failed"
        assert {e["field"] for e in r["errors"]} == {"promised_date", "amount_minor"}
        assert today in {e["field"]: e["message"] for e in r["errors"]}["promised_date"]
        await promise(system, inv["id"], today, 0, expect=422)
        await promise(system, inv["id"], today, 100, contact_role="cfo", expect=422)
        await promise(system, inv["id"], "2026-02-30", 100, expect=422)
        ok = await promise(system, inv["id"], today, 1_000)  # the whole outstanding, due today
        assert ok["status"] == "open"
        await pay(system, 1_000)
        r = await system.client("ledger", "finance").post(f"/v1/invoices/{inv['id']}/promises", json={
            "promised_date": today, "amount_minor": 1, "contact_role": "finance"})
        assert r.status_code == 422 and "invoice" in problem_fields(r)

    async def test_roles_and_row_level_visibility(self, system):
        inv = await issue(system, amount=1_000)  # S-ALICE's
        for who in ("alice", "sales", "auditor", "credit_manager"):
            await promise(system, inv["id"], "2026-02-01", 100, who=who, expect=403)
        await promise(system, inv["id"], "2026-02-01", 100, who="admin")
        assert len(await promises_of(system, inv["id"], "alice")) == 1
        assert len(await promises_of(system, inv["id"], "auditor")) == 1
        hidden = await system.client("ledger", "bob").get(f"/v1/invoices/{inv['id']}/promises")
        assert hidden.status_code == 404
        missing = await system.client("ledger", "finance").post(
            "/v1/invoices/nope/promises",
            json={"promised_date": "2026-02-01", "amount_minor": 1, "contact_role": "user"})
        assert missing.status_code == 404

    async def test_customer_list_newest_first_and_only_own_invoices_for_sales(self, system):
        alices = await issue(system, amount=1_000)
        bobs = await issue(system, amount=2_000, salesperson="S-BOB")  # same customer
        first = await promise(system, alices["id"], "2026-02-01", 100)
        second = await promise(system, bobs["id"], "2026-02-02", 200)
        third = await promise(system, alices["id"], "2026-02-03", 300)
        finance = system.client("ledger", "finance")
        page = (await finance.get(f"/v1/customers/{CUSTOMER}/promises", params={"limit": 2})).json()
        assert [p["id"] for p in page["items"]] == [third["id"], second["id"]]
        rest = (await finance.get(f"/v1/customers/{CUSTOMER}/promises",
                                  params={"cursor": page["next_cursor"]})).json()
        assert [p["id"] for p in rest["items"]] == [first["id"]] and rest["next_cursor"] is None
        assert rest["items"][0]["invoice_number"] == alices["number"]
        mine = (await system.client("ledger", "alice").get(f"/v1/customers/{CUSTOMER}/promises")).json()
        assert [p["id"] for p in mine["items"]] == [third["id"], first["id"]]
        bob = (await system.client("ledger", "bob").get(f"/v1/customers/{CUSTOMER}/promises")).json()
        assert [p["id"] for p in bob["items"]] == [second["id"]]
        other = await system.client("ledger", "bob").get(f"/v1/customers/{OTHER_CUSTOMER}/promises")
        assert other.status_code == 404
        open_only = (await finance.get(f"/v1/customers/{CUSTOMER}/promises",
                                       params={"status": "kept"})).json()
        assert open_only["items"] == []
