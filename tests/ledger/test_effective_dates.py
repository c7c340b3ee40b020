"""Notes and write-offs dated when they count, and credit notes that give paid money back to
unapplied cash: through the HTTP API, checked by the as-of reports and the ledger's check."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.fixtures.ledger import (
    CUSTOMER,
    balanced,
    invoice,
    issue,
    outbox_events,
    pay,
    problem_fields,
    unapplied,
)


async def aged(system, as_of: str) -> int:
    r = await system.client("ledger", "finance").get(
        "/v1/reports/aging", params={"group_by": "customer", "as_of": as_of})
    assert r.status_code == 200, r.text
    return sum(row["total_minor"] for row in r.json()["rows"])


async def post(system, path: str, body: dict, who: str = "finance"):
    return await system.client("ledger", who).post(path, json=body)


class TestBackDated:
    async def test_a_return_booked_in_february_for_january_shows_in_january(self, system):
        inv = await issue(system, amount=10_000)  # 2026-01-05
        system.clock.set(datetime(2026, 2, 10, 9, tzinfo=UTC))
        r = await post(system, "/v1/credit-notes", {
            "invoice_id": inv["id"], "amount_minor": 2_500, "reason": "Return RMA-7",
            "effective_at": "2026-01-31T17:00:00Z"})
        assert r.status_code == 201, r.text
        note = r.json()
        assert note["effective_at"] == "2026-01-31T17:00:00Z"
        assert note["created_at"] == "2026-02-10T09:00:00Z"
        finance = system.client("ledger", "finance")
        je = (await finance.get(f"/v1/journal-entries/{note['journal_entry_id']}")).json()
        assert je["posted_at"] == "2026-01-31T17:00:00Z"  # the journal keeps both dates
        assert je["created_at"] == "2026-02-10T09:00:00Z"
        assert await aged(system, "2026-01-30") == 10_000
        assert await aged(system, "2026-01-31") == 7_500
        tb = (await finance.get("/v1/trial-balance", params={"as_of": "2026-01-31"})).json()
        assert {a["code"]: a["balance_minor"] for a in tb["accounts"]}["4100"] == 2_500
        statement = (await finance.get(f"/v1/customers/{CUSTOMER}/statement",
                                       params={"from": "2026-01-01", "to": "2026-01-31"})).json()
        assert [(ln["document_type"], ln["date"]) for ln in statement["lines"]] == [
            ("invoice", "2026-01-05"), ("credit_note", "2026-01-31")]
        [event] = await outbox_events(system, "credit_note.issued")
        assert event["data"]["effective_at"] == "2026-01-31T17:00:00+00:00"
        await balanced(system)

    async def test_never_in_the_future_nor_before_the_invoice(self, system):
        inv = await issue(system, amount=10_000)
        for when, message in (("2026-03-01T00:00:00Z", "must not be in the future"),
                              ("2026-01-04T23:59:59Z", "must not be before")):
            for path, extra in (("/v1/credit-notes", {}), ("/v1/debit-notes", {"kind": "fee"})):
                r = await post(system, path, {"invoice_id": inv["id"], "amount_minor": 100,
                                              "reason": "x", "effective_at": when, **extra})
                assert r.status_code == 422, r.text
                assert message in problem_fields(r)["effective_at"]
            r = await post(system, "/v1/write-offs", {"invoice_id": inv["id"], "reason": "x",
                                                       "responsible": "S-ALICE", "effective_at": when})
            assert r.status_code == 422 and message in problem_fields(r)["effective_at"]
        assert (await invoice(system, inv["id"]))["outstanding_minor"] == 10_000

    async def test_a_back_dated_debit_note_and_write_off(self, system):
        inv = await issue(system, amount=10_000)
        system.clock.set(datetime(2026, 3, 2, 9, tzinfo=UTC))
        r = await post(system, "/v1/debit-notes", {
            "invoice_id": inv["id"], "amount_minor": 300, "kind": "interest",
            "reason": "Interest for February", "effective_at": "2026-02-28T12:00:00Z"})
        assert r.status_code == 201 and r.json()["effective_at"] == "2026-02-28T12:00:00Z"
        assert await aged(system, "2026-02-27") == 10_000
        assert await aged(system, "2026-02-28") == 10_300
        wo = (await post(system, "/v1/write-offs", {
            "invoice_id": inv["id"], "reason": "Customer insolvent since February",
            "responsible": "S-ALICE", "effective_at": "2026-02-28T18:00:00Z"})).json()
        system.clock.set(datetime(2026, 3, 3, 9, tzinfo=UTC))
        approved = await post(system, f"/v1/write-offs/{wo['id']}/approve", {}, who="finance2")
        assert approved.status_code == 200, approved.text
        body = approved.json()
        assert body["posted_at"] == "2026-02-28T18:00:00Z"
        assert body["approved_at"] == "2026-03-03T09:00:00Z"
        assert await aged(system, "2026-02-28") == 0
        assert await aged(system, "2026-02-27") == 10_000
        await balanced(system)


class TestPaidBackToUnapplied:
    async def test_a_paid_invoice_credited_in_full_gives_the_money_back_to_unapplied(self, system):
        inv = await issue(system, amount=10_000)  # 2026-01-05
        system.clock.set(datetime(2026, 1, 10, 9, tzinfo=UTC))
        payment = await pay(system, 10_000)
        system.clock.set(datetime(2026, 1, 20, 9, tzinfo=UTC))
        body = {"invoice_id": inv["id"], "amount_minor": 10_000, "reason": "Order cancelled"}
        refused = await post(system, "/v1/credit-notes", body)
        assert refused.status_code == 422
        assert "set paid_to_unapplied" in problem_fields(refused)["amount_minor"]
        too_much = await post(system, "/v1/credit-notes", {**body, "amount_minor": 10_001,
                                                           "paid_to_unapplied": True})
        assert too_much.status_code == 422
        assert "10000 outstanding and paid" in problem_fields(too_much)["amount_minor"]

        r = await post(system, "/v1/credit-notes", {**body, "paid_to_unapplied": True})
        assert r.status_code == 201, r.text
        assert r.json()["returned_to_unapplied_minor"] == 10_000
        finance = system.client("ledger", "finance")
        je = (await finance.get(f"/v1/journal-entries/{r.json()['journal_entry_id']}")).json()
        assert [(ln["account_code"], ln["debit_minor"], ln["credit_minor"]) for ln in je["lines"]] \
            == [("4100", 10_000, 0), ("2100", 0, 10_000)]
        got = await invoice(system, inv["id"])
        assert (got["outstanding_minor"], got["paid_minor"], got["credited_minor"]) == (0, 0, 10_000)
        assert await unapplied(system) == 10_000
        view = (await finance.get(f"/v1/payments/{payment['id']}")).json()
        assert [(a["kind"], a["amount_minor"]) for a in view["allocations"]] == [
            ("payment", 10_000), ("returned", -10_000)]
        # as of before the cancel it was paid; as of before the payment it was owed
        assert await aged(system, "2026-01-15") == 0
        assert await aged(system, "2026-01-07") == 10_000
        await balanced(system)

        # now refundable
        refund = await post(system, "/v1/refunds", {
            "customer_id": CUSTOMER, "currency": "CNY", "amount_minor": 10_000,
            "method": "bank_transfer", "reason": "Cancelled order paid back"})
        assert refund.status_code == 201, refund.text
        assert await unapplied(system) == 0
        await balanced(system)

    async def test_a_payment_whose_money_went_back_to_unapplied_reverses_cleanly(self, system):
        inv = await issue(system, amount=10_000)
        await pay(system, 4_000)
        payment = await pay(system, 6_000)
        r = await post(system, "/v1/credit-notes", {
            "invoice_id": inv["id"], "amount_minor": 7_000, "reason": "Allowance",
            "paid_to_unapplied": True})
        assert r.status_code == 201 and r.json()["returned_to_unapplied_minor"] == 7_000, r.text
        assert await unapplied(system) == 7_000  # 6,000 from the newest payment, 1,000 from the first
        reversed_ = await post(system, f"/v1/payments/{payment['id']}/reverse",
                               {"reason": "bounced"})
        assert reversed_.status_code == 200, reversed_.text
        assert await unapplied(system) == 1_000  # the bounced payment's money is gone again
        got = await invoice(system, inv["id"])
        assert (got["outstanding_minor"], got["paid_minor"]) == (0, 3_000)
        await balanced(system)
