"""The reservation decision and money wording as pure functions: one class per rule."""

from __future__ import annotations

from services.credit.models import Decision
from services.credit.rules import CreditFacts, Exposure, decide
from shared.money import format_money


def facts(*, limit=1_000_00, receivables=0, reserved=0, guarantees=0, policy="credit",
          status="active", holds=(), active_guarantees=None, currency="CNY") -> CreditFacts:
    return CreditFacts(
        currency=currency, policy=policy, status=status,
        exposure=Exposure(limit, receivables, reserved, guarantees), hold_reasons=tuple(holds),
        active_guarantees=(1 if guarantees else 0) if active_guarantees is None else active_guarantees)


class TestFormatMoney:
    def test_two_decimals_with_thousands(self):
        assert format_money(60_000_000, "CNY") == "600,000.00 CNY"
        assert format_money(5, "USD") == "0.05 USD"
        assert format_money(-150, "EUR") == "-1.50 EUR"

    def test_zero_and_three_decimal_currencies(self):
        assert format_money(1_234_567, "JPY") == "1,234,567 JPY"
        assert format_money(1_234_567, "KWD") == "1,234.567 KWD"


class TestExposure:
    def test_available_is_limit_plus_guarantees_minus_used(self):
        e = Exposure(limit_minor=1000, open_receivables_minor=300, reserved_minor=200,
                     guarantees_minor=150)
        assert (e.used_minor, e.available_minor) == (500, 650)

    def test_over_limit_is_negative(self):
        assert Exposure(100, 150, 0, 0).available_minor == -50


class TestBlocked:
    def test_blocked_wins_over_everything(self):
        v = decide(facts(status="blocked", policy="prepaid_only", holds=["x"]), 1)
        assert (v.decision, v.reasons) == (Decision.rejected, ["customer is blocked"])


class TestOnHold:
    def test_names_every_hold(self):
        v = decide(facts(status="on_hold", holds=["disputes", "overdue INV-000001"]), 1)
        assert v.reasons == ["customer on credit hold: disputes; overdue INV-000001"]
        assert v.decision is Decision.rejected


class TestPrepaidOnly:
    def test_rejected_even_with_room(self):
        v = decide(facts(policy="prepaid_only"), 1)
        assert (v.decision, v.reasons) == (Decision.rejected, ["customer is prepaid only"])


class TestGuaranteeRequired:
    def test_without_guarantee(self):
        assert decide(facts(policy="guarantee_required"), 1).decision is Decision.requires_guarantee

    def test_with_guarantee_within_available(self):
        assert decide(facts(policy="guarantee_required", guarantees=500), 1).reserved

    def test_shortfall_asks_for_a_further_guarantee(self):
        v = decide(facts(policy="guarantee_required", limit=0, guarantees=100_00), 150_00)
        assert v.decision is Decision.requires_guarantee
        assert v.reasons == ["available 100.00 CNY, requested 150.00 CNY; short by 50.00 CNY",
                             "a further guarantee of at least 50.00 CNY would cover it"]


class TestAvailable:
    def test_fits_exactly(self):
        v = decide(facts(limit=1000, reserved=400), 600)
        assert v.reserved and v.reasons == ["reserved 6.00 CNY of available 6.00 CNY; 0.00 CNY left"]

    def test_shortfall_is_rejected_under_credit_policy(self):
        v = decide(facts(limit=600_000_00), 1_000_000_00)
        assert v.decision is Decision.rejected
        assert v.reasons[0] == ("available 600,000.00 CNY, requested 1,000,000.00 CNY; "
                                "short by 400,000.00 CNY")

    def test_active_guarantees_count(self):
        assert decide(facts(limit=600, guarantees=400), 1000).reserved
        assert not decide(facts(limit=600, guarantees=399), 1000).reserved

    def test_over_limit_reports_zero_available(self):
        v = decide(facts(limit=100, receivables=300), 50)
        assert v.reasons[0] == "available 0.00 CNY, requested 0.50 CNY; short by 0.50 CNY"
