"""Write-offs (four eyes) and recoveries through the HTTP API."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.fixtures.ledger import (
    CUSTOMER,
    balanced,
    invoice,
    issue,
    outbox_events,
    pay,
    problem_fields,
)


async def propose(system, invoice_id: str, amount: int | None = None, *, who: str = "finance",
                  responsible: object = ("S-ALICE", "finance.zhang"), expect: int = 201):
    body = {"invoice_id": invoice_id, "reason": "Customer insolvent",
            "responsible": list(responsible) if isinstance(responsible, tuple) else responsible}
    if amount is not None:
        body["amount_minor"] = amount
    r = await system.client("ledger", who).post("/v1/write-offs", json=body)
    assert r.status_code == expect, r.text
    system.clock.advance(seconds=1)
    return r


async def approve(system, write_off_id: str, *, who: str = "finance2"):
    r = await system.client("ledger", who).post(f"/v1/write-offs/{write_off_id}/approve")
    system.clock.advance(seconds=1)
    return r


async def recover(system, write_off_id: str, amount: int, *, who: str = "finance", **extra):
    return await system.client("ledger", who).post(
        f"/v1/write-offs/{write_off_id}/recoveries", json={"amount_minor": amount, **extra})


async def entry_lines(system, entry_id: str) -> list[tuple[str, int, int, str | None]]:
    je = (await system.client("ledger", "auditor").get(f"/v1/journal-entries/{entry_id}")).json()
    return [(ln["account_code"], ln["debit_minor"], ln["credit_minor"], ln["customer_id"])
            for ln in je["lines"]]


class TestPropose:
    async def test_a_proposal_is_recorded_without_posting(self, system):
        inv = await issue(system, amount=10_000)
        await pay(system, 4_000)
        wo = (await propose(system, inv["id"])).json()
        assert wo["status"] == "proposed" and wo["number"] == "WO-000001"
        assert wo["amount_minor"] == 6_000  # the outstanding, by default
        assert (wo["invoice_id"], wo["invoice_number"], wo["customer_id"], wo["currency"]) == (
            inv["id"], inv["number"], CUSTOMER, "CNY")
        assert wo["responsible"] == ["S-ALICE", "finance.zhang"]
        assert wo["proposed_by"] == "finance" and wo["journal_entry_id"] is None
        assert (await invoice(system, inv["id"]))["outstanding_minor"] == 6_000
        events = await outbox_events(system, "writeoff.proposed")
        assert len(events) == 1 and events[0]["subject"] == wo["id"]
        assert events[0]["data"]["amount_minor"] == 6_000
        assert events[0]["data"]["salesperson_id"] == "S-ALICE"

    async def test_one_responsible_name_is_a_list_of_one(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"], 1_000, responsible="S-ALICE")).json()
        assert wo["responsible"] == ["S-ALICE"]

    async def test_more_than_outstanding_is_refused(self, system):
        inv = await issue(system, amount=10_000)
        await pay(system, 4_000)
        r = await propose(system, inv["id"], 6_001, expect=422)
        assert r.json()["code"] == "validation_failed"
        assert problem_fields(r) == {
            "amount_minor": f"6001 is more than the 6000 outstanding on {inv['number']}"}

    async def test_bad_bodies_are_422(self, system):
        inv = await issue(system, amount=10_000)
        r = await propose(system, inv["id"], responsible=[], expect=422)
        assert "responsible" in problem_fields(r)
        r = await propose(system, "no-such-invoice", expect=422)
        assert problem_fields(r) == {"invoice_id": "unknown invoice no-such-invoice"}
        await pay(system, 10_000)
        r = await propose(system, inv["id"], expect=422)
        assert problem_fields(r) == {"invoice_id": f"nothing is outstanding on {inv['number']}"}

    async def test_a_second_open_proposal_on_one_invoice_is_refused(self, system):
        inv = await issue(system, amount=10_000)
        first = (await propose(system, inv["id"], 1_000)).json()
        r = await propose(system, inv["id"], 2_000, expect=409)
        assert r.json()["guard"] == "one_open_proposal" and r.json()["write_off_id"] == first["id"]

    async def test_only_finance_proposes(self, system):
        inv = await issue(system, amount=10_000)
        for who in ("sales", "alice", "auditor", "credit_manager"):
            await propose(system, inv["id"], who=who, expect=403)


class TestApprove:
    async def test_another_finance_principal_approves_and_it_is_posted(self, system):
        inv = await issue(system, amount=10_000)
        await pay(system, 4_000)
        wo = (await propose(system, inv["id"])).json()
        r = await approve(system, wo["id"])
        assert r.status_code == 200, r.text
        got = r.json()
        assert got["status"] == "posted" and got["approved_by"] == "finance2"
        assert got["posted_at"] is not None and r.headers["etag"] == '"2"'
        assert await entry_lines(system, got["journal_entry_id"]) == [
            ("6100", 6_000, 0, None), ("1100", 0, 6_000, CUSTOMER)]
        after = await invoice(system, inv["id"])
        assert (after["status"], after["outstanding_minor"], after["written_off_minor"],
                after["paid_minor"]) == ("written_off", 0, 6_000, 4_000)
        balance = (await system.client("ledger", "service").get(
            f"/v1/orders/{inv['order_id']}/balance")).json()
        assert (balance["written_off_minor"], balance["outstanding_minor"], balance["paid_minor"]) == (
            6_000, 0, 4_000)
        (event,) = await outbox_events(system, "writeoff.approved")
        assert event["subject"] == wo["id"]
        assert {k: event["data"][k] for k in ("invoice_id", "customer_id", "salesperson_id",
                                               "amount_minor", "currency")} == {
            "invoice_id": inv["id"], "customer_id": CUSTOMER, "salesperson_id": "S-ALICE",
            "amount_minor": 6_000, "currency": "CNY"}
        assert event["data"]["invoice_status"] == "written_off"
        posted = await outbox_events(system, "journal_entry.posted")
        assert posted[-1]["data"]["kind"] == "write_off"
        await balanced(system)
        tb = (await system.client("ledger", "auditor").get("/v1/trial-balance")).json()
        by_code = {a["code"]: a["balance_minor"] for a in tb["accounts"]}
        assert by_code["6100"] == 6_000 and by_code["1100"] == 0

    async def test_a_partial_write_off_leaves_the_rest_outstanding(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"], 3_000)).json()
        assert (await approve(system, wo["id"])).status_code == 200
        after = await invoice(system, inv["id"])
        assert (after["status"], after["outstanding_minor"], after["written_off_minor"]) == (
            "partially_paid", 7_000, 3_000)
        await pay(system, 7_000)  # the rest still takes payments
        assert (await invoice(system, inv["id"]))["status"] == "paid"

    async def test_the_proposer_cannot_approve(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"])).json()
        r = await approve(system, wo["id"], who="finance")
        assert r.status_code == 409
        body = r.json()
        assert (body["code"], body["guard"]) == ("guard_failed", "four_eyes")
        assert "another finance principal" in body["reason"]
        assert (await invoice(system, inv["id"]))["outstanding_minor"] == 10_000
        assert await outbox_events(system, "writeoff.approved") == []

    async def test_admin_may_approve_but_sales_and_auditor_may_not(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"])).json()
        for who in ("sales", "alice", "auditor", "credit_manager"):
            assert (await approve(system, wo["id"], who=who)).status_code == 403
        assert (await approve(system, wo["id"], who="admin")).status_code == 200

    async def test_a_payment_after_the_proposal_blocks_the_approval(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"])).json()
        await pay(system, 2_500)
        r = await approve(system, wo["id"])
        assert r.status_code == 409
        body = r.json()
        assert (body["guard"], body["outstanding_minor"]) == ("outstanding_covers_amount", 7_500)
        after = await invoice(system, inv["id"])
        assert (after["outstanding_minor"], after["written_off_minor"]) == (7_500, 0)
        got = (await system.client("ledger", "finance").get(f"/v1/write-offs/{wo['id']}")).json()
        assert got["status"] == "proposed"
        await balanced(system)

    async def test_a_posted_write_off_is_not_approved_twice(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"], 1_000)).json()
        assert (await approve(system, wo["id"])).status_code == 200
        r = await approve(system, wo["id"], who="admin")
        assert r.status_code == 409 and r.json()["code"] == "invalid_transition"
        assert r.json()["state"] == "posted"
        assert (await invoice(system, inv["id"]))["written_off_minor"] == 1_000

    async def test_a_written_off_invoice_takes_no_payment_by_name(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"])).json()
        await approve(system, wo["id"])
        r = await pay(system, 1_000, allocations=[{"invoice_id": inv["id"], "amount_minor": 1_000}],
                      expect=422)
        assert "written off" in str(r)


class TestRaces:
    async def test_a_payment_racing_an_approval_never_drives_outstanding_below_zero(self, system):
        inv = await issue(system, amount=1_000)
        wo = (await propose(system, inv["id"], 800)).json()
        pay_all = system.client("ledger", "finance").post("/v1/payments", json={
            "customer_id": CUSTOMER, "amount_minor": 600, "currency": "CNY", "method": "cash",
            "allocations": [{"invoice_id": inv["id"], "amount_minor": 600}]})
        results = await asyncio.gather(pay_all, approve(system, wo["id"]))
        codes = sorted(r.status_code for r in results)
        got = await invoice(system, inv["id"])
        if codes == [200, 422]:  # the write-off first: only 200 left for the payment
            assert (got["outstanding_minor"], got["written_off_minor"], got["paid_minor"]) == (200, 800, 0)
        else:  # the payment first: the approval finds too little outstanding
            assert codes == [201, 409], [r.text for r in results]
            assert (got["outstanding_minor"], got["written_off_minor"], got["paid_minor"]) == (400, 0, 600)
        await balanced(system)

    async def test_two_approvals_at_once_post_once(self, system):
        inv = await issue(system, amount=1_000)
        wo = (await propose(system, inv["id"])).json()
        results = await asyncio.gather(approve(system, wo["id"]), approve(system, wo["id"], who="admin"))
        assert sorted(r.status_code for r in results) == [200, 409]
        got = await invoice(system, inv["id"])
        assert (got["outstanding_minor"], got["written_off_minor"]) == (0, 1_000)
        assert len(await outbox_events(system, "writeoff.approved")) == 1
        await balanced(system)


class TestReject:
    async def test_a_rejected_proposal_posts_nothing_and_frees_the_invoice(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"])).json()
        r = await system.client("ledger", "finance2").post(
            f"/v1/write-offs/{wo['id']}/reject", json={"reason": "Agency still collecting"})
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["rejection_reason"]) == ("rejected", "Agency still collecting")
        assert (await approve(system, wo["id"])).json()["code"] == "invalid_transition"
        assert (await invoice(system, inv["id"]))["outstanding_minor"] == 10_000
        await propose(system, inv["id"])  # a new proposal is possible again
        assert len(await outbox_events(system, "writeoff.rejected")) == 1


class TestRecoveries:
    async def _written_off(self, system, amount: int = 10_000):
        inv = await issue(system, amount=amount)
        wo = (await propose(system, inv["id"])).json()
        assert (await approve(system, wo["id"])).status_code == 200
        return inv, wo

    async def test_a_recovery_posts_cash_against_bad_debt_recoveries(self, system):
        inv, wo = await self._written_off(system)
        early = await recover(system, wo["id"], 3_000, received_at="2026-01-01T00:00:00Z")
        assert early.status_code == 422  # never before the invoice was issued
        assert f"before {inv['number']} was issued" in early.json()["errors"][0]["message"]
        system.clock.advance(hours=2)
        received = system.clock.now() - timedelta(hours=1)  # back-dated, after the invoice
        r = await recover(system, wo["id"], 3_000, received_at=received.isoformat(),
                          reference="Liquidator dividend")
        assert r.status_code == 201, r.text
        got = r.json()
        assert got["recovered_minor"] == 3_000 and len(got["recoveries"]) == 1
        rec = got["recoveries"][0]
        assert (rec["amount_minor"], rec["reference"]) == (3_000, "Liquidator dividend")
        assert await entry_lines(system, rec["journal_entry_id"]) == [
            ("1000", 3_000, 0, None), ("4300", 0, 3_000, None)]
        je = (await system.client("ledger", "auditor").get(
            f"/v1/journal-entries/{rec['journal_entry_id']}")).json()
        assert je["kind"] == "recovery" and je["posted_at"].startswith(received.date().isoformat())
        (event,) = await outbox_events(system, "writeoff.recovered")
        assert (event["data"]["recovered_amount_minor"], event["data"]["recovered_minor"]) == (3_000, 3_000)
        assert event["data"]["recovery_id"] == rec["id"]
        # the invoice stays written off; the recovery is income, not a payment
        after = await invoice(system, inv["id"])
        assert (after["status"], after["outstanding_minor"]) == ("written_off", 0)
        shown = (await system.client("ledger", "auditor").get(f"/v1/write-offs/{wo['id']}")).json()
        assert [x["amount_minor"] for x in shown["recoveries"]] == [3_000]
        await balanced(system)

    async def test_recoveries_never_exceed_what_was_written_off(self, system):
        _, wo = await self._written_off(system, 10_000)
        assert (await recover(system, wo["id"], 7_000)).status_code == 201
        r = await recover(system, wo["id"], 3_001)
        assert r.status_code == 422
        assert problem_fields(r) == {"amount_minor": "3001 is more than the 3000 written off and "
                                                     f"not yet recovered on {wo['number']}"}
        assert (await recover(system, wo["id"], 3_000)).json()["recovered_minor"] == 10_000

    async def test_no_recovery_before_approval_nor_in_the_future(self, system):
        inv = await issue(system, amount=10_000)
        wo = (await propose(system, inv["id"])).json()
        r = await recover(system, wo["id"], 1_000)
        assert r.status_code == 409 and r.json()["state"] == "proposed"
        await approve(system, wo["id"])
        future = (system.clock.now() + timedelta(days=1)).isoformat()
        r = await recover(system, wo["id"], 1_000, received_at=future)
        assert problem_fields(r) == {"received_at": "must not be in the future"}

    async def test_only_finance_records_recoveries(self, system):
        _, wo = await self._written_off(system)
        for who in ("sales", "auditor", "credit_manager"):
            assert (await recover(system, wo["id"], 100, who=who)).status_code == 403


class TestReading:
    async def test_lists_filter_and_sales_see_only_their_own(self, system):
        a = await issue(system, amount=10_000, salesperson="S-ALICE")
        b = await issue(system, amount=10_000, customer="c-bob-0001", salesperson="S-BOB")
        wa = (await propose(system, a["id"], 1_000)).json()
        wb = (await propose(system, b["id"], 2_000)).json()
        await approve(system, wb["id"])
        finance = system.client("ledger", "auditor")
        ids = lambda r: [w["id"] for w in r.json()["items"]]  # noqa: E731
        assert ids(await finance.get("/v1/write-offs")) == [wa["id"], wb["id"]]
        assert ids(await finance.get("/v1/write-offs", params={"status": "posted"})) == [wb["id"]]
        assert ids(await finance.get("/v1/write-offs", params={"customer_id": "c-bob-0001"})) == [wb["id"]]
        assert ids(await finance.get("/v1/write-offs", params={"invoice_id": a["id"]})) == [wa["id"]]
        page = await finance.get("/v1/write-offs", params={"limit": 1})
        assert ids(page) == [wa["id"]] and page.json()["next_cursor"]
        alice = system.client("ledger", "alice")
        assert ids(await alice.get("/v1/write-offs")) == [wa["id"]]
        assert (await alice.get(f"/v1/write-offs/{wb['id']}")).status_code == 404
        assert (await alice.get(f"/v1/write-offs/{wa['id']}")).status_code == 200
        assert (await finance.get("/v1/write-offs/nope")).status_code == 404


class TestDelivery:
    async def test_a_retried_approval_replays_instead_of_conflicting(self, system):
        inv = await issue(system, amount=1_000)
        wo = (await propose(system, inv["id"])).json()
        finance2 = system.client("ledger", "finance2")
        first = await finance2.post(f"/v1/write-offs/{wo['id']}/approve",
                                    headers={"Idempotency-Key": "approve-1"})
        again = await finance2.post(f"/v1/write-offs/{wo['id']}/approve",
                                    headers={"Idempotency-Key": "approve-1"})
        assert first.status_code == again.status_code == 200
        assert again.headers["idempotent-replayed"] == "true"
        assert (await invoice(system, inv["id"]))["written_off_minor"] == 1_000

    async def test_every_step_reaches_the_notifier(self, system):
        inv = await issue(system, amount=1_000)
        wo = (await propose(system, inv["id"])).json()
        await approve(system, wo["id"])
        assert (await recover(system, wo["id"], 400)).status_code == 201
        await system.pump()
        events = (await system.client("notifier").get("/v1/events")).json()["items"]
        mine = [(e["type"], e["subject"]) for e in events if e["type"].startswith("writeoff.")]
        assert sorted(mine) == sorted([("writeoff.proposed", wo["id"]), ("writeoff.approved", wo["id"]),
                                       ("writeoff.recovered", wo["id"])])


async def test_the_customer_statement_shows_the_write_off_as_a_document(system):
    inv = await issue(system, amount=8_000)
    wo = (await propose(system, inv["id"], 8_000)).json()
    assert (await approve(system, wo["id"])).status_code == 200
    r = await system.client("ledger", "auditor").get(f"/v1/customers/{CUSTOMER}/statement",
                                                     params={"currency": "CNY"})
    assert r.status_code == 200, r.text
    lines = r.json()["lines"]
    assert [(ln["document_type"], ln["document_id"], ln["number"], ln["debit_minor"],
             ln["credit_minor"]) for ln in lines] == [
        ("invoice", inv["id"], inv["number"], 8_000, 0),
        ("write_off", wo["id"], wo["number"], 0, 8_000)]
    assert r.json()["closing_balance_minor"] == 0
