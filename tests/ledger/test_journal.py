"""The journal through the HTTP API: manual entries, reversals, trial balance, ledger check."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

CUSTOMER = "5b1f7c3e-2a64-4d59-9a43-3f0d2f0c9a11"


def entry(amount: int = 100_00, *, memo: str = "Opening bank balance", credit: int | None = None,
          **extra):
    return {"memo": memo, "currency": "CNY", "lines": [
        {"account_code": "1000", "debit_minor": amount, "credit_minor": 0},
        {"account_code": "3000", "debit_minor": 0,
         "credit_minor": amount if credit is None else credit},
    ], **extra}


def problem_fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.json().get("errors", [])}


class TestChartOfAccounts:
    async def test_system_accounts_are_seeded_at_start_up(self, system):
        ledger = system.client("ledger", "finance")
        page = (await ledger.get("/v1/accounts")).json()
        accounts = {a["code"]: a for a in page["items"]}
        assert {"1000", "1100", "2100", "4000", "4100", "4200", "4300", "6100"} <= set(accounts)
        assert accounts["1100"]["requires_customer"] is True
        assert accounts["4100"]["kind"] == "income" and accounts["4100"]["normal_side"] == "debit"
        assert accounts["4000"]["normal_side"] == "credit"
        assert accounts["6100"]["kind"] == "expense"
        assert page["next_cursor"] is None

    async def test_get_one_account_and_unknown_is_404(self, system):
        ledger = system.client("ledger", "auditor")
        assert (await ledger.get("/v1/accounts/2100")).json()["name"] == "Unapplied customer cash"
        missing = await ledger.get("/v1/accounts/9999")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"

    async def test_accounts_paginate_by_code(self, system):
        ledger = system.client("ledger", "finance")
        seen, cursor = [], None
        while True:
            params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
            page = (await ledger.get("/v1/accounts", params=params)).json()
            seen += [a["code"] for a in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 8


class TestManualEntries:
    async def test_balanced_entry_is_posted_and_shows_in_trial_balance(self, system):
        ledger = system.client("ledger", "finance")
        posted = await ledger.post("/v1/journal-entries", json=entry(125_000))
        assert posted.status_code == 201, posted.text
        body = posted.json()
        assert body["number"] == "JE-000001" and body["kind"] == "manual"
        assert body["total_minor"] == 125_000 and body["created_by"] == "finance"
        assert posted.headers["location"] == f"/v1/journal-entries/{body['id']}"
        assert [(ln["account_code"], ln["debit_minor"], ln["credit_minor"])
                for ln in body["lines"]] == [("1000", 125_000, 0), ("3000", 0, 125_000)]

        got = await ledger.get(f"/v1/journal-entries/{body['id']}")
        assert got.status_code == 200 and got.json() == body

        tb = (await ledger.get("/v1/trial-balance")).json()
        rows = {r["code"]: r for r in tb["accounts"]}
        assert rows["1000"]["debit_minor"] == 125_000 and rows["1000"]["balance_minor"] == 125_000
        assert rows["3000"]["credit_minor"] == 125_000 and rows["3000"]["balance_minor"] == 125_000
        assert tb["total_debit_minor"] == tb["total_credit_minor"] == 125_000
        assert tb["as_of"] == system.clock.today().isoformat()

    async def test_unbalanced_entry_is_refused_with_the_sums(self, system):
        ledger = system.client("ledger", "finance")
        r = await ledger.post("/v1/journal-entries", json=entry(100, credit=90))
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "validation_failed"
        assert "debits 100 ≠ credits 90" in r.json()["detail"]
        assert problem_fields(r)["lines"] == "debits 100 ≠ credits 90"
        assert (await ledger.get("/v1/journal-entries")).json()["items"] == []

    @pytest.mark.parametrize(("line", "message"), [
        ({"account_code": "4000", "debit_minor": 0, "credit_minor": 0}, "non-zero"),
        ({"account_code": "4000", "debit_minor": 50, "credit_minor": 50}, "not both"),
    ])
    async def test_line_must_have_exactly_one_side(self, system, line, message):
        ledger = system.client("ledger", "finance")
        body = {"memo": "x", "currency": "CNY", "lines": [
            {"account_code": "1000", "debit_minor": 50}, line]}
        r = await ledger.post("/v1/journal-entries", json=body)
        assert r.status_code == 422, r.text
        assert message in problem_fields(r)["lines[1]"]

    async def test_negative_amount_is_refused(self, system):
        ledger = system.client("ledger", "finance")
        r = await ledger.post("/v1/journal-entries", json={"memo": "x", "currency": "CNY", "lines": [
            {"account_code": "1000", "debit_minor": -5}, {"account_code": "4000", "credit_minor": -5}]})
        assert r.status_code == 422 and r.json()["code"] == "validation_failed"
        assert {"lines[0].debit_minor", "lines[1].credit_minor"} <= set(problem_fields(r))

    async def test_zero_entry_and_single_line_are_refused(self, system):
        ledger = system.client("ledger", "finance")
        r = await ledger.post("/v1/journal-entries", json={"memo": "x", "currency": "CNY", "lines": []})
        assert r.status_code == 422 and "at least two lines" in problem_fields(r)["lines"]
        r = await ledger.post("/v1/journal-entries", json={"memo": "x", "currency": "CNY", "lines": [
            {"account_code": "1000", "debit_minor": 10}]})
        assert r.status_code == 422 and "debits 10 ≠ credits 0" in r.json()["detail"]

    async def test_unknown_account_and_missing_customer_are_refused(self, system):
        ledger = system.client("ledger", "finance")
        r = await ledger.post("/v1/journal-entries", json={"memo": "x", "currency": "CNY", "lines": [
            {"account_code": "9999", "debit_minor": 10}, {"account_code": "1100", "credit_minor": 10}]})
        assert r.status_code == 422
        fields = problem_fields(r)
        assert fields["lines[0].account_code"] == "unknown account 9999"
        assert "1100 is a control account" in fields["lines[1].account_code"]
        assert "needs a customer_id" in fields["lines[1].customer_id"]

    async def test_control_accounts_take_only_documents(self, system):
        ledger = system.client("ledger", "finance")
        for code, document in (("1100", "/v1/invoice-imports"), ("2100", "/v1/payments")):
            r = await ledger.post("/v1/journal-entries", json={
                "memo": "Opening receivable", "currency": "CNY",
                "posted_at": "2030-01-01T00:00:00Z", "lines": [
                    {"account_code": "3000", "credit_minor": 10},
                    {"account_code": code, "debit_minor": 10, "customer_id": CUSTOMER}]})
            assert r.status_code == 422, r.text
            fields = problem_fields(r)
            assert set(fields) == {"lines[1].account_code", "posted_at"}
            assert f"{code} is a control account" in fields["lines[1].account_code"]
            assert document in fields["lines[1].account_code"]
        assert (await ledger.get("/v1/journal-entries")).json()["items"] == []
        check = (await ledger.get("/v1/ledger-check")).json()
        assert check["balanced"] is True and check["controls"] == []

    async def test_unknown_currency_and_unknown_fields_are_refused(self, system):
        ledger = system.client("ledger", "finance")
        r = await ledger.post("/v1/journal-entries", json={**entry(), "currency": "XXX", "colour": 1})
        assert r.status_code == 422
        assert {"currency", "colour"} <= set(problem_fields(r))

    async def test_future_dated_entry_is_refused_back_dated_is_fine(self, system):
        ledger = system.client("ledger", "finance")
        future = await ledger.post("/v1/journal-entries",
                                   json=entry(posted_at="2030-01-01T00:00:00Z"))
        assert future.status_code == 422 and "posted_at" in problem_fields(future)
        past = await ledger.post("/v1/journal-entries", json=entry(posted_at="2025-12-31T23:00:00+08:00"))
        assert past.status_code == 201
        assert past.json()["posted_at"].startswith("2025-12-31T15:00:00")

    async def test_entries_cannot_be_changed_or_deleted(self, system):
        ledger = system.client("ledger", "admin")
        posted = (await ledger.post("/v1/journal-entries", json=entry())).json()
        for method in ("PATCH", "PUT", "DELETE"):
            r = await ledger.request(method, f"/v1/journal-entries/{posted['id']}", json={})
            assert r.status_code == 405

    async def test_posting_emits_an_outbox_event(self, system):
        ledger = system.client("ledger", "finance")
        await ledger.post("/v1/journal-entries", json=entry())
        state = system.state("ledger")
        async with state.db.session() as session:
            assert await state.outbox.pending(session) == 1

    async def test_idempotency_key_replays_the_entry(self, system):
        ledger = system.client("ledger", "finance")
        first = await ledger.post("/v1/journal-entries", json=entry(), headers={"Idempotency-Key": "k1"})
        again = await ledger.post("/v1/journal-entries", json=entry(), headers={"Idempotency-Key": "k1"})
        assert again.headers.get("idempotent-replayed") == "true"
        assert again.json()["id"] == first.json()["id"]
        listed = (await ledger.get("/v1/journal-entries")).json()["items"]
        assert len(listed) == 1


class TestAccess:
    async def test_auditor_reads_but_cannot_post(self, system):
        auditor = system.client("ledger", "auditor")
        r = await auditor.post("/v1/journal-entries", json=entry())
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        assert (await auditor.get("/v1/journal-entries")).status_code == 200
        assert (await auditor.get("/v1/trial-balance")).status_code == 200

    async def test_sales_cannot_read_the_journal(self, system):
        assert (await system.client("ledger", "alice").get("/v1/journal-entries")).status_code == 403

    async def test_no_key_is_401(self, system):
        anonymous = system.client("ledger", None)
        for path in ("/v1/journal-entries", "/v1/trial-balance", "/v1/accounts", "/v1/invoices"):
            r = await anonymous.get(path)
            assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        assert (await anonymous.post("/v1/journal-entries", json=entry())).status_code == 401

    async def test_unknown_entry_is_404(self, system):
        ledger = system.client("ledger", "finance")
        r = await ledger.get("/v1/journal-entries/00000000-0000-0000-0000-000000000000")
        assert r.status_code == 404 and r.json()["code"] == "not_found"
        r = await ledger.post("/v1/journal-entries/00000000-0000-0000-0000-000000000000/reverse",
                              json={"reason": "typo"})
        assert r.status_code == 404


class TestReversal:
    async def test_reversal_swaps_sides_and_links_both_ways(self, system):
        ledger = system.client("ledger", "finance")
        original = (await ledger.post("/v1/journal-entries", json=entry(700))).json()
        system.clock.advance(hours=1)
        r = await ledger.post(f"/v1/journal-entries/{original['id']}/reverse",
                              json={"reason": "wrong customer"})
        assert r.status_code == 201, r.text
        reversal = r.json()
        assert reversal["kind"] == "reversal" and reversal["reverses_entry_id"] == original["id"]
        assert "wrong customer" in reversal["memo"] and original["number"] in reversal["memo"]
        assert [(ln["account_code"], ln["debit_minor"], ln["credit_minor"], ln["customer_id"])
                for ln in reversal["lines"]] == [("1000", 0, 700, None), ("3000", 700, 0, None)]
        reread = (await ledger.get(f"/v1/journal-entries/{original['id']}")).json()
        assert reread["reversed_by_entry_id"] == reversal["id"]

        tb = (await ledger.get("/v1/trial-balance")).json()
        assert all(row["balance_minor"] == 0 for row in tb["accounts"])
        assert tb["total_debit_minor"] == tb["total_credit_minor"] == 1400

    async def test_reversing_twice_is_a_conflict(self, system):
        ledger = system.client("ledger", "finance")
        original = (await ledger.post("/v1/journal-entries", json=entry())).json()
        first = await ledger.post(f"/v1/journal-entries/{original['id']}/reverse", json={"reason": "a"})
        second = await ledger.post(f"/v1/journal-entries/{original['id']}/reverse", json={"reason": "b"})
        assert first.status_code == 201
        assert second.status_code == 409 and second.json()["code"] == "conflict"
        assert second.json()["reversed_by_entry_id"] == first.json()["id"]
        again = await ledger.post(f"/v1/journal-entries/{first.json()['id']}/reverse",
                                  json={"reason": "c"})
        assert again.status_code == 409
        assert len((await ledger.get("/v1/journal-entries")).json()["items"]) == 2

    async def test_concurrent_reversals_never_both_win(self, system):
        import asyncio

        ledger = system.client("ledger", "finance")
        original = (await ledger.post("/v1/journal-entries", json=entry())).json()
        results = await asyncio.gather(*(
            ledger.post(f"/v1/journal-entries/{original['id']}/reverse", json={"reason": str(i)})
            for i in range(4)))
        codes = sorted(r.status_code for r in results)
        assert codes == [201, 409, 409, 409], [r.text for r in results]
        check = (await ledger.get("/v1/ledger-check")).json()
        assert check["balanced"] is True and check["entries_checked"] == 2


class TestTrialBalance:
    async def test_as_of_excludes_later_entries(self, system):
        ledger = system.client("ledger", "finance")
        system.clock.set(datetime(2026, 1, 10, 23, 59, tzinfo=UTC))
        await ledger.post("/v1/journal-entries", json=entry(1_000))
        system.clock.set(datetime(2026, 1, 11, 0, 0, tzinfo=UTC))
        await ledger.post("/v1/journal-entries", json={"memo": "cash sale", "currency": "CNY", "lines": [
            {"account_code": "1000", "debit_minor": 300}, {"account_code": "4000", "credit_minor": 300}]})

        jan10 = (await ledger.get("/v1/trial-balance", params={"as_of": "2026-01-10"})).json()
        assert {r["code"] for r in jan10["accounts"]} == {"1000", "3000"}
        assert jan10["total_debit_minor"] == jan10["total_credit_minor"] == 1_000
        jan11 = (await ledger.get("/v1/trial-balance", params={"as_of": "2026-01-11"})).json()
        assert {r["code"] for r in jan11["accounts"]} == {"1000", "3000", "4000"}
        assert jan11["total_debit_minor"] == jan11["total_credit_minor"] == 1_300
        jan9 = (await ledger.get("/v1/trial-balance", params={"as_of": "2026-01-09"})).json()
        assert jan9["accounts"] == [] and jan9["total_debit_minor"] == 0

    async def test_balances_follow_the_normal_side(self, system):
        ledger = system.client("ledger", "finance")
        # A cash sale, then a cash return: Dr sales returns (debit-normal contra revenue) / Cr cash.
        await ledger.post("/v1/journal-entries", json={"memo": "cash sale", "currency": "CNY", "lines": [
            {"account_code": "1000", "debit_minor": 1000},
            {"account_code": "4000", "credit_minor": 1000}]})
        await ledger.post("/v1/journal-entries", json={"memo": "return", "currency": "CNY", "lines": [
            {"account_code": "4100", "debit_minor": 200},
            {"account_code": "1000", "credit_minor": 200}]})
        rows = {r["code"]: r for r in (await ledger.get("/v1/trial-balance")).json()["accounts"]}
        assert rows["1000"]["balance_minor"] == 800
        assert rows["4000"]["balance_minor"] == 1000
        assert rows["4100"]["balance_minor"] == 200

    async def test_currencies_are_kept_apart(self, system):
        ledger = system.client("ledger", "finance")
        await ledger.post("/v1/journal-entries", json=entry(500))
        await ledger.post("/v1/journal-entries", json={**entry(70), "currency": "USD"})
        tb = (await ledger.get("/v1/trial-balance")).json()
        assert sorted((r["code"], r["currency"]) for r in tb["accounts"]) == [
            ("1000", "CNY"), ("1000", "USD"), ("3000", "CNY"), ("3000", "USD")]
        usd = (await ledger.get("/v1/trial-balance", params={"currency": "USD"})).json()
        assert usd["currency"] == "USD" and usd["total_debit_minor"] == 70

    async def test_bad_as_of_is_422(self, system):
        r = await system.client("ledger", "finance").get("/v1/trial-balance",
                                                          params={"as_of": "yesterday"})
        assert r.status_code == 422 and "query.as_of" in problem_fields(r)


class TestJournalList:
    async def test_filters_by_account_customer_and_dates(self, system):
        ledger = system.client("ledger", "finance")
        system.clock.set(datetime(2026, 2, 1, 12, tzinfo=UTC))
        tagged = entry(100)  # a line of any account may name the customer it concerns
        tagged["lines"][0]["customer_id"] = CUSTOMER
        a = (await ledger.post("/v1/journal-entries", json=tagged)).json()
        system.clock.set(datetime(2026, 2, 2, 12, tzinfo=UTC))
        b = (await ledger.post("/v1/journal-entries", json={"memo": "cash", "currency": "CNY", "lines": [
            {"account_code": "1000", "debit_minor": 5}, {"account_code": "4000", "credit_minor": 5}]})).json()

        async def ids(**params):
            return [e["id"] for e in (await ledger.get("/v1/journal-entries", params=params)).json()["items"]]

        assert await ids() == [a["id"], b["id"]]
        assert await ids(account_code="4000") == [b["id"]]
        assert await ids(customer_id=CUSTOMER) == [a["id"]]
        assert await ids(**{"from": "2026-02-02"}) == [b["id"]]
        assert await ids(to="2026-02-01") == [a["id"]]
        assert await ids(kind="manual", limit=1) == [a["id"]]

    async def test_pagination_walks_every_entry_once(self, system):
        ledger = system.client("ledger", "finance")
        posted = []
        for i in range(5):
            posted.append((await ledger.post("/v1/journal-entries", json=entry(10 + i))).json()["id"])
            system.clock.advance(seconds=1)
        seen, cursor = [], None
        while True:
            page = (await ledger.get("/v1/journal-entries",
                                     params={"limit": 2} | ({"cursor": cursor} if cursor else {}))).json()
            seen += [e["id"] for e in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == posted
        from shared.pagination import encode_cursor

        for forged in ("garbage", encode_cursor("not-a-time", "x"), encode_cursor("a")):
            bad = await ledger.get("/v1/journal-entries", params={"cursor": forged})
            assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
        bad = await ledger.get("/v1/invoices", params={"cursor": encode_cursor("nope", "x")})
        assert bad.status_code == 422


class TestLedgerCheck:
    async def test_a_clean_ledger_is_balanced(self, system):
        ledger = system.client("ledger", "auditor")
        empty = (await ledger.get("/v1/ledger-check")).json()
        assert empty["balanced"] is True and empty["problems"] == []
        finance = system.client("ledger", "finance")
        e = (await finance.post("/v1/journal-entries", json=entry(900))).json()
        await finance.post(f"/v1/journal-entries/{e['id']}/reverse", json={"reason": "oops"})
        check = (await ledger.get("/v1/ledger-check")).json()
        assert check["balanced"] is True
        assert (check["entries_checked"], check["lines_checked"]) == (2, 4)
        assert check["total_debit_minor"] == check["total_credit_minor"] == 1800

    async def test_a_tampered_ledger_is_reported(self, system):
        from sqlalchemy import update

        from services.ledger.models import JournalEntry, JournalLine

        finance = system.client("ledger", "finance")
        e = (await finance.post("/v1/journal-entries", json=entry(900))).json()
        state = system.state("ledger")
        async with state.db.session() as session, session.begin():  # behind the API's back
            await session.execute(update(JournalLine).where(
                JournalLine.entry_id == e["id"], JournalLine.line_no == 2).values(credit_minor=800))
            await session.execute(update(JournalEntry).where(JournalEntry.id == e["id"]).values(
                reversed_by_entry_id=e["id"]))
        check = (await system.client("ledger", "auditor").get("/v1/ledger-check")).json()
        assert check["balanced"] is False
        codes = {p["code"] for p in check["problems"]}
        assert {"unbalanced_entry", "journal_unbalanced", "broken_reversal_link"} <= codes
        assert any("debits 900 ≠ credits 800" in p["detail"] for p in check["problems"])

    async def test_control_accounts_are_checked_against_their_documents(self, system):
        from sqlalchemy import update

        from services.ledger.models import CustomerBalance, Invoice
        from tests.fixtures.ledger import issue

        finance = system.client("ledger", "finance")
        invoice = await issue(system, amount=10_000)
        paid = await finance.post("/v1/payments", json={
            "customer_id": invoice["customer_id"], "amount_minor": 12_000, "currency": "CNY",
            "received_at": "2026-01-05T08:00:00Z", "method": "bank_transfer"})
        assert paid.status_code == 201, paid.text
        check = (await finance.get("/v1/ledger-check")).json()
        assert check["balanced"] is True, check["problems"]
        assert {(c["account_code"], c["balance_minor"], c["documents_minor"])
                for c in check["controls"]} == {("1100", 0, 0), ("2100", 2_000, 2_000)}

        state = system.state("ledger")
        async with state.db.session() as session, session.begin():  # behind the API's back
            await session.execute(update(Invoice).where(Invoice.id == invoice["id"]).values(
                outstanding_minor=500, paid_minor=9_500, status="partially_paid"))
            await session.execute(update(CustomerBalance).values(unapplied_minor=1_500))
        check = (await finance.get("/v1/ledger-check")).json()
        assert check["balanced"] is False
        assert {p["code"]: p["detail"] for p in check["problems"]} == {
            "receivables_mismatch": "1100 receivables in CNY is 0, but the open invoices' "
                                    "outstanding (the aging's total) is 500",
            "unapplied_mismatch": "2100 unapplied cash in CNY is 2000, but the customers' "
                                  "unapplied cash is 1500"}


class TestStartUp:
    async def test_seeding_is_idempotent_and_keeps_local_changes(self, system):
        from sqlalchemy import func, select, update

        from services.ledger import chart
        from services.ledger.models import Account

        state = system.state("ledger")
        async with state.db.session() as session, session.begin():
            await session.execute(update(Account).where(Account.code == "1000")
                                  .values(name="Bank of China current account"))
        assert await chart.seed_chart(state.db, state.clock) == []
        async with state.db.session() as session:
            count = (await session.execute(select(func.count()).select_from(Account))).scalar_one()
            renamed = await session.get(Account, "1000")
        assert count == 10 and renamed.name == "Bank of China current account"  # 1200 added

    async def test_ready_reports_migrations_at_head(self, system):
        r = await system.client("ledger", None).get("/ready")
        assert r.status_code == 200 and r.json()["status"] == "ready"

    async def test_unmigrated_database_does_not_stop_start_up(self, tmp_path, clock):
        from services.ledger import chart
        from shared.db import Database

        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        try:
            await chart.ensure_chart(db, clock)  # logs, does not raise
        finally:
            await db.dispose()
