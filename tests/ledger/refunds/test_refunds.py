"""Refunds through the HTTP API: unapplied cash paid back, four eyes above the approval amount,
reversible once, and never more than the customer has."""

from __future__ import annotations

import asyncio

import pytest

from tests.fixtures.ledger import CUSTOMER, issue


@pytest.fixture
def system_overrides() -> dict[str, dict]:
    return {"ledger": {"refund_approval_above_minor": 5_000}}


async def overpay(system, paid: int = 12_000, invoiced: int = 10_000) -> dict:
    """An invoice of `invoiced` paid with `paid`: the rest is the customer's unapplied cash."""
    await issue(system, amount=invoiced)
    r = await system.client("ledger", "finance").post("/v1/payments", json={
        "customer_id": CUSTOMER, "amount_minor": paid, "currency": "CNY",
        "received_at": "2026-01-05T08:00:00Z", "method": "bank_transfer"})
    assert r.status_code == 201, r.text
    return r.json()


def refund_body(amount: int, **extra) -> dict:
    return {"customer_id": CUSTOMER, "currency": "CNY", "amount_minor": amount,
            "method": "bank_transfer", "reference": "BOC 4411",
            "reason": "Overpayment returned at the customer's request", **extra}


async def unapplied(system) -> int:
    r = await system.client("ledger", "finance").get(f"/v1/customers/{CUSTOMER}/unapplied")
    return {b["currency"]: b["unapplied_minor"] for b in r.json()["balances"]}.get("CNY", 0)


async def event_types(system) -> list[str]:
    from sqlalchemy import select

    state = system.state("ledger")
    async with state.db.session() as session:
        table = state.outbox.table
        return list((await session.execute(select(table.c.type).order_by(table.c.seq))).scalars())


async def test_a_small_refund_is_posted_at_once_and_reversed_once(system):
    await overpay(system)
    finance = system.client("ledger", "finance")
    r = await finance.post("/v1/refunds", json=refund_body(1_500))
    assert r.status_code == 201, r.text
    refund = r.json()
    assert refund["number"] == "RF-000001" and refund["status"] == "posted"
    assert refund["approved_by"] == "finance" and r.headers["etag"] == '"2"'
    je = (await finance.get(f"/v1/journal-entries/{refund['journal_entry_id']}")).json()
    assert je["kind"] == "refund" and je["source_type"] == "refund"
    assert [(ln["account_code"], ln["debit_minor"], ln["credit_minor"], ln["customer_id"])
            for ln in je["lines"]] == [("2100", 1_500, 0, CUSTOMER), ("1000", 0, 1_500, None)]
    assert await unapplied(system) == 500
    check = (await finance.get("/v1/ledger-check")).json()
    assert check["balanced"] is True, check["problems"]
    assert "refund.posted" in await event_types(system)

    # the journal entry is corrected through its document, not the journal
    direct = await finance.post(f"/v1/journal-entries/{je['id']}/reverse", json={"reason": "x"})
    assert direct.status_code == 409 and "/v1/refunds/{id}/reverse" in direct.json()["detail"]

    back = await finance.post(f"/v1/refunds/{refund['id']}/reverse",
                              json={"reason": "Transfer returned by the bank"})
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "reversed" and back.json()["reversal_entry_id"]
    assert await unapplied(system) == 2_000
    again = await finance.post(f"/v1/refunds/{refund['id']}/reverse", json={"reason": "twice"})
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    assert (await finance.get("/v1/ledger-check")).json()["balanced"] is True
    assert "refund.reversed" in await event_types(system)


async def test_above_the_approval_amount_a_second_principal_posts_it(system):
    await overpay(system, paid=20_000)
    finance, finance2 = system.client("ledger", "finance"), system.client("ledger", "finance2")
    r = await finance.post("/v1/refunds", json=refund_body(8_000))
    assert r.status_code == 201 and r.json()["status"] == "proposed", r.text
    refund = r.json()
    assert refund["journal_entry_id"] is None and await unapplied(system) == 10_000
    own = await finance.post(f"/v1/refunds/{refund['id']}/approve")
    assert own.status_code == 409 and own.json()["guard"] == "four_eyes"
    ok = await finance2.post(f"/v1/refunds/{refund['id']}/approve")
    assert ok.status_code == 200, ok.text
    assert (ok.json()["status"], ok.json()["approved_by"]) == ("posted", "finance2")
    assert await unapplied(system) == 2_000
    types = await event_types(system)
    assert types.index("refund.proposed") < types.index("refund.posted")


async def test_a_proposal_is_rejected_or_fails_when_the_cash_was_applied_meanwhile(system):
    await overpay(system, paid=20_000)
    finance, finance2 = system.client("ledger", "finance"), system.client("ledger", "finance2")
    first = (await finance.post("/v1/refunds", json=refund_body(8_000))).json()
    rejected = await finance2.post(f"/v1/refunds/{first['id']}/reject", json={"reason": "No"})
    assert rejected.json()["status"] == "rejected" and rejected.json()["rejection_reason"] == "No"
    late = await finance2.post(f"/v1/refunds/{first['id']}/approve")
    assert late.status_code == 409 and late.json()["allowed"] == []

    second = (await finance.post("/v1/refunds", json=refund_body(8_000))).json()
    await issue(system, amount=7_000)
    applied = await finance.post(f"/v1/customers/{CUSTOMER}/unapplied/allocations",
                                 json={"currency": "CNY"})
    assert applied.status_code in (200, 201), applied.text
    r = await finance2.post(f"/v1/refunds/{second['id']}/approve")
    assert r.status_code == 409 and r.json()["guard"] == "unapplied_covers_amount"
    assert await unapplied(system) == 3_000


async def test_never_more_than_the_unapplied_cash_even_at_once(system):
    await overpay(system)  # 2,000 unapplied
    finance = system.client("ledger", "finance")
    too_much = await finance.post("/v1/refunds", json=refund_body(2_001))
    assert too_much.status_code == 422
    assert too_much.json()["errors"][0]["field"] == "amount_minor"
    future = await finance.post("/v1/refunds", json=refund_body(10, refunded_at="2030-01-01T00:00:00Z"))
    assert future.status_code == 422 and future.json()["errors"][0]["field"] == "refunded_at"
    results = await asyncio.gather(*(finance.post("/v1/refunds", json=refund_body(1_500))
                                     for _ in range(3)))
    assert sorted(r.status_code for r in results) == [201, 422, 422], [r.text for r in results]
    assert await unapplied(system) == 500
    assert (await finance.get("/v1/ledger-check")).json()["balanced"] is True


async def test_a_refunded_payment_is_not_reversed_until_its_refund_is(system):
    payment = await overpay(system)
    finance = system.client("ledger", "finance")
    refund = (await finance.post("/v1/refunds", json=refund_body(1_000))).json()
    r = await finance.post(f"/v1/payments/{payment['id']}/reverse", json={"reason": "bounced"})
    assert r.status_code == 409 and r.json()["guard"] == "not_refunded", r.text
    await finance.post(f"/v1/refunds/{refund['id']}/reverse", json={"reason": "returned"})
    r = await finance.post(f"/v1/payments/{payment['id']}/reverse", json={"reason": "bounced"})
    assert r.status_code == 200, r.text
    assert await unapplied(system) == 0
    assert (await finance.get("/v1/ledger-check")).json()["balanced"] is True


async def test_who_may_refund_and_who_may_read(system):
    await overpay(system)
    for who in ("sales", "alice", "credit_manager", "auditor", "service"):
        r = await system.client("ledger", who).post("/v1/refunds", json=refund_body(100))
        assert r.status_code == 403, (who, r.text)
    made = (await system.client("ledger", "finance").post("/v1/refunds", json=refund_body(100))).json()
    for who in ("auditor", "credit_manager"):
        r = await system.client("ledger", who).get(f"/v1/refunds/{made['id']}")
        assert r.status_code == 200
    listed = (await system.client("ledger", "auditor").get(
        "/v1/refunds", params={"customer_id": CUSTOMER, "status": "posted"})).json()
    assert [i["id"] for i in listed["items"]] == [made["id"]]
    assert (await system.client("ledger", "alice").get("/v1/refunds")).status_code == 403
