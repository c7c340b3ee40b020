"""Credit notes (returns, allowances) and debit notes (interest, fees) through the HTTP API."""

from __future__ import annotations

import uuid

from tests.fixtures.ledger import (
    CUSTOMER,
    balanced,
    invoice,
    issue,
    outbox_events,
    pay,
    problem_fields,
)


async def credit_note(system, invoice_id: str, amount: int, *, who: str = "finance",
                      reason: str = "Return of 2 units", **headers):
    system.clock.advance(seconds=1)  # lists are in issue order
    return await system.client("ledger", who).post("/v1/credit-notes", headers=headers, json={
        "invoice_id": invoice_id, "amount_minor": amount, "reason": reason})


async def debit_note(system, invoice_id: str, amount: int, *, kind: str = "interest",
                     who: str = "finance"):
    return await system.client("ledger", who).post("/v1/debit-notes", json={
        "invoice_id": invoice_id, "amount_minor": amount, "kind": kind,
        "reason": "Late-payment interest"})


class TestCreditNotes:
    async def test_a_credit_note_reduces_outstanding_and_posts_sales_returns(self, system):
        inv = await issue(system, amount=10_000)
        r = await credit_note(system, inv["id"], 2_500)
        assert r.status_code == 201, r.text
        note = r.json()
        assert note["number"] == "CN-000001" and note["invoice_id"] == inv["id"]
        assert (note["customer_id"], note["currency"], note["amount_minor"]) == (CUSTOMER, "CNY", 2_500)
        assert r.headers["location"] == f"/v1/credit-notes/{note['id']}"
        got = await invoice(system, inv["id"])
        assert (got["outstanding_minor"], got["credited_minor"], got["status"]) == (
            7_500, 2_500, "partially_paid")
        je = (await system.client("ledger", "finance").get(
            f"/v1/journal-entries/{note['journal_entry_id']}")).json()
        assert je["kind"] == "credit_note" and je["source_id"] == note["id"]
        assert [(ln["account_code"], ln["debit_minor"], ln["credit_minor"]) for ln in je["lines"]] == [
            ("4100", 2_500, 0), ("1100", 0, 2_500)]
        events = await outbox_events(system, "credit_note.issued")
        assert len(events) == 1 and events[0]["subject"] == note["id"]
        assert events[0]["data"]["invoice_outstanding_minor"] == 7_500
        assert events[0]["data"]["order_id"] == inv["order_id"]
        await balanced(system)

    async def test_a_credit_note_above_what_is_left_is_refused(self, system):
        inv = await issue(system, amount=10_000)
        await pay(system, 6_000)
        r = await credit_note(system, inv["id"], 4_001)
        assert r.status_code == 422 and r.json()["code"] == "validation_failed"
        assert problem_fields(r) == {
            "amount_minor": f"4001 is more than the 4000 still outstanding on {inv['number']} "
                            "(set paid_to_unapplied to credit what was paid as well)"}
        assert (await invoice(system, inv["id"]))["outstanding_minor"] == 4_000
        assert (await system.client("ledger", "finance").get("/v1/credit-notes")).json()["items"] == []

    async def test_a_credit_note_that_closes_the_invoice_marks_it_paid_without_invoice_paid(self, system):
        inv = await issue(system, amount=3_000)
        await pay(system, 1_000)
        r = await credit_note(system, inv["id"], 2_000)
        assert r.status_code == 201
        got = await invoice(system, inv["id"])
        assert (got["status"], got["outstanding_minor"], got["paid_minor"], got["credited_minor"]) == (
            "paid", 0, 1_000, 2_000)
        assert got["paid_at"] is not None
        assert await outbox_events(system, "invoice.paid") == []  # money did not close it
        issued = await outbox_events(system, "credit_note.issued")
        assert issued[0]["data"]["invoice_status"] == "paid"
        balance = (await system.client("ledger", "service").get(
            f"/v1/orders/{inv['order_id']}/balance")).json()
        assert balance["outstanding_minor"] == 0

    async def test_bad_credit_notes(self, system):
        missing = str(uuid.uuid4())
        r = await credit_note(system, missing, 100)
        assert r.status_code == 422
        assert problem_fields(r) == {"invoice_id": f"unknown invoice {missing}"}
        inv = await issue(system, amount=1_000)
        for amount in (0, -1):
            r = await credit_note(system, inv["id"], amount)
            assert r.status_code == 422 and "amount_minor" in problem_fields(r)
        r = await system.client("ledger", "finance").post("/v1/credit-notes", json={
            "invoice_id": inv["id"], "amount_minor": 10})
        assert r.status_code == 422 and "reason" in problem_fields(r)

    async def test_orders_retry_a_return_with_its_idempotency_key(self, system):
        inv = await issue(system, amount=1_000)
        first = await credit_note(system, inv["id"], 300, who="service",
                                  **{"Idempotency-Key": "return-1"})
        again = await credit_note(system, inv["id"], 300, who="service",
                                  **{"Idempotency-Key": "return-1"})
        assert first.status_code == again.status_code == 201
        assert again.json()["id"] == first.json()["id"]
        assert (await invoice(system, inv["id"]))["outstanding_minor"] == 700

    async def test_roles_and_reads(self, system):
        inv = await issue(system, amount=1_000)
        for who in ("auditor", "alice", "credit_manager"):
            assert (await credit_note(system, inv["id"], 10, who=who)).status_code == 403, who
            assert (await debit_note(system, inv["id"], 10, who=who)).status_code == 403, who
        made = [(await credit_note(system, inv["id"], 100 + i)).json() for i in range(3)]
        other = await issue(system, amount=1_000)
        last = (await credit_note(system, other["id"], 5)).json()
        reader = system.client("ledger", "auditor")
        listed = (await reader.get("/v1/credit-notes", params={"invoice_id": inv["id"]})).json()
        assert [n["id"] for n in listed["items"]] == [n["id"] for n in made]
        page = (await reader.get("/v1/credit-notes", params={"limit": 3})).json()
        rest = (await reader.get("/v1/credit-notes", params={"cursor": page["next_cursor"]})).json()
        assert [n["id"] for n in rest["items"]] == [last["id"]]
        assert (await reader.get(f"/v1/credit-notes/{last['id']}")).json()["amount_minor"] == 5
        assert (await reader.get(f"/v1/credit-notes/{uuid.uuid4()}")).status_code == 404


class TestDebitNotes:
    async def test_a_debit_note_raises_what_is_owed(self, system):
        inv = await issue(system, amount=10_000)
        r = await debit_note(system, inv["id"], 150, kind="interest")
        assert r.status_code == 201, r.text
        note = r.json()
        assert note["number"] == "DN-000001" and note["kind"] == "interest"
        got = await invoice(system, inv["id"])
        assert (got["amount_minor"], got["debit_notes_minor"], got["outstanding_minor"], got["status"]) == (
            10_000, 150, 10_150, "open")
        je = (await system.client("ledger", "finance").get(
            f"/v1/journal-entries/{note['journal_entry_id']}")).json()
        assert [(ln["account_code"], ln["debit_minor"], ln["credit_minor"]) for ln in je["lines"]] == [
            ("1100", 150, 0), ("4200", 0, 150)]
        assert len(await outbox_events(system, "debit_note.issued")) == 1
        # The order can still be re-invoiced idempotently with its original terms.
        again = await system.client("ledger", "service").post("/v1/invoices", json={
            "order_id": inv["order_id"], "customer_id": CUSTOMER, "salesperson_id": "S-ALICE",
            "currency": "CNY", "amount_minor": 10_000, "due_date": inv["due_date"]})
        assert again.status_code == 200
        await balanced(system)

    async def test_a_fee_on_a_paid_invoice_reopens_it(self, system):
        inv = await issue(system, amount=1_000)
        await pay(system, 1_000)
        assert (await invoice(system, inv["id"]))["status"] == "paid"
        r = await debit_note(system, inv["id"], 50, kind="fee")
        assert r.status_code == 201
        got = await invoice(system, inv["id"])
        assert (got["status"], got["outstanding_minor"], got["paid_at"]) == ("partially_paid", 50, None)
        await pay(system, 50)
        got = await invoice(system, inv["id"])
        assert (got["status"], got["outstanding_minor"], got["paid_minor"]) == ("paid", 0, 1_050)
        # A credit note may now take back at most what is left (nothing).
        assert (await credit_note(system, inv["id"], 1)).status_code == 422

    async def test_bad_debit_notes(self, system):
        inv = await issue(system, amount=1_000)
        r = await system.client("ledger", "finance").post("/v1/debit-notes", json={
            "invoice_id": inv["id"], "amount_minor": 10, "kind": "penalty", "reason": "x"})
        assert r.status_code == 422 and "kind" in problem_fields(r)
        assert (await debit_note(system, inv["id"], 0)).status_code == 422
        missing = str(uuid.uuid4())
        r = await debit_note(system, missing, 10)
        assert r.status_code == 422 and problem_fields(r) == {"invoice_id": f"unknown invoice {missing}"}
        ok = await debit_note(system, inv["id"], 10, who="service")
        assert ok.status_code == 201
        listed = (await system.client("ledger", "credit_manager").get(
            "/v1/debit-notes", params={"customer_id": CUSTOMER})).json()["items"]
        assert [n["id"] for n in listed] == [ok.json()["id"]]
        assert (await system.client("ledger", "auditor").get(
            f"/v1/debit-notes/{ok.json()['id']}")).json()["kind"] == "interest"
