"""The credit scorecard as a pure function, and evaluations through the API with ledger up,
down or answering with a payment history."""

from __future__ import annotations

import httpx
import pytest

from services.credit import scorecard
from services.credit.scorecard import (
    AssetFacts,
    Financials,
    InquiryRecord,
    PaymentHistory,
    evaluate,
    grade_for,
)
from tests.fixtures.credit import new_customer, outbox_events, profile, reserve, yuan

FINANCIALS = {
    "revenue_minor": yuan(50_000_000), "net_profit_minor": yuan(4_000_000),
    "total_assets_minor": yuan(80_000_000), "total_liabilities_minor": yuan(35_000_000),
    "current_assets_minor": yuan(30_000_000), "current_liabilities_minor": yuan(15_000_000),
    "years_in_business": 12, "currency": "CNY"}
NO_ASSETS = AssetFacts(0, 0, 0)


def financials(**overrides) -> Financials:
    return Financials(**{**FINANCIALS, **overrides})


def points(card: scorecard.Scorecard) -> dict[str, int]:
    return {f.name: f.points for f in card.factors}


class TestScorecard:
    def test_factors_add_up_to_the_score_and_the_maximum_is_100(self):
        card = evaluate(financials(), InquiryRecord(0, 1), NO_ASSETS, None)
        assert card.score == sum(f.points for f in card.factors)
        assert sum(f.max_points for f in card.factors) == 100
        assert points(card) == {"profitability": 15, "leverage": 14, "liquidity": 15,
                                "years_in_business": 10, "credit_inquiry": 12,
                                "encumbered_assets": 5, "payment_history": 5}
        assert (card.score, card.grade) == (76, "B")
        # min(20 % of 45M net worth, 10 % of 50M revenue) × 0.75, rounded down to 1,000
        assert card.recommended_limit_minor == yuan(3_750_000)
        assert (card.recommended_terms_days, card.recommended_policy) == (45, "credit")

    @pytest.mark.parametrize(("score", "grade"), [
        (100, "A"), (80, "A"), (79, "B"), (65, "B"), (64, "C"), (50, "C"), (49, "D"),
        (35, "D"), (34, "E"), (0, "E")])
    def test_grade_bands(self, score, grade):
        assert grade_for(score) == grade

    def test_a_strong_customer_is_a(self):
        card = evaluate(financials(net_profit_minor=yuan(6_000_000),
                                   total_liabilities_minor=yuan(20_000_000)),
                        InquiryRecord(0, 0), AssetFacts(yuan(1_000), 0, 2),
                        PaymentHistory(invoices_paid_on_time=10))
        assert (card.score, card.grade) == (100, "A")
        assert card.recommended_terms_days == 60

    def test_a_weak_customer_is_e_and_prepaid_only(self):
        card = evaluate(financials(net_profit_minor=-yuan(1_000), total_liabilities_minor=yuan(90_000_000),
                                   current_assets_minor=yuan(1), years_in_business=1),
                        InquiryRecord(defaults_count=2, lawsuits_count=0), AssetFacts(100, 100, 1),
                        PaymentHistory(invoices_paid_late=3, max_days_overdue=90))
        assert card.score == 0 and card.grade == "E"
        assert (card.recommended_limit_minor, card.recommended_terms_days,
                card.recommended_policy) == (0, 0, "prepaid_only")

    def test_grade_d_requires_a_guarantee(self):
        card = evaluate(financials(net_profit_minor=yuan(100), years_in_business=1,
                                   current_assets_minor=yuan(10_000_000)),
                        InquiryRecord(1, 0), NO_ASSETS, None)
        assert card.grade == "D" and card.recommended_policy == "guarantee_required"

    @pytest.mark.parametrize(("history", "expected"), [
        (PaymentHistory(invoices_paid_on_time=8, invoices_paid_late=2), 8),
        (PaymentHistory(invoices_paid_on_time=8, invoices_paid_late=2, max_days_overdue=5), 6),
        (PaymentHistory(invoices_paid_on_time=8, invoices_paid_late=2, max_days_overdue=45), 3),
        (PaymentHistory(invoices_paid_on_time=8, invoices_paid_late=2, max_days_overdue=60), 0),
        (PaymentHistory(), 5),
    ])
    def test_payment_history(self, history, expected):
        assert scorecard.payment_history(history, "").points == expected

    def test_no_payment_history_is_neutral_and_says_why(self):
        factor = scorecard.payment_history(None, "ledger did not answer")
        assert (factor.points, factor.max_points) == (5, 10)
        assert "no payment history available (ledger did not answer)" in factor.explanation

    def test_encumbered_assets(self):
        assert scorecard.encumbered_assets(AssetFacts(1000, 200, 2), "CNY").points == 10
        assert scorecard.encumbered_assets(AssetFacts(1000, 500, 2), "CNY").points == 6
        assert scorecard.encumbered_assets(AssetFacts(1000, 800, 2), "CNY").points == 3
        assert scorecard.encumbered_assets(AssetFacts(1000, 900, 2), "CNY").points == 0

    def test_zero_denominators_do_not_crash(self):
        card = evaluate(financials(revenue_minor=0, total_assets_minor=0, current_liabilities_minor=0,
                                   current_assets_minor=0, net_profit_minor=0,
                                   total_liabilities_minor=0), None, NO_ASSETS, None)
        assert points(card)["profitability"] == 0 and points(card)["leverage"] == 0
        assert card.recommended_limit_minor == 0


def ledger_answers(system, status: int, body: dict | None = None) -> list[httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body or {"detail": "x"})

    system.mounts["http://ledger.test"] = httpx.MockTransport(handler)
    return seen


def ledger_down(system) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("down", request=request)

    system.mounts["http://ledger.test"] = httpx.MockTransport(handler)


async def post_evaluation(system, customer_id: str, **body):
    return await system.client("credit", "credit_manager").post(
        f"/v1/customers/{customer_id}/evaluations",
        json={"financials": FINANCIALS, **body})


class TestEvaluationsApi:
    async def test_scorecard_in_the_response_and_stored(self, system):
        customer_id = await new_customer(system)
        ledger_answers(system, 404)  # ledger has no payment history for the customer
        r = await post_evaluation(system, customer_id,
                                  inquiry={"rating": "AA", "defaults_count": 0, "lawsuits_count": 1})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["score"] == sum(f["points"] for f in body["factors"]) == 76
        assert body["grade"] == "B"
        assert [f["name"] for f in body["factors"]] == [
            "profitability", "leverage", "liquidity", "years_in_business", "credit_inquiry",
            "encumbered_assets", "payment_history"]
        history = body["factors"][-1]
        assert history["points"] == 5 and "no payment history available" in history["explanation"]
        assert "ledger reports no payment history" in history["explanation"]
        assert body["recommended_limit_minor"] == yuan(3_750_000)
        assert body["inputs"]["financials"] == FINANCIALS
        reader = system.client("credit", "auditor")
        got = await reader.get(f"/v1/customers/{customer_id}/evaluations/{body['id']}")
        assert got.status_code == 200 and got.json() == body
        listed = (await reader.get(f"/v1/customers/{customer_id}/evaluations")).json()
        assert [e["id"] for e in listed["items"]] == [body["id"]]
        # nothing changes on the profile until applied
        assert (await profile(system, customer_id))["limit_minor"] == 0

    async def test_apply_updates_the_profile_once(self, system):
        customer_id = await new_customer(system)
        evaluation = (await post_evaluation(system, customer_id)).json()
        manager = system.client("credit", "credit_manager")
        r = await manager.post(f"/v1/customers/{customer_id}/evaluations/{evaluation['id']}/apply")
        assert r.status_code == 200, r.text
        applied = r.json()
        assert (applied["limit_minor"], applied["terms_days"], applied["grade"],
                applied["policy"], applied["evaluation_id"]) == (
            evaluation["recommended_limit_minor"], evaluation["recommended_terms_days"],
            evaluation["grade"], evaluation["recommended_policy"], evaluation["id"])
        [event] = await outbox_events(system, "credit.limit_changed")
        assert event["data"]["new_limit_minor"] == evaluation["recommended_limit_minor"]
        assert event["data"]["evaluation_id"] == evaluation["id"]
        again = await manager.post(f"/v1/customers/{customer_id}/evaluations/{evaluation['id']}/apply")
        assert again.status_code == 409 and again.json()["code"] == "conflict"
        stored = (await manager.get(f"/v1/customers/{customer_id}/evaluations/{evaluation['id']}")).json()
        assert stored["applied_by"] == "credit_manager" and stored["applied_at"]
        # and the applied limit is what reservations now draw on
        assert (await reserve(system, customer_id, yuan(3_750_000))).json()["decision"] == "reserved"

    async def test_inquiry_on_file_and_assets_are_scored(self, system):
        customer_id = await new_customer(system)
        manager = system.client("credit", "credit_manager")
        await manager.post(f"/v1/customers/{customer_id}/credit-inquiries", json={
            "source": "NECIPS", "reference": "R-9", "inquired_on": "2026-01-02",
            "defaults_count": 1, "lawsuits_count": 0})
        for value, encumbered in ((yuan(600), True), (yuan(400), False), (yuan(10_000), False)):
            await manager.post(f"/v1/customers/{customer_id}/assets", json={
                "kind": "equipment", "description": "press", "value_minor": value,
                "currency": "USD" if value == yuan(10_000) else "CNY", "encumbered": encumbered})
        body = (await post_evaluation(system, customer_id)).json()
        factors = {f["name"]: f for f in body["factors"]}
        assert factors["credit_inquiry"]["points"] == 7
        assert "NECIPS R-9" in factors["credit_inquiry"]["explanation"]
        assert factors["encumbered_assets"]["input"] == 0.6  # the USD asset is not in CNY
        assert factors["encumbered_assets"]["points"] == 3

    async def test_ledger_down_still_evaluates_with_a_neutral_history(self, system):
        customer_id = await new_customer(system)
        ledger_down(system)
        r = await post_evaluation(system, customer_id)
        assert r.status_code == 201, r.text
        history = r.json()["factors"][-1]
        assert history["points"] == 5 and "ledger did not answer" in history["explanation"]

    async def test_ledger_503_still_evaluates(self, system):
        customer_id = await new_customer(system)
        ledger_answers(system, 503)
        r = await post_evaluation(system, customer_id)
        assert r.status_code == 201 and r.json()["factors"][-1]["points"] == 5

    async def test_ledger_payment_history_is_scored(self, system):
        customer_id = await new_customer(system)
        seen = ledger_answers(system, 200, {
            "customer_id": customer_id, "overdue_minor": yuan(100), "max_days_overdue": 10,
            "invoices_paid_on_time": 9, "invoices_paid_late": 1, "avg_days_late": 4.0})
        body = (await post_evaluation(system, customer_id)).json()
        history = body["factors"][-1]
        assert history["points"] == 7  # 9 of 10 on time → 9, overdue now → −2
        assert body["inputs"]["payment_history"]["invoices_paid_on_time"] == 9
        assert seen[0].url.path == f"/v1/customers/{customer_id}/exposure"
        assert seen[0].headers["authorization"].startswith("Bearer ")

    async def test_bad_financials_are_422(self, system):
        customer_id = await new_customer(system)
        r = await system.client("credit", "credit_manager").post(
            f"/v1/customers/{customer_id}/evaluations",
            json={"financials": {**FINANCIALS, "revenue_minor": -1, "currency": "ABC"},
                  "inquiry": {"defaults_count": -1}})
        assert r.status_code == 422
        fields = {e["field"] for e in r.json()["errors"]}
        assert {"financials.revenue_minor", "financials.currency",
                "inquiry.defaults_count"} <= fields

    async def test_unknown_evaluation_and_sales_cannot_evaluate(self, system):
        customer_id = await new_customer(system)
        manager = system.client("credit", "credit_manager")
        assert (await manager.get(f"/v1/customers/{customer_id}/evaluations/nope")).status_code == 404
        assert (await manager.post(
            f"/v1/customers/{customer_id}/evaluations/nope/apply")).status_code == 404
        r = await post_evaluation(system, customer_id)
        other = await new_customer(system)
        assert (await manager.get(
            f"/v1/customers/{other}/evaluations/{r.json()['id']}")).status_code == 404
        sales = await system.client("credit", "alice").post(
            f"/v1/customers/{customer_id}/evaluations", json={"financials": FINANCIALS})
        assert sales.status_code == 403


async def test_payment_history_comes_from_the_real_ledger(system):
    """No mock: an invoice paid 10 days late in ledger shows in credit's scorecard."""
    from datetime import timedelta

    customer_id = await new_customer(system)
    ledger = system.client("ledger", "finance")
    today = system.clock.today()
    issued = await ledger.post("/v1/invoices", json={
        "order_id": "6b0f3f7e-2c1d-4e5f-8a9b-0c1d2e3f4a5b", "customer_id": customer_id,
        "salesperson_id": "S-ALICE", "currency": "CNY", "amount_minor": yuan(1000),
        "issued_at": system.clock.now().isoformat(), "due_date": today.isoformat()})
    assert issued.status_code == 201, issued.text
    system.clock.advance(timedelta(days=10))
    paid = await ledger.post("/v1/payments", json={
        "customer_id": customer_id, "amount_minor": yuan(1000), "currency": "CNY",
        "method": "bank_transfer", "reference": "late"})
    assert paid.status_code == 201, paid.text

    body = (await post_evaluation(system, customer_id)).json()
    history = body["inputs"]["payment_history"]
    assert history is not None, body["inputs"]
    assert history["invoices_paid_late"] == 1 and history["invoices_paid_on_time"] == 0
