"""Payments through the HTTP API: allocation, unapplied cash, reversal, concurrency, roles."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from tests.fixtures.ledger import (
    CUSTOMER,
    OTHER_CUSTOMER,
    balanced,
    invoice,
    issue,
    outbox_events,
    pay,
    problem_fields,
    unapplied,
)


def lines_of(entry: dict) -> list[tuple]:
    return [(ln["account_code"], ln["debit_minor"], ln["credit_minor"], ln["customer_id"])
            for ln in entry["lines"]]


async def entry(system, entry_id: str) -> dict:
    r = await system.client("ledger", "finance").get(f"/v1/journal-entries/{entry_id}")
    assert r.status_code == 200, r.text
    return r.json()


async def entry_count(system) -> int:
    page = (await system.client("ledger", "finance").get("/v1/journal-entries",
                                                         params={"limit": 200})).json()
    return len(page["items"])


class TestAllocation:
    async def test_without_allocations_the_oldest_due_is_paid_first(self, system):
        late = await issue(system, amount=3_000, due_in_days=60)
        early = await issue(system, amount=5_000, due_in_days=10)
        middle = await issue(system, amount=4_000, due_in_days=30)
        payment = await pay(system, 7_000)
        assert payment["number"] == "PAY-000001" and payment["status"] == "posted"
        assert [(a["invoice_id"], a["amount_minor"], a["kind"]) for a in payment["allocations"]] == [
            (early["id"], 5_000, "payment"), (middle["id"], 2_000, "payment")]
        assert payment["allocations"][0]["invoice_number"] == early["number"]
        assert (payment["allocated_minor"], payment["unapplied_minor"]) == (7_000, 0)

        got = {i["id"]: await invoice(system, i["id"]) for i in (early, middle, late)}
        assert (got[early["id"]]["status"], got[early["id"]]["outstanding_minor"]) == ("paid", 0)
        assert got[early["id"]]["paid_at"] is not None
        assert (got[middle["id"]]["status"], got[middle["id"]]["outstanding_minor"]) == (
            "partially_paid", 2_000)
        assert (got[late["id"]]["status"], got[late["id"]]["outstanding_minor"]) == ("open", 3_000)
        assert got[middle["id"]]["paid_minor"] == 2_000

        je = await entry(system, payment["journal_entry_id"])
        assert je["kind"] == "payment" and je["source_id"] == payment["id"]
        assert lines_of(je) == [("1000", 7_000, 0, None), ("1100", 0, 7_000, CUSTOMER)]
        await balanced(system)

    async def test_explicit_allocations_go_where_they_are_told(self, system):
        a = await issue(system, amount=5_000, due_in_days=10)
        b = await issue(system, amount=4_000, due_in_days=30)
        payment = await pay(system, 3_000, allocations=[{"invoice_id": b["id"], "amount_minor": 2_500}])
        assert [(x["invoice_id"], x["amount_minor"]) for x in payment["allocations"]] == [
            (b["id"], 2_500)]
        assert payment["unapplied_minor"] == 500  # explicit allocations: the rest is unapplied
        assert (await invoice(system, a["id"]))["outstanding_minor"] == 5_000
        assert (await invoice(system, b["id"]))["outstanding_minor"] == 1_500
        assert await unapplied(system) == 500
        je = await entry(system, payment["journal_entry_id"])
        assert lines_of(je) == [("1000", 3_000, 0, None), ("1100", 0, 2_500, CUSTOMER),
                                ("2100", 0, 500, CUSTOMER)]

    async def test_an_empty_allocation_list_keeps_everything_unapplied(self, system):
        await issue(system, amount=5_000)
        payment = await pay(system, 1_000, allocations=[])
        assert payment["allocations"] == [] and payment["unapplied_minor"] == 1_000

    async def test_offset_goods_debit_the_goods_account(self, system):
        inv = await issue(system, amount=8_000)
        payment = await pay(system, 8_000, method="offset_goods")
        je = await entry(system, payment["journal_entry_id"])
        assert lines_of(je) == [("1200", 8_000, 0, None), ("1100", 0, 8_000, CUSTOMER)]
        assert (await invoice(system, inv["id"]))["status"] == "paid"
        account = (await system.client("ledger", "finance").get("/v1/accounts/1200")).json()
        assert account["name"] == "Goods received in offset"

    async def test_events_payment_received_and_invoice_paid(self, system):
        a = await issue(system, amount=1_000, due_in_days=5)
        b = await issue(system, amount=2_000, due_in_days=9)
        payment = await pay(system, 1_500)
        received = await outbox_events(system, "payment.received")
        assert len(received) == 1
        data = received[0]["data"]
        assert received[0]["subject"] == payment["id"] and received[0]["source"] == "ledger"
        assert data["payment_id"] == payment["id"] and data["customer_id"] == CUSTOMER
        assert (data["amount_minor"], data["currency"], data["unapplied_minor"]) == (1_500, "CNY", 0)
        assert [(x["invoice_id"], x["amount_minor"]) for x in data["allocations"]] == [
            (a["id"], 1_000), (b["id"], 500)]
        paid = await outbox_events(system, "invoice.paid")
        assert [e["subject"] for e in paid] == [a["id"]]
        assert paid[0]["data"]["order_id"] == a["order_id"] and paid[0]["data"]["days_late"] == 0
        await pay(system, 1_500)
        assert [e["subject"] for e in await outbox_events(system, "invoice.paid")] == [a["id"], b["id"]]

    async def test_a_back_dated_payment_dates_its_entry_and_paid_at(self, system):
        inv = await issue(system, amount=1_000, due_in_days=0)
        system.clock.advance(days=20)
        received = (system.clock.now() - timedelta(days=19)).isoformat()
        payment = await pay(system, 1_000, received_at=received)
        je = await entry(system, payment["journal_entry_id"])
        assert je["posted_at"][:10] == received[:10]
        assert (await invoice(system, inv["id"]))["paid_at"][:10] == received[:10]


class TestBadPayments:
    async def test_zero_and_negative_amounts_are_refused(self, system):
        for amount in (0, -5):
            r = await system.client("ledger", "finance").post("/v1/payments", json={
                "customer_id": CUSTOMER, "amount_minor": amount, "currency": "CNY",
                "method": "cash"})
            assert r.status_code == 422 and "amount_minor" in problem_fields(r)
        inv = await issue(system)
        r = await system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": CUSTOMER, "amount_minor": 100, "currency": "CNY", "method": "cash",
            "allocations": [{"invoice_id": inv["id"], "amount_minor": 0}]})
        assert r.status_code == 422 and "allocations[0].amount_minor" in problem_fields(r)

    async def test_unknown_method_and_future_date_are_refused(self, system):
        r = await system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": CUSTOMER, "amount_minor": 100, "currency": "CNY", "method": "iou"})
        assert r.status_code == 422 and "method" in problem_fields(r)
        future = (system.clock.now() + timedelta(hours=1)).isoformat()
        r = await pay(system, 100, received_at=future, expect=422)
        assert r["errors"] == [{"field": "received_at", "message": "must not be in the future"}]

    async def test_allocation_above_outstanding_is_refused_and_nothing_is_posted(self, system):
        inv = await issue(system, amount=1_000)
        before = await entry_count(system)
        r = await pay(system, 5_000, allocations=[{"invoice_id": inv["id"], "amount_minor": 1_001}],
                      expect=422)
        assert r["code"] == "validation_failed"
        assert r["errors"] == [{"field": "allocations[0].amount_minor",
                                "message": f"1001 is more than the 1000 outstanding on {inv['number']}"}]
        assert await entry_count(system) == before
        assert (await invoice(system, inv["id"]))["outstanding_minor"] == 1_000
        assert await unapplied(system) == 0
        listed = (await system.client("ledger", "finance").get("/v1/payments")).json()["items"]
        assert listed == []

    async def test_every_bad_allocation_is_reported_at_once(self, system):
        mine = await issue(system, amount=1_000)
        dollars = await issue(system, amount=1_000, currency="USD")
        bobs = await issue(system, amount=1_000, customer=OTHER_CUSTOMER, salesperson="S-BOB")
        missing = str(uuid.uuid4())
        r = await pay(system, 2_000, expect=422, allocations=[
            {"invoice_id": mine["id"], "amount_minor": 600},
            {"invoice_id": dollars["id"], "amount_minor": 100},
            {"invoice_id": bobs["id"], "amount_minor": 100},
            {"invoice_id": missing, "amount_minor": 100},
            {"invoice_id": mine["id"], "amount_minor": 100},
        ])
        fields = {e["field"]: e["message"] for e in r["errors"]}
        assert fields == {
            "allocations[1].invoice_id": f"invoice {dollars['number']} is in USD, not CNY",
            "allocations[2].invoice_id": f"invoice {bobs['number']} belongs to another customer",
            "allocations[3].invoice_id": f"unknown invoice {missing}",
            "allocations[4].invoice_id": "invoice listed twice",
        }

    async def test_allocations_above_the_payment_are_refused(self, system):
        a = await issue(system, amount=1_000)
        b = await issue(system, amount=1_000)
        r = await pay(system, 1_500, expect=422, allocations=[
            {"invoice_id": a["id"], "amount_minor": 1_000},
            {"invoice_id": b["id"], "amount_minor": 600}])
        assert r["errors"] == [{"field": "allocations",
                                "message": "allocations total 1600, more than the payment amount 1500"}]

    async def test_a_payment_in_a_currency_the_customer_is_not_invoiced_in(self, system):
        await issue(system, amount=1_000, currency="USD")
        r = await pay(system, 1_000, currency="CNY", expect=422)
        assert r["errors"][0]["field"] == "currency" and "only in USD" in r["errors"][0]["message"]
        # A customer without invoices may pay ahead: it all stays unapplied.
        ahead = await pay(system, 700, customer="c-new-0001")
        assert ahead["unapplied_minor"] == 700


class TestUnappliedCash:
    async def test_overpayment_is_unapplied_and_later_applied(self, system):
        first = await issue(system, amount=1_000, due_in_days=5)
        payment = await pay(system, 2_500)
        assert (payment["allocated_minor"], payment["unapplied_minor"]) == (1_000, 1_500)
        assert payment["unapplied_remaining_minor"] == 1_500
        assert await unapplied(system) == 1_500
        je = await entry(system, payment["journal_entry_id"])
        assert lines_of(je) == [("1000", 2_500, 0, None), ("1100", 0, 1_000, CUSTOMER),
                                ("2100", 0, 1_500, CUSTOMER)]
        assert (await invoice(system, first["id"]))["status"] == "paid"

        second = await issue(system, amount=1_200, due_in_days=20)
        third = await issue(system, amount=900, due_in_days=10)
        finance = system.client("ledger", "finance")
        too_much = await finance.post(f"/v1/customers/{CUSTOMER}/unapplied/allocations", json={
            "currency": "CNY", "allocations": [{"invoice_id": second["id"], "amount_minor": 1_200},
                                               {"invoice_id": third["id"], "amount_minor": 400}]})
        assert too_much.status_code == 422
        assert problem_fields(too_much) == {
            "allocations": "allocations total 1600, more than the unapplied balance 1500"}

        r = await finance.post(f"/v1/customers/{CUSTOMER}/unapplied/allocations", json={
            "currency": "CNY", "allocations": [{"invoice_id": second["id"], "amount_minor": 1_200}]})
        assert r.status_code == 201, r.text
        applied = r.json()
        assert (applied["allocated_minor"], applied["unapplied_minor"]) == (1_200, 300)
        assert [(a["invoice_id"], a["amount_minor"], a["kind"]) for a in applied["allocations"]] == [
            (second["id"], 1_200, "unapplied")]
        je = await entry(system, applied["journal_entry_id"])
        assert je["kind"] == "allocation"
        assert lines_of(je) == [("2100", 1_200, 0, CUSTOMER), ("1100", 0, 1_200, CUSTOMER)]
        assert (await invoice(system, second["id"]))["status"] == "paid"
        assert await unapplied(system) == 300

        # Without allocations: oldest due first, up to what is unapplied.
        r = await finance.post(f"/v1/customers/{CUSTOMER}/unapplied/allocations",
                               json={"currency": "CNY"})
        assert r.status_code == 201 and r.json()["allocated_minor"] == 300
        assert (await invoice(system, third["id"]))["outstanding_minor"] == 600
        assert await unapplied(system) == 0
        nothing = await finance.post(f"/v1/customers/{CUSTOMER}/unapplied/allocations",
                                     json={"currency": "CNY"})
        assert nothing.status_code == 422 and "no unapplied CNY" in nothing.text

        seen = (await finance.get(f"/v1/payments/{payment['id']}")).json()
        assert seen["unapplied_remaining_minor"] == 0
        assert [(a["invoice_id"], a["amount_minor"], a["kind"]) for a in seen["allocations"]] == [
            (first["id"], 1_000, "payment"), (second["id"], 1_200, "unapplied"),
            (third["id"], 300, "unapplied")]
        assert len(await outbox_events(system, "unapplied_cash.applied")) == 2
        await balanced(system)

    async def test_reallocation_in_another_currency_is_refused(self, system):
        dollars = await issue(system, amount=1_000, currency="USD")
        await pay(system, 500, allocations=[])
        r = await system.client("ledger", "finance").post(
            f"/v1/customers/{CUSTOMER}/unapplied/allocations", json={
                "currency": "CNY", "allocations": [{"invoice_id": dollars["id"], "amount_minor": 100}]})
        assert r.status_code == 422
        assert problem_fields(r) == {
            "allocations[0].invoice_id": f"invoice {dollars['number']} is in USD, not CNY"}
        none_in_usd = await system.client("ledger", "finance").post(
            f"/v1/customers/{CUSTOMER}/unapplied/allocations", json={"currency": "USD"})
        assert none_in_usd.status_code == 422

    async def test_cash_received_before_the_invoice_pays_it_when_issued(self, system):
        """Issue 15 (from ERPNext's payment reconciliation): applying cash received 30 days
        before the invoice set `paid_at` 30 days before the issue."""
        payment = await pay(system, 1_000)
        assert payment["unapplied_minor"] == 1_000
        system.clock.advance(days=30)
        inv = await issue(system, amount=1_000, due_in_days=30)
        r = await system.client("ledger", "finance").post(
            f"/v1/customers/{CUSTOMER}/unapplied/allocations",
            json={"currency": "CNY", "allocations": [{"invoice_id": inv["id"], "amount_minor": 1_000}]})
        assert r.status_code == 201, r.text
        paid = await invoice(system, inv["id"])
        assert paid["status"] == "paid"
        assert paid["paid_at"] == inv["issued_at"]

    async def test_unapplied_per_currency(self, system):
        await pay(system, 500, allocations=[])
        await pay(system, 70, currency="USD", allocations=[])
        got = (await system.client("ledger", "credit_manager").get(
            f"/v1/customers/{CUSTOMER}/unapplied")).json()
        assert got == {"customer_id": CUSTOMER, "balances": [
            {"currency": "CNY", "unapplied_minor": 500}, {"currency": "USD", "unapplied_minor": 70}]}


class TestReversal:
    async def test_a_bounced_payment_restores_invoices_and_unapplied_cash_once(self, system):
        a = await issue(system, amount=1_000, due_in_days=5)
        payment = await pay(system, 1_800)  # 1000 to a, 800 unapplied
        b = await issue(system, amount=500, due_in_days=10)
        finance = system.client("ledger", "finance")
        r = await finance.post(f"/v1/customers/{CUSTOMER}/unapplied/allocations", json={
            "currency": "CNY", "allocations": [{"invoice_id": b["id"], "amount_minor": 500}]})
        assert r.status_code == 201
        assert await unapplied(system) == 300

        r = await finance.post(f"/v1/payments/{payment['id']}/reverse", json={"reason": "bounced"})
        assert r.status_code == 200, r.text
        reversed_ = r.json()
        assert reversed_["status"] == "reversed" and reversed_["reversal_reason"] == "bounced"
        assert reversed_["unapplied_remaining_minor"] == 0
        for inv, amount in ((a, 1_000), (b, 500)):
            got = await invoice(system, inv["id"])
            assert (got["status"], got["outstanding_minor"], got["paid_minor"]) == ("open", amount, 0)
            assert got["paid_at"] is None
        assert await unapplied(system) == 0

        je = await entry(system, reversed_["reversal_entry_id"])
        assert je["kind"] == "reversal" and je["reverses_entry_id"] == payment["journal_entry_id"]
        assert lines_of(je) == [("1000", 0, 1_800, None), ("1100", 1_500, 0, CUSTOMER),
                                ("2100", 300, 0, CUSTOMER)]
        original = await entry(system, payment["journal_entry_id"])
        assert original["reversed_by_entry_id"] == je["id"]

        again = await finance.post(f"/v1/payments/{payment['id']}/reverse", json={"reason": "x"})
        assert again.status_code == 409 and again.json()["code"] == "conflict"
        events = await outbox_events(system, "payment.reversed")
        assert len(events) == 1 and events[0]["data"]["unapplied_reversed_minor"] == 300

        tb = {r["code"]: r for r in (await finance.get("/v1/trial-balance")).json()["accounts"]}
        assert tb["1000"]["balance_minor"] == 0 and tb["2100"]["balance_minor"] == 0
        assert tb["1100"]["balance_minor"] == 1_500
        await balanced(system)

    async def test_a_partly_paid_invoice_goes_back_to_partially_paid(self, system):
        inv = await issue(system, amount=1_000)
        await pay(system, 400)
        second = await pay(system, 600)
        assert (await invoice(system, inv["id"]))["status"] == "paid"
        r = await system.client("ledger", "finance").post(
            f"/v1/payments/{second['id']}/reverse", json={"reason": "cheque bounced"})
        assert r.status_code == 200
        got = await invoice(system, inv["id"])
        assert (got["status"], got["outstanding_minor"]) == ("partially_paid", 600)

    async def test_document_entries_cannot_be_reversed_through_the_journal(self, system):
        inv = await issue(system, amount=1_000)
        payment = await pay(system, 1_000)
        finance = system.client("ledger", "finance")
        for entry_id, hint in ((payment["journal_entry_id"], "/v1/payments/{id}/reverse"),
                               (inv["journal_entry_id"], "credit note")):
            r = await finance.post(f"/v1/journal-entries/{entry_id}/reverse", json={"reason": "no"})
            assert r.status_code == 409 and hint in r.json()["detail"], r.text
        assert (await invoice(system, inv["id"]))["status"] == "paid"

    async def test_unknown_payment(self, system):
        finance = system.client("ledger", "finance")
        missing = str(uuid.uuid4())
        assert (await finance.get(f"/v1/payments/{missing}")).status_code == 404
        r = await finance.post(f"/v1/payments/{missing}/reverse", json={"reason": "x"})
        assert r.status_code == 404


class TestConcurrency:
    async def test_concurrent_payments_of_one_customer_never_over_allocate(self, system):
        invoices = [await issue(system, amount=1_000, due_in_days=d) for d in range(5, 10)]
        finance = system.client("ledger", "finance")
        bodies = [{"customer_id": CUSTOMER, "amount_minor": 700, "currency": "CNY",
                   "method": "bank_transfer", "reference": f"R{i}"} for i in range(10)]
        results = await asyncio.gather(*(finance.post("/v1/payments", json=b) for b in bodies))
        assert [r.status_code for r in results] == [201] * 10, [r.text for r in results]
        allocated = sum(r.json()["allocated_minor"] for r in results)
        assert allocated == 5_000 and await unapplied(system) == 2_000
        for inv in invoices:
            got = await invoice(system, inv["id"])
            assert (got["outstanding_minor"], got["status"], got["paid_minor"]) == (0, "paid", 1_000)
        assert len(await outbox_events(system, "invoice.paid")) == 5
        await balanced(system)

    async def test_concurrent_explicit_allocations_to_one_invoice(self, system):
        inv = await issue(system, amount=1_000)
        finance = system.client("ledger", "finance")
        body = {"customer_id": CUSTOMER, "amount_minor": 600, "currency": "CNY",
                "method": "cash", "allocations": [{"invoice_id": inv["id"], "amount_minor": 600}]}
        results = await asyncio.gather(*(finance.post("/v1/payments", json=body) for _ in range(4)))
        assert sorted(r.status_code for r in results) == [201, 422, 422, 422], [r.text for r in results]
        got = await invoice(system, inv["id"])
        assert (got["outstanding_minor"], got["status"]) == (400, "partially_paid")
        await balanced(system)

    async def test_concurrent_payment_and_credit_note_on_one_invoice(self, system):
        inv = await issue(system, amount=1_000)
        finance = system.client("ledger", "finance")
        pay_all = finance.post("/v1/payments", json={
            "customer_id": CUSTOMER, "amount_minor": 800, "currency": "CNY", "method": "cash",
            "allocations": [{"invoice_id": inv["id"], "amount_minor": 800}]})
        credit = finance.post("/v1/credit-notes", json={
            "invoice_id": inv["id"], "amount_minor": 800, "reason": "return"})
        results = await asyncio.gather(pay_all, credit)
        assert sorted(r.status_code for r in results) == [201, 422], [r.text for r in results]
        assert (await invoice(system, inv["id"]))["outstanding_minor"] == 200
        await balanced(system)


class TestIdempotencyAndReads:
    async def test_a_retried_payment_posts_once(self, system):
        await issue(system, amount=1_000)
        finance = system.client("ledger", "finance")
        body = {"customer_id": CUSTOMER, "amount_minor": 400, "currency": "CNY", "method": "bill"}
        first = await finance.post("/v1/payments", json=body, headers={"Idempotency-Key": "p-1"})
        again = await finance.post("/v1/payments", json=body, headers={"Idempotency-Key": "p-1"})
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true"
        assert again.json()["id"] == first.json()["id"]
        assert len((await finance.get("/v1/payments")).json()["items"]) == 1
        assert await entry_count(system) == 2  # the invoice and one payment

    async def test_list_filters_and_pagination(self, system):
        await issue(system, amount=10_000)
        made = [await pay(system, 100 + i, method="cash" if i % 2 else "bank_transfer")
                for i in range(5)]
        other = await pay(system, 50, customer=OTHER_CUSTOMER, currency="USD")
        reader = system.client("ledger", "auditor")

        async def ids(**params):
            r = await reader.get("/v1/payments", params=params)
            assert r.status_code == 200, r.text
            return [p["id"] for p in r.json()["items"]]

        assert await ids(customer_id=CUSTOMER) == [p["id"] for p in made]
        assert await ids(currency="USD") == [other["id"]]
        assert await ids(method="cash") == [made[1]["id"], made[3]["id"]]
        assert await ids(status="reversed") == []
        today = system.clock.today().isoformat()
        assert len(await ids(received_from=today, received_to=today)) == 6
        seen, cursor = [], None
        while True:
            page = (await reader.get("/v1/payments", params={"limit": 2} | (
                {"cursor": cursor} if cursor else {}))).json()
            seen += [p["id"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [p["id"] for p in made] + [other["id"]]
        one = await reader.get(f"/v1/payments/{made[0]['id']}")
        assert one.status_code == 200 and one.headers["etag"] == '"1"'

    async def test_roles(self, system):
        inv = await issue(system, amount=1_000)
        payment = await pay(system, 100)
        body = {"customer_id": CUSTOMER, "amount_minor": 100, "currency": "CNY", "method": "cash"}
        for who in ("auditor", "credit_manager", "alice", "sales", "service"):
            client = system.client("ledger", who)
            assert (await client.post("/v1/payments", json=body)).status_code == 403, who
            assert (await client.post(f"/v1/payments/{payment['id']}/reverse",
                                      json={"reason": "x"})).status_code == 403, who
            assert (await client.post(f"/v1/customers/{CUSTOMER}/unapplied/allocations",
                                      json={"currency": "CNY"})).status_code == 403, who
        assert (await system.client("ledger", "admin").post("/v1/payments", json=body)).status_code == 201
        assert (await system.client("ledger", "alice").get("/v1/payments")).status_code == 403
        assert (await system.client("ledger", "auditor").get("/v1/payments")).status_code == 200
        assert inv["status"] == "open"
