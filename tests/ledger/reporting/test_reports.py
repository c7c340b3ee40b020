"""Receivables reports over a small clock-driven dataset, every figure computed by hand.

The dataset (all at 09:00 UTC):
  2026-01-05  I1 c-alice S-ALICE CNY 10,000 due 01-15   I2 c-alice S-ALICE CNY 20,000 due 02-04
              I3 c-bob   S-BOB   CNY  5,000 due 01-05   I4 c-bob   S-BOB   USD  7,000 due 01-20
  2026-02-01  c-alice pays CNY 4,000 (oldest due first → I1); credit note CNY 1,000 on I2
  2026-03-01  I5 c-alice S-ALICE CNY 8,000 due 03-31; I3 written off in full (5,000)
  then the clock stands at 2026-03-10.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from tests.fixtures.ledger import CUSTOMER, OTHER_CUSTOMER, issue, pay

BUCKETS = ["current", "1-30", "31-60", "61-90", "91-180", "180+"]


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T09:00:00+00:00").astimezone(UTC)


def buckets(**amounts: int) -> dict[str, int]:
    named = {k.replace("_", "-").removeprefix("d"): v for k, v in amounts.items()}
    return {name: named.get(name, 0) for name in BUCKETS}


async def build(system) -> dict[str, dict]:
    system.clock.set(at("2026-01-05"))
    inv = {
        "I1": await issue(system, amount=10_000, due_in_days=10),
        "I2": await issue(system, amount=20_000, due_in_days=30),
        "I3": await issue(system, amount=5_000, customer=OTHER_CUSTOMER, salesperson="S-BOB",
                          due_in_days=0),
        "I4": await issue(system, amount=7_000, customer=OTHER_CUSTOMER, salesperson="S-BOB",
                          currency="USD", due_in_days=15),
    }
    system.clock.set(at("2026-02-01"))
    await pay(system, 4_000)
    r = await system.client("ledger", "finance").post("/v1/credit-notes", json={
        "invoice_id": inv["I2"]["id"], "amount_minor": 1_000, "reason": "Allowance"})
    assert r.status_code == 201, r.text
    system.clock.set(at("2026-03-01"))
    inv["I5"] = await issue(system, amount=8_000, due_in_days=30)
    wo = await system.client("ledger", "finance").post("/v1/write-offs", json={
        "invoice_id": inv["I3"]["id"], "reason": "Insolvent", "responsible": "S-BOB"})
    assert wo.status_code == 201, wo.text
    r = await system.client("ledger", "finance2").post(f"/v1/write-offs/{wo.json()['id']}/approve")
    assert r.status_code == 200, r.text
    system.clock.set(at("2026-03-10"))
    return inv


async def report(system, path: str, who: str = "finance", **params) -> dict:
    r = await system.client("ledger", who).get(f"/v1/reports/{path}", params=params)
    assert r.status_code == 200, r.text
    return r.json()


class TestAging:
    async def test_by_customer_as_of_today_and_a_past_date(self, system):
        await build(system)
        got = await report(system, "aging")
        assert (got["as_of"], got["group_by"], got["bucket_names"]) == ("2026-03-10", "customer", BUCKETS)
        assert got["rows"] == [
            # I1 6,000 is 54 days late, I2 19,000 is 34 days late, I5 is not due yet
            {"customer_id": CUSTOMER, "currency": "CNY", "buckets": buckets(current=8_000, d31_60=25_000),
             "total_minor": 33_000, "disputed_minor": 0},
            # I3 is written off; I4 is 49 days late
            {"customer_id": OTHER_CUSTOMER, "currency": "USD", "buckets": buckets(d31_60=7_000),
             "total_minor": 7_000, "disputed_minor": 0}]
        assert got["totals"] == [
            {"currency": "CNY", "buckets": buckets(current=8_000, d31_60=25_000),
             "total_minor": 33_000, "disputed_minor": 0},
            {"currency": "USD", "buckets": buckets(d31_60=7_000), "total_minor": 7_000,
             "disputed_minor": 0}]
        past = await report(system, "aging", as_of="2026-01-31")
        # before the payment, the credit note, the write-off and I5
        assert past["rows"] == [
            {"customer_id": CUSTOMER, "currency": "CNY",
             "buckets": buckets(current=20_000, d1_30=10_000), "total_minor": 30_000,
             "disputed_minor": 0},
            {"customer_id": OTHER_CUSTOMER, "currency": "CNY", "buckets": buckets(d1_30=5_000),
             "total_minor": 5_000, "disputed_minor": 0},
            {"customer_id": OTHER_CUSTOMER, "currency": "USD", "buckets": buckets(d1_30=7_000),
             "total_minor": 7_000, "disputed_minor": 0}]
        before_anything = await report(system, "aging", as_of="2026-01-04")
        assert before_anything["rows"] == [] and before_anything["totals"] == []

    async def test_by_salesperson_and_one_currency(self, system):
        await build(system)
        got = await report(system, "aging", group_by="salesperson")
        assert [(r["salesperson_id"], r["currency"], r["total_minor"]) for r in got["rows"]] == [
            ("S-ALICE", "CNY", 33_000), ("S-BOB", "USD", 7_000)]
        assert "customer_id" not in got["rows"][0]
        usd = await report(system, "aging", group_by="salesperson", currency="USD")
        assert [r["salesperson_id"] for r in usd["rows"]] == ["S-BOB"]
        assert usd["currency"] == "USD" and [t["currency"] for t in usd["totals"]] == ["USD"]

    async def test_a_past_report_is_the_same_after_later_movements(self, system):
        inv = await build(system)
        then = await report(system, "aging", as_of="2026-03-10")
        earlier = await report(system, "aging", as_of="2026-01-31", group_by="salesperson")
        system.clock.set(at("2026-03-15"))
        payments = (await system.client("ledger", "finance").get("/v1/payments")).json()["items"]
        r = await system.client("ledger", "finance").post(
            f"/v1/payments/{payments[0]['id']}/reverse", json={"reason": "Bounced"})
        assert r.status_code == 200, r.text
        r = await system.client("ledger", "finance").post("/v1/debit-notes", json={
            "invoice_id": inv["I2"]["id"], "amount_minor": 500, "kind": "interest",
            "reason": "Late-payment interest"})
        assert r.status_code == 201, r.text
        system.clock.set(at("2026-03-20"))
        await pay(system, 10_000 + 19_500 + 8_000)
        await pay(system, 7_000, customer=OTHER_CUSTOMER, currency="USD")
        assert await report(system, "aging", as_of="2026-03-10") == then
        assert await report(system, "aging", as_of="2026-01-31", group_by="salesperson") == earlier
        now = await report(system, "aging")
        assert now["rows"] == [] and now["totals"] == []
        # between the reversal and the last payment: I1 is back to 10,000, I2 carries interest
        mid = await report(system, "aging", as_of="2026-03-15")
        assert mid["rows"][0]["buckets"] == buckets(current=8_000, d31_60=10_000 + 19_500)

    async def test_csv_has_a_header_row_and_one_line_per_row(self, system):
        await build(system)
        r = await system.client("ledger", "auditor").get("/v1/reports/aging",
                                                          params={"format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        lines = list(csv.reader(io.StringIO(r.text)))
        assert lines == [
            ["customer_id", "currency", *BUCKETS, "total_minor", "disputed_minor"],
            [CUSTOMER, "CNY", "8000", "0", "25000", "0", "0", "0", "33000", "0"],
            [OTHER_CUSTOMER, "USD", "0", "0", "7000", "0", "0", "0", "7000", "0"]]
        by_accept = await system.client("ledger", "auditor", headers={"Accept": "text/csv"}).get(
            "/v1/reports/aging", params={"group_by": "salesperson"})
        assert by_accept.text.splitlines()[0].startswith("salesperson_id,currency,current,")

    async def test_bad_as_of_is_422(self, system):
        client = system.client("ledger", "finance")
        r = await client.get("/v1/reports/aging", params={"as_of": "10/03/2026"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.as_of"
        r = await client.get("/v1/reports/aging", params={"as_of": "2999-01-01"})
        assert r.status_code == 422 and r.json()["errors"] == [
            {"field": "query.as_of", "message": "must not be after 2026-01-05"}]
        r = await client.get("/v1/reports/aging", params={"group_by": "region"})
        assert r.status_code == 422
        r = await client.get("/v1/reports/dso", params={"from": "2026-01-05", "to": "2026-01-01"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "query.from"

    async def test_sales_see_only_their_own_rows(self, system):
        await build(system)
        got = await report(system, "aging", who="alice", group_by="salesperson")
        assert [r["salesperson_id"] for r in got["rows"]] == ["S-ALICE"]
        assert [t["currency"] for t in got["totals"]] == ["CNY"]
        bob = await report(system, "aging", who="bob")
        assert [(r["customer_id"], r["currency"]) for r in bob["rows"]] == [(OTHER_CUSTOMER, "USD")]
        perf = await report(system, "salesperson-performance", who="alice", **{"from": "2026-01-01"})
        assert {r["salesperson_id"] for r in perf["rows"]} == {"S-ALICE"}
        dso = await report(system, "dso", who="bob", **{"from": "2026-01-01"})
        assert [(r["currency"], r["receivables_minor"]) for r in dso["rows"]] == [
            ("CNY", 0), ("USD", 7_000)]

    async def test_roles(self, system):
        for who in ("production", "quality", "technical"):
            r = await system.client("ledger", who).get("/v1/reports/aging")
            assert r.status_code == 403
        for who in ("finance", "credit_manager", "auditor", "admin", "sales"):
            assert (await system.client("ledger", who).get("/v1/reports/aging")).status_code == 200

    async def test_bucket_bounds_come_from_settings(self, system):
        await build(system)
        system.state("ledger").settings.aging_bucket_days = [40, 50]
        got = await report(system, "aging")
        assert got["bucket_names"] == ["current", "1-40", "41-50", "50+"]
        # I2 is 34 days late, I1 54
        assert got["rows"][0]["buckets"] == {"current": 8_000, "1-40": 19_000, "41-50": 0,
                                             "50+": 6_000}


class TestDsoAndCei:
    async def test_dso_by_hand(self, system):
        await build(system)
        got = await report(system, "dso", **{"from": "2026-01-01", "to": "2026-03-10"})
        assert (got["from"], got["to"], got["days"]) == ("2026-01-01", "2026-03-10", 69)
        assert got["rows"] == [
            # 33,000 / 43,000 × 69 = 52.95
            {"currency": "CNY", "receivables_minor": 33_000, "credit_sales_minor": 43_000,
             "dso_days": 53.0},
            {"currency": "USD", "receivables_minor": 7_000, "credit_sales_minor": 7_000,
             "dso_days": 69.0}]
        quiet = await report(system, "dso", **{"from": "2026-03-02", "to": "2026-03-10"})
        assert [r["dso_days"] for r in quiet["rows"]] == [None, None]  # no sales in the period

    async def test_cei_by_hand(self, system):
        await build(system)
        got = await report(system, "collection-effectiveness", **{"from": "2026-02-01",
                                                                  "to": "2026-03-10"})
        assert got["rows"] == [
            # (35,000 + 8,000 − 33,000) / (35,000 + 8,000 − 8,000) × 100
            {"currency": "CNY", "opening_receivables_minor": 35_000, "credit_sales_minor": 8_000,
             "closing_receivables_minor": 33_000, "closing_current_minor": 8_000,
             "cei_percent": 28.6},
            {"currency": "USD", "opening_receivables_minor": 7_000, "credit_sales_minor": 0,
             "closing_receivables_minor": 7_000, "closing_current_minor": 0, "cei_percent": 0.0}]


class TestSalespersonPerformance:
    async def test_figures_and_grades_by_hand(self, system):
        await build(system)
        got = await report(system, "salesperson-performance", **{"from": "2026-02-01",
                                                                  "to": "2026-03-10"})
        assert got["rows"] == [
            {"salesperson_id": "S-ALICE", "currency": "CNY", "opening_receivables_minor": 30_000,
             "invoiced_minor": 8_000, "collected_minor": 4_000, "collection_rate": 0.1053,
             "closing_receivables_minor": 33_000, "overdue_minor": 25_000,
             "overdue_share": 0.7576, "avg_days_to_pay": None, "written_off_minor": 0,
             "grade": "D"},
            {"salesperson_id": "S-BOB", "currency": "CNY", "opening_receivables_minor": 5_000,
             "invoiced_minor": 0, "collected_minor": 0, "collection_rate": 0.0,
             "closing_receivables_minor": 0, "overdue_minor": 0, "overdue_share": 0.0,
             "avg_days_to_pay": None, "written_off_minor": 5_000, "grade": "D"},
            {"salesperson_id": "S-BOB", "currency": "USD", "opening_receivables_minor": 7_000,
             "invoiced_minor": 0, "collected_minor": 0, "collection_rate": 0.0,
             "closing_receivables_minor": 7_000, "overdue_minor": 7_000, "overdue_share": 1.0,
             "avg_days_to_pay": None, "written_off_minor": 0, "grade": "D"}]
        system.clock.set(at("2026-03-20"))
        await pay(system, 33_000)
        later = await report(system, "salesperson-performance", **{"from": "2026-03-11",
                                                                    "to": "2026-03-20"})
        alice = next(r for r in later["rows"] if r["salesperson_id"] == "S-ALICE")
        # I1 and I2 paid 74 days after issue, I5 19 days: (74 + 74 + 19) / 3
        assert (alice["collected_minor"], alice["collection_rate"], alice["overdue_minor"],
                alice["avg_days_to_pay"], alice["grade"]) == (33_000, 1.0, 0, 55.7, "A")
        # the earlier period is unchanged by the later payment
        again = await report(system, "salesperson-performance", **{"from": "2026-02-01",
                                                                    "to": "2026-03-10"})
        assert again == got

    async def test_this_month_with_its_last_day_runs_to_today(self, system):
        await build(system)  # today is 2026-03-10
        for path in ("salesperson-performance", "dso", "collection-effectiveness"):
            to_today = await report(system, path, **{"from": "2026-03-01", "to": "2026-03-10"})
            month = await report(system, path, **{"from": "2026-03-01", "to": "2026-03-31"})
            assert (month["from"], month["to"], month["requested_to"]) == (
                "2026-03-01", "2026-03-10", "2026-03-31"), path
            assert to_today["requested_to"] is None
            assert month == {**to_today, "requested_to": "2026-03-31"}, path
        r = await system.client("ledger", "finance").get(
            "/v1/reports/dso", params={"from": "2026-04-01", "to": "2026-04-30"})
        assert r.status_code == 422 and r.json()["errors"] == [
            {"field": "query.from", "message": "must not be after 2026-03-10"}]

    async def test_grade_thresholds_come_from_settings(self, system):
        from services.ledger.config import GradeRule

        await build(system)
        system.state("ledger").settings.performance_grades = [
            GradeRule(grade="OK", min_collection_rate=0.1, max_overdue_share=0.8),
            GradeRule(grade="LOW", min_collection_rate=0, max_overdue_share=1)]
        got = await report(system, "salesperson-performance", **{"from": "2026-02-01",
                                                                  "to": "2026-03-10"})
        assert [r["grade"] for r in got["rows"]] == ["OK", "LOW", "LOW"]


class TestDisputes:
    async def test_disputed_amounts_show_while_the_dispute_was_open(self, system):
        inv = await build(system)
        finance = system.client("ledger", "finance")
        system.clock.set(at("2026-03-05"))
        r = await finance.post(f"/v1/invoices/{inv['I2']['id']}/disputes", json={
            "reason": "Quality below standard QS-7", "contact_role": "barrier"})
        assert r.status_code == 201, r.text
        dispute = r.json()
        system.clock.set(at("2026-03-10"))
        got = await report(system, "aging")
        assert (got["rows"][0]["total_minor"], got["rows"][0]["disputed_minor"]) == (33_000, 19_000)
        assert got["totals"][0]["disputed_minor"] == 19_000
        system.clock.set(at("2026-03-12"))
        r = await finance.post(f"/v1/invoices/{inv['I2']['id']}/disputes/{dispute['id']}/resolve",
                               json={"resolution": "Replacement batch delivered"})
        assert r.status_code == 200, r.text
        assert (await report(system, "aging"))["rows"][0]["disputed_minor"] == 0
        assert (await report(system, "aging", as_of="2026-03-10")) == got  # reproducible
        assert (await report(system, "aging", as_of="2026-03-04"))["rows"][0]["disputed_minor"] == 0
        csv_text = (await finance.get("/v1/reports/aging", params={
            "format": "csv", "as_of": "2026-03-10"})).text
        assert csv_text.splitlines()[1].endswith(",33000,19000")
