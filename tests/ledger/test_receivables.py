"""Receivables reads: order balance, customer statement, exposure, and who may see them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tests.fixtures.ledger import CUSTOMER, OTHER_CUSTOMER, issue, pay


def at(day: str, hour: int = 10) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


class TestOrderBalance:
    async def test_balance_follows_every_document(self, system):
        inv = await issue(system, amount=10_000)
        finance = system.client("ledger", "finance")
        await pay(system, 3_000)
        await finance.post("/v1/credit-notes", json={"invoice_id": inv["id"], "amount_minor": 1_000,
                                                     "reason": "return"})
        await finance.post("/v1/debit-notes", json={"invoice_id": inv["id"], "amount_minor": 200,
                                                    "kind": "fee", "reason": "reminder fee"})
        r = await system.client("ledger", "service").get(f"/v1/orders/{inv['order_id']}/balance")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "order_id": inv["order_id"], "invoice_id": inv["id"], "invoice_number": inv["number"],
            "currency": "CNY", "invoiced_minor": 10_000, "debit_notes_minor": 200,
            "paid_minor": 3_000, "credited_minor": 1_000, "written_off_minor": 0,
            "outstanding_minor": 6_200, "status": "partially_paid"}

    async def test_not_invoiced_and_visibility(self, system):
        inv = await issue(system, amount=1_000)
        assert (await system.client("ledger", "finance").get(
            f"/v1/orders/{uuid.uuid4()}/balance")).status_code == 404
        path = f"/v1/orders/{inv['order_id']}/balance"
        assert (await system.client("ledger", "alice").get(path)).status_code == 200
        hidden = await system.client("ledger", "bob").get(path)
        assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
        for who in ("credit_manager", "auditor", "sales"):
            assert (await system.client("ledger", who).get(path)).status_code == 200, who
        assert (await system.client("ledger", "production").get(path)).status_code == 403


class TestStatement:
    async def _history(self, system):
        """Jan–Feb documents of one customer, each dated by the clock."""
        clock, finance = system.clock, system.client("ledger", "finance")
        clock.set(at("2026-01-05"))
        a = await issue(system, amount=10_000, due_in_days=30)
        clock.set(at("2026-01-10"))
        first = await pay(system, 4_000)
        clock.set(at("2026-01-20"))
        b = await issue(system, amount=5_000, due_in_days=30)
        clock.set(at("2026-02-02"))
        cn = (await finance.post("/v1/credit-notes", json={
            "invoice_id": b["id"], "amount_minor": 1_000, "reason": "return"})).json()
        clock.set(at("2026-02-03"))
        dn = (await finance.post("/v1/debit-notes", json={
            "invoice_id": a["id"], "amount_minor": 100, "kind": "interest", "reason": "late"})).json()
        clock.set(at("2026-02-10"))
        second = await pay(system, 12_000)
        clock.set(at("2026-02-15"))
        assert (await finance.post(f"/v1/payments/{first['id']}/reverse",
                                   json={"reason": "bounced"})).status_code == 200
        clock.set(at("2026-02-16"))
        realloc = (await finance.post(f"/v1/customers/{CUSTOMER}/unapplied/allocations",
                                      json={"currency": "CNY"})).json()
        clock.set(at("2026-03-01"))
        return a, b, cn, dn, first, second, realloc

    async def test_opening_running_and_closing_balance(self, system):
        a, b, cn, dn, first, second, realloc = await self._history(system)
        alice = system.client("ledger", "alice")
        r = await alice.get(f"/v1/customers/{CUSTOMER}/statement",
                            params={"from": "2026-01-15", "to": "2026-02-12"})
        assert r.status_code == 200, r.text
        st = r.json()
        assert (st["customer_id"], st["currency"], st["from"], st["to"]) == (
            CUSTOMER, "CNY", "2026-01-15", "2026-02-12")
        assert st["opening_balance_minor"] == 6_000  # invoice a 10 000 − payment 4 000
        got = [(ln["date"], ln["document_type"], ln["document_id"], ln["number"], ln["debit_minor"],
                ln["credit_minor"], ln["balance_minor"]) for ln in st["lines"]]
        assert got == [
            ("2026-01-20", "invoice", b["id"], b["number"], 5_000, 0, 11_000),
            ("2026-02-02", "credit_note", cn["id"], cn["number"], 0, 1_000, 10_000),
            ("2026-02-03", "debit_note", dn["id"], dn["number"], 100, 0, 10_100),
            ("2026-02-10", "payment", second["id"], second["number"], 0, 10_100, 0),
        ]
        assert st["closing_balance_minor"] == 0
        assert st["unapplied_minor"] == 1_900
        assert all(ln["description"] and ln["journal_entry_number"].startswith("JE-")
                   for ln in st["lines"])

        later = (await alice.get(f"/v1/customers/{CUSTOMER}/statement",
                                 params={"from": "2026-02-13", "to": "2026-02-28"})).json()
        assert later["opening_balance_minor"] == 0
        assert [(ln["document_type"], ln["document_id"], ln["number"], ln["debit_minor"],
                 ln["credit_minor"], ln["balance_minor"]) for ln in later["lines"]] == [
            ("reversal", first["id"], first["number"], 4_000, 0, 4_000),
            ("allocation", realloc["journal_entry_id"], later["lines"][1]["journal_entry_number"],
             0, 1_900, 2_100),
        ]
        assert later["closing_balance_minor"] == 2_100 and later["unapplied_minor"] == 0
        # The closing balance is the receivable in the trial balance.
        tb = (await system.client("ledger", "finance").get(
            "/v1/trial-balance", params={"as_of": "2026-02-28"})).json()
        assert {r["code"]: r for r in tb["accounts"]}["1100"]["balance_minor"] == 2_100

    async def test_defaults_currency_and_bad_ranges(self, system):
        clock = system.clock
        clock.set(at("2026-03-02"))
        await issue(system, amount=700)
        clock.set(at("2026-03-20"))
        finance = system.client("ledger", "finance")
        path = f"/v1/customers/{CUSTOMER}/statement"
        st = (await finance.get(path)).json()
        assert (st["from"], st["to"]) == ("2026-03-01", "2026-03-20")
        assert st["closing_balance_minor"] == 700 and len(st["lines"]) == 1
        await issue(system, amount=50, currency="USD")
        several = await finance.get(path)
        assert several.status_code == 422 and "CNY, USD" in several.json()["detail"]
        usd = (await finance.get(path, params={"currency": "USD"})).json()
        assert usd["closing_balance_minor"] == 50
        backwards = await finance.get(path, params={"from": "2026-03-10", "to": "2026-03-01"})
        assert backwards.status_code == 422
        unknown = await finance.get(f"/v1/customers/{uuid.uuid4()}/statement")
        assert unknown.status_code == 404

    async def test_visibility(self, system):
        await issue(system, amount=700)
        await issue(system, amount=900, customer=OTHER_CUSTOMER, salesperson="S-BOB")
        path = f"/v1/customers/{CUSTOMER}/statement"
        assert (await system.client("ledger", "alice").get(path)).status_code == 200
        assert (await system.client("ledger", "bob").get(path)).status_code == 404
        assert (await system.client("ledger", "bob").get(
            f"/v1/customers/{OTHER_CUSTOMER}/statement")).status_code == 200
        assert (await system.client("ledger", "auditor").get(path)).status_code == 200
        assert (await system.client("ledger", "production").get(path)).status_code == 403
        for sub in ("exposure", "unapplied"):
            assert (await system.client("ledger", "bob").get(
                f"/v1/customers/{CUSTOMER}/{sub}")).status_code == 404, sub
            assert (await system.client("ledger", "alice").get(
                f"/v1/customers/{CUSTOMER}/{sub}")).status_code == 200, sub


class TestExposure:
    async def test_open_overdue_and_payment_history(self, system):
        clock = system.clock
        clock.set(at("2026-01-01"))
        on_time = await issue(system, amount=1_000, due_in_days=10)  # due Jan 11
        late = await issue(system, amount=2_000, due_in_days=10)
        a_bit_late = await issue(system, amount=3_000, due_in_days=10)
        overdue = await issue(system, amount=4_000, due_in_days=20)  # due Jan 21
        current = await issue(system, amount=5_000, due_in_days=60)  # due Mar 2
        clock.set(at("2026-01-06"))
        await pay(system, 1_000, allocations=[{"invoice_id": on_time["id"], "amount_minor": 1_000}])
        clock.set(at("2026-01-15"))
        await pay(system, 3_000, allocations=[{"invoice_id": a_bit_late["id"], "amount_minor": 3_000}])
        clock.set(at("2026-01-26"))
        await pay(system, 2_000, allocations=[{"invoice_id": late["id"], "amount_minor": 2_000}])
        await pay(system, 1_500, allocations=[{"invoice_id": overdue["id"], "amount_minor": 1_000}])
        clock.set(at("2026-02-10"))
        r = await system.client("ledger", "service").get(f"/v1/customers/{CUSTOMER}/exposure")
        assert r.status_code == 200, r.text
        assert r.json() == {
            "customer_id": CUSTOMER, "currency": "CNY", "as_of": "2026-02-10",
            "open_receivables_minor": 3_000 + 5_000, "overdue_minor": 3_000,
            "max_days_overdue": 20, "invoices_open": 2, "invoices_paid_on_time": 1,
            "invoices_paid_late": 2, "avg_days_late": 9.5, "unapplied_minor": 500}
        assert current["status"] == "open"

    async def test_days_late_count_utc_days(self, system):
        """Paid at 23:30 UTC on the due date is on time; 00:30 UTC the next day is one day late
        (the aggregate runs in SQL on both databases, whatever the server's time zone)."""
        system.clock.set(at("2026-01-01"))
        on_time = await issue(system, amount=1_000, due_in_days=10)  # due Jan 11
        late = await issue(system, amount=2_000, due_in_days=10)
        system.clock.set(at("2026-01-11", hour=23).replace(minute=30))
        await pay(system, 1_000, allocations=[{"invoice_id": on_time["id"], "amount_minor": 1_000}])
        system.clock.set(at("2026-01-12", hour=0).replace(minute=30))
        await pay(system, 2_000, allocations=[{"invoice_id": late["id"], "amount_minor": 2_000}])
        got = (await system.client("ledger", "service").get(
            f"/v1/customers/{CUSTOMER}/exposure")).json()
        assert (got["invoices_paid_on_time"], got["invoices_paid_late"], got["avg_days_late"],
                got["invoices_open"], got["max_days_overdue"]) == (1, 1, 1.0, 0, 0)

    async def test_a_credited_invoice_is_not_payment_history(self, system):
        inv = await issue(system, amount=1_000, due_in_days=0)
        system.clock.advance(days=5)
        await system.client("ledger", "finance").post("/v1/credit-notes", json={
            "invoice_id": inv["id"], "amount_minor": 1_000, "reason": "full return"})
        got = (await system.client("ledger", "credit_manager").get(
            f"/v1/customers/{CUSTOMER}/exposure")).json()
        assert (got["invoices_paid_on_time"], got["invoices_paid_late"], got["avg_days_late"]) == (
            0, 0, None)
        assert got["open_receivables_minor"] == 0

    async def test_currency_and_unknown_customer(self, system):
        finance = system.client("ledger", "finance")
        assert (await finance.get(f"/v1/customers/{uuid.uuid4()}/exposure")).status_code == 404
        await issue(system, amount=1_000)
        await pay(system, 30, currency="USD", customer=CUSTOMER, allocations=[])
        several = await finance.get(f"/v1/customers/{CUSTOMER}/exposure")
        assert several.status_code == 422 and several.json()["errors"][0]["field"] == "query.currency"
        usd = (await finance.get(f"/v1/customers/{CUSTOMER}/exposure",
                                 params={"currency": "USD"})).json()
        assert (usd["open_receivables_minor"], usd["unapplied_minor"]) == (0, 30)
        assert usd["as_of"] == system.clock.today().isoformat()
